"""Shared fixtures: registries written to temp folders, the CLI called in-process, and a small
valid registry (GOOD) that validation tests change one file at a time."""
from __future__ import annotations

import json
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


def project_in(tmp_path: Path, monkeypatch, files: dict[str, str | bytes]) -> Path:
    """A project folder `repo` holding `files`, its own cache home, and the current directory there."""
    root = write_tree(tmp_path / "repo", files)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(root)
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
def _private_cache_home(tmp_path_factory, monkeypatch):
    """Caches go to a folder of this test session, never the user's ~/.cache (subprocesses inherit it)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture(autouse=True)
def _no_github_env(monkeypatch):
    """Tests never inherit a CI's GitHub settings (they would switch output formats)."""
    for var in ("GITHUB_ACTIONS", "GITHUB_TOKEN", "GITHUB_STEP_SUMMARY", "GITHUB_API_URL"):
        monkeypatch.delenv(var, raising=False)


# --- a small valid registry, and `check` to validate it with changes ---------------------------

CONTEXTS = """
contexts:
  - id: channel
    values:
      - {id: google, share: 0.6}
      - {id: organic, share: 0.4}
  - id: device
    values:
      - {id: mobile, share: 0.5}
      - {id: desktop, share: 0.5}
"""

GRAPH = """
id: shop
nodes:
  - id: home
    entry: {weight: 0.7}
  - id: blog
    entry: {weight: 0.3}
  - id: pricing
  - id: signup
  - id: bought
    outcome: success
  - id: lost
    outcome: failure
edges:
  - id: to-pricing
    from: home
    to: pricing
    p: {parameter_id: to-pricing-base}
  - id: blog-to-pricing
    from: blog
    to: pricing
    p: {mean: 0.2, stdev: 0.05}
  - id: back-home
    from: pricing
    to: home
    p: {mean: 0.1, stdev: 0.02}
  - id: signup
    from: pricing
    to: signup
  - id: buy
    from: signup
    to: bought
    p: {mean: 0.5, stdev: 0.05}
  - id: give-up
    from: signup
    to: lost
    p: {mean: 0.3, stdev: 0.05}
"""


def param(pid: str, edge: str, mean: float = 0.3, stdev: float = 0.05, context: str = "", visited: str = "") -> str:
    """The text of one parameter file; `context` and `visited` are written as flow YAML ('channel: google')."""
    lines = [f"id: {pid}", f"edge: {edge}"]
    if context:
        lines.append(f"context_filter: {{{context}}}")
    if visited:
        lines.append(f"visited_filter: [{visited}]")
    lines.append(f"value: {{mean: {mean}, stdev: {stdev}}}")
    return "\n".join(lines) + "\n"


GOOD = {
    "registry/contexts.yaml": CONTEXTS,
    "registry/graphs/shop.yaml": GRAPH,
    "registry/parameters/to-pricing-base.yaml": param("to-pricing-base", "to-pricing", 0.4),
    "registry/parameters/signup/signup-base.yaml": param("signup-base", "signup", 0.3),
    "registry/parameters/signup/signup-google.yaml": param("signup-google", "signup", 0.4, context="channel: google"),
    "registry/parameters/signup/signup-google-home.yaml":
        param("signup-google-home", "signup", 0.45, context="channel: google", visited="home"),
}


@pytest.fixture
def check(tmp_path, cli):
    """check({path: text or None}) writes GOOD with those changes and returns (exit code, findings, result)."""
    def run(changes: dict | None = None, *extra: str):
        files = dict(GOOD)
        files.update(changes or {})
        write_tree(tmp_path, {k: v for k, v in files.items() if v is not None})
        result = cli("validate", "--format", "json", *extra, cwd=tmp_path)
        return result.code, json.loads(result.out), result
    return run
