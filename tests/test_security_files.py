"""Issue 7, class 4: work-tree file-system problems are findings or clear errors, never exit 3.

The tests run as root, which reads any file whatever its mode. To provoke EACCES for real, the
unreadable cases run the CLI under `setpriv` with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
dropped from the bounding set: root then obeys file modes like any user.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from funnelcheck.cli import main

from conftest import project_in

REPO = Path(__file__).resolve().parent.parent
BASE = {
    "funnelcheck.yaml": "registry: registry\n",
    "registry/contexts.yaml": "contexts: []\n",
    "registry/parameters/p.yaml": "id: p\nedge: e\nvalue: {mean: 0.5, stdev: 0.1}\n",
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    return project_in(tmp_path, monkeypatch, BASE)


def _validate(capsys) -> tuple[int, dict]:
    code = main(["validate", "--format", "json"])
    captured = capsys.readouterr()
    return code, {(f["path"], f["code"]): f for f in json.loads(captured.out)}


def test_symlink_loops_are_findings(project, capsys):
    params = project / "registry" / "parameters"
    os.symlink("b.yaml", params / "a.yaml")
    os.symlink("a.yaml", params / "b.yaml")
    os.symlink("self.yaml", params / "self.yaml")
    os.symlink("loop", params / "loop")  # a folder-looking loop
    code, found = _validate(capsys)
    assert code == 1
    for name in ("a.yaml", "b.yaml", "self.yaml", "loop"):
        assert (f"registry/parameters/{name}", "symlink-loop") in found, found.keys()
    assert found[("registry/parameters/a.yaml", "symlink-loop")]["severity"] == "error"


def test_dangling_symlinks_are_findings(project, capsys):
    os.symlink("missing.yaml", project / "registry" / "parameters" / "gone.yaml")
    code, found = _validate(capsys)
    assert code == 1
    f = found[("registry/parameters/gone.yaml", "dangling-symlink")]
    assert "missing.yaml" in f["message"] and f["line"] == 1


def test_a_fifo_is_not_read(project):
    os.mkfifo(project / "registry" / "parameters" / "pipe.yaml")  # reading it would block for ever
    done = subprocess.run([sys.executable, "-m", "funnelcheck", "validate", "--format", "json"], cwd=project,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    found = {(f["path"], f["code"]) for f in json.loads(done.stdout)}
    assert done.returncode == 1 and ("registry/parameters/pipe.yaml", "unreadable") in found


def _as_plain_user(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's file-permission override")
    cmd = [sys.executable, "-m", "funnelcheck", *args]
    if os.geteuid() == 0:
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_unreadable_files_and_folders_are_findings(project, tmp_path):
    params = project / "registry" / "parameters"
    secret = params / "secret.yaml"
    secret.write_text("id: secret\nedge: e\nvalue: {mean: 0.5, stdev: 0.1}\n")
    closed = params / "closed"
    closed.mkdir()
    (closed / "inside.yaml").write_text("id: inside\nedge: e\n")
    secret.chmod(0)
    closed.chmod(0)
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    try:
        done = _as_plain_user(project, env, "validate", "--format", "json")
    finally:
        secret.chmod(0o644)
        closed.chmod(0o755)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    found = {(f["path"], f["code"]): f for f in json.loads(done.stdout)}
    assert "permission denied" in found[("registry/parameters/secret.yaml", "unreadable")]["message"].lower()
    assert "permission denied" in found[("registry/parameters/closed", "unreadable")]["message"].lower()


def test_a_file_made_unreadable_after_listing_is_a_clear_error(project, capsys, monkeypatch):
    """The race (listed, then unreadable) cannot be staged from outside: the read itself is made to fail."""
    import builtins

    real_open = builtins.open

    def failing_open(path, *a, **k):
        if str(path).endswith("p.yaml"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", failing_open)
    code = main(["validate"])
    err = capsys.readouterr().err
    assert code == 1 and "registry/parameters/p.yaml: cannot be read: Permission denied" in err
    assert "Traceback" not in err


def test_a_full_disk_leaves_the_target_intact_and_no_temporary(tmp_path):
    """RLIMIT_FSIZE in a child process: the write fails with EFBIG as a full disk fails with ENOSPC."""
    target = tmp_path / "out" / "report.md"
    target.parent.mkdir()
    target.write_bytes(b"the old report\n")
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from funnelcheck.atomicfile import write_atomic\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    write_atomic(Path(sys.argv[1]), b'x' * 100_000)\n"
        "except OSError as exc:\n"
        "    print(exc.errno)\n"
        "    sys.exit(7)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 7, done.stderr
    assert int(done.stdout) in (27, 28)  # EFBIG, ENOSPC
    assert target.read_bytes() == b"the old report\n"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]


def test_the_cache_on_a_full_disk_still_validates(project, capsys, monkeypatch):
    """A cache that cannot be written costs speed only: the same findings, no traceback."""
    import funnelcheck.load.cache as cache_module

    def no_space(path, data):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(cache_module, "write_atomic", no_space)
        broken = _validate(capsys)
    assert not any(p.is_file() for p in Path(os.environ["XDG_CACHE_HOME"]).rglob("*"))
    assert _validate(capsys) == broken
    assert any(p.is_file() for p in Path(os.environ["XDG_CACHE_HOME"]).rglob("*"))


@pytest.mark.parametrize("command", [["validate"], ["resolve", "p"], ["whatif", "g"]])
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_rev_is_a_usage_error(project, capsys, command, empty):
    code = main([*command, "--rev", empty])
    err = capsys.readouterr().err
    assert code == 2 and "--rev" in err and "needs a revision" in err
