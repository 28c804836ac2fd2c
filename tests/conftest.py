"""Shared fixtures: registries written to temp folders, and the CLI called in-process."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from funnelcheck.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "registry"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write {relative path: text or bytes} under root; text is dedented."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"))
    return root


@pytest.fixture
def tree(tmp_path):
    """tree({'registry/contexts.yaml': '...'}) writes the files and returns tmp_path."""
    return lambda files: write_tree(tmp_path, files)


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[:400]!r}, err={self.err[:400]!r})"


@pytest.fixture
def cli(capsys, monkeypatch):
    """cli('validate', '--registry', path, cwd=...) runs main() in-process and captures output."""
    def run(*argv: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)
    return run


@pytest.fixture(autouse=True)
def _no_github_env(monkeypatch):
    """Tests never inherit a CI's GitHub settings (they would switch output formats)."""
    for var in ("GITHUB_ACTIONS", "GITHUB_TOKEN", "GITHUB_STEP_SUMMARY", "GITHUB_API_URL"):
        monkeypatch.delenv(var, raising=False)
