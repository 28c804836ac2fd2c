"""`funnelcheck init`: a new models repository that validates clean and computes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from funnelcheck import __version__
from funnelcheck.commands.init import HOOKS_PLACEHOLDER, scaffold
from funnelcheck.engine import run_whatif
from funnelcheck.load.registry import find_project, load_project

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

EXPECTED = {
    "funnelcheck.yaml", ".pre-commit-config.yaml", ".github/workflows/funnel-impact.yml",
    ".github/workflows/funnel-monitor.yml", "registry/contexts.yaml", "registry/graphs/signup.yaml",
    "registry/parameters/signup/start-signup-base.yaml", "registry/parameters/signup/start-signup-paid.yaml",
    "registry/parameters/activation/activate-base.yaml", "registry/parameters/activation/activate-mobile.yaml",
    ".funnelcheck/.gitignore",
}


def test_scaffold_lists_every_file():
    assert set(scaffold()) == EXPECTED


def test_init_scaffolds_a_registry_that_validates_and_computes(tmp_path, cli):
    res = cli("init", str(tmp_path / "models"))
    assert res.code == 0, res
    root = tmp_path / "models"
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == EXPECTED
    assert "edit .pre-commit-config.yaml" in res.out
    res = cli("validate", cwd=root)
    assert res.code == 0 and res.out == "" and "no problems" in res.err, res
    loaded = load_project(find_project(cwd=root))
    # start-signup: paid 0.36 / organic 0.30 (shares 0.4 / 0.6); activate: mobile 0.42 / desktop 0.50 (0.55 / 0.45).
    expected = (0.4 * 0.36 + 0.6 * 0.30) * (0.55 * 0.42 + 0.45 * 0.50)
    assert run_whatif(loaded.registry, "signup").conversion.point == pytest.approx(expected)


def test_init_refuses_to_overwrite_unless_forced(tmp_path, cli):
    assert cli("init", str(tmp_path)).code == 0
    graph = tmp_path / "registry" / "graphs" / "signup.yaml"
    graph.write_text("# mine\n")
    res = cli("init", str(tmp_path))
    assert res.code == 1 and "refusing to overwrite funnelcheck.yaml" in res.err and "(use --force)" in res.err
    assert graph.read_text() == "# mine\n"
    res = cli("init", str(tmp_path), "--force")
    assert res.code == 0 and "(overwritten)" in res.out and graph.read_text().startswith("# A small funnel")
    (tmp_path / "file").write_text("x")
    assert cli("init", str(tmp_path / "file")).code == 1


def test_one_existing_file_stops_everything(tmp_path, cli):
    (tmp_path / "funnelcheck.yaml").write_text("registry: elsewhere\n")
    assert cli("init", str(tmp_path)).code == 1
    assert [p.name for p in tmp_path.iterdir()] == ["funnelcheck.yaml"]


def test_pre_commit_config_points_at_funnelcheck_hooks(tmp_path, cli):
    assert cli("init", str(tmp_path), "--hooks-repo", "https://git.example.test/tools/funnelcheck").code == 0
    config_path = tmp_path / ".pre-commit-config.yaml"
    config = yaml.safe_load(config_path.read_text())
    (entry,) = config["repos"]
    assert entry["repo"] == "https://git.example.test/tools/funnelcheck" and entry["rev"] == f"v{__version__}"
    offered = {h["id"] for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for h in entry["hooks"]} == {"funnelcheck-validate", "funnelcheck-format"} <= offered
    done = subprocess.run([str(BIN / "pre-commit"), "validate-config", str(config_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + done.stdout
    assert cli("init", str(tmp_path / "b")).code == 0
    assert yaml.safe_load((tmp_path / "b" / ".pre-commit-config.yaml").read_text())["repos"][0]["repo"] == HOOKS_PLACEHOLDER


def test_workflows_install_this_version(tmp_path, cli):
    assert cli("init", str(tmp_path)).code == 0
    # The impact comment needs only the core; the monitor job runs the pipeline: the [all] extra.
    for name, package in (("funnel-impact.yml", "funnelcheck"), ("funnel-monitor.yml", "funnelcheck[all]")):
        text = (tmp_path / ".github" / "workflows" / name).read_text()
        assert f'python -m pip install "{package}=={__version__}"' in text and "@VERSION@" not in text


def test_the_local_state_folder_is_ignored_by_git(tmp_path, cli):
    """Whatever the tool keeps in .funnelcheck/ never reaches a commit (issue 7, class 1)."""
    root = tmp_path / "models"
    assert cli("init", str(root)).code == 0
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".funnelcheck" / "cache").mkdir()
    (root / ".funnelcheck" / "cache" / "parse.pickle").write_bytes(b"x")
    (root / ".funnelcheck" / "monitor.db").write_bytes(b"x")
    status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=all"],
                            capture_output=True, text=True, check=True).stdout
    assert ".funnelcheck" not in status and "registry/graphs/signup.yaml" in status
