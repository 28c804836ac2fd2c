"""The one progress display of long commands (whatif, history): on stderr, never on stdout.

On a terminal a bar is redrawn in place; on anything else (CI logs, pipes) a plain line is
written every few seconds, so a long run in CI still says that it is alive. Nothing appears
for runs shorter than `delay`.
"""
from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """`show(text, fraction)` as often as you like; it decides what, if anything, to write."""

    def __init__(self, stream: TextIO, label: str, delay: float = 0.5, every: float = 5.0, width: int = 30):
        self.stream, self.label, self.delay, self.every, self.width = stream, label, delay, every, width
        self.start = time.monotonic()
        self.last: float | None = None  # when a line was last written (non-terminal)
        self.drawn = 0  # length of the bar on screen (terminal)
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def show(self, text: str, fraction: float | None = None) -> None:
        """Report progress: `text` such as '21/60 segments', `fraction` done in [0, 1] if known."""
        now = time.monotonic()
        if now - self.start < self.delay:
            return
        if self.tty:
            bar = ""
            if fraction is not None:
                filled = int(self.width * min(max(fraction, 0.0), 1.0))
                bar = f"[{'#' * filled}{'.' * (self.width - filled)}] "
            line = f"{self.label} {bar}{text}"
            self.stream.write("\r" + line + " " * max(0, self.drawn - len(line)))
            self.drawn = len(line)
        elif self.last is None or now - self.last >= self.every or fraction == 1.0:
            share = f" ({fraction:.0%})" if fraction is not None else ""
            self.stream.write(f"{self.label}: {text}{share}, {now - self.start:.0f} s\n")
            self.last = now
        else:
            return
        self.stream.flush()

    def counter(self, unit: str):
        """A `(done, total)` callback for a library loop: `12/40 queries` with its fraction."""
        def report(done: int, total: int) -> None:
            self.show(f"{done:,}/{total:,} {unit}", done / total if total else None)
        return report

    def close(self) -> None:
        """Clear the bar from a terminal (lines already written elsewhere stay)."""
        if self.tty and self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0
