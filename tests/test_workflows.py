"""The GitHub workflows: valid against GitHub's schema, and their `run:` steps work as Actions runs them."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import check_jsonschema
from fakegithub import TOKEN, fake_github  # noqa: F401  (the fixture)
from funnelcheck.commands.init import render
from funnelcheck.render.markdown import MARKER
from gitrepos import GIT_ENV, GitCli, parameter, shop_registry

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCHEMA = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "github-workflows.json"
NAMES = ("funnel-impact.yml", "funnel-monitor.yml")
INSTALL_STEP = "Install funnelcheck"


def load_workflow(text: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub (and its schema) mean the string.
    data = yaml.safe_load(text)
    if True in data:
        data["on"] = data.pop(True)
    return data


def generated(name: str) -> str:
    return render(f"workflows/{name}", "https://example.test/funnelcheck")


def repository_copy(name: str) -> str:
    return (REPO / ".github" / "workflows" / name).read_text()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("source", ["init", "repository"])
def test_workflows_match_githubs_schema(name, source):
    schema = json.loads(SCHEMA.read_text())
    text = generated(name) if source == "init" else repository_copy(name)
    jsonschema.validate(load_workflow(text), schema)


@pytest.mark.parametrize("name", NAMES)
def test_the_repository_runs_the_workflows_init_writes(name):
    """Same steps; only the install line (this repository installs itself) and the header differ."""
    ours, theirs = load_workflow(repository_copy(name)), load_workflow(generated(name))
    for wf in (ours, theirs):
        for job in wf["jobs"].values():
            for step in job["steps"]:
                if step.get("name") == INSTALL_STEP:
                    step["run"] = "<install>"
    assert ours == theirs
    assert re.search(r'python -m pip install (\.|"\.\[all\]")  #', repository_copy(name))


def test_least_privilege_and_triggers():
    impact = load_workflow(generated("funnel-impact.yml"))
    assert impact["permissions"] == {}
    assert impact["jobs"]["impact"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert impact["on"] == {"pull_request": {"paths": ["registry/**", "funnelcheck.yaml"]}}
    steps = impact["jobs"]["impact"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 0
    assert steps[0]["with"]["persist-credentials"] is False
    monitor = load_workflow(generated("funnel-monitor.yml"))
    assert monitor["permissions"] == {}
    assert {name: job["permissions"] for name, job in monitor["jobs"].items()} == {
        "monitor": {"contents": "read"}, "priors": {"contents": "read"}}
    assert set(monitor["on"]) == {"schedule", "workflow_dispatch", "push"}
    runs = {name: [s.get("run") for s in job["steps"] if "run" in s][1 if name == "monitor" else 0:]
            for name, job in monitor["jobs"].items()}
    assert runs["monitor"][1:] == ["funnelcheck github update-pr", "funnelcheck dashboard --output dashboard"]
    assert runs["priors"][1:] == ["funnelcheck priors push"]
    upload = monitor["jobs"]["monitor"]["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["with"]["path"] == "dashboard/"
    for wf in (impact, monitor):  # untrusted values never interpolated into scripts
        for job in wf["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", "")


PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


@pytest.mark.parametrize("source", ["init", "repository"])
def test_actions_are_pinned_by_commit_with_the_version_in_a_comment(source):
    texts = [generated(n) for n in NAMES] if source == "init" else \
        [p.read_text() for p in sorted((REPO / ".github" / "workflows").glob("*.yml"))]
    for text in texts:
        uses = re.findall(r"uses:\s*(\S+)(.*)", text)
        assert uses
        for ref, rest in uses:
            assert PINNED.match(ref), ref
            assert re.match(r"\s+#\s*v\d+\.\d+\.\d+", rest), f"{ref}: no version comment"


def test_zizmor_finds_nothing_on_our_workflows_and_inits(tmp_path, cli):
    """`zizmor --offline --min-severity medium` (SPEC 7) on .github/workflows/ and on what init writes."""
    zizmor = BIN / "zizmor"
    if not zizmor.exists():
        pytest.fail("zizmor is not installed in the test environment (pip install zizmor)")
    assert cli("init", str(tmp_path / "new")).code == 0
    for folder in (REPO / ".github" / "workflows", tmp_path / "new" / ".github" / "workflows"):
        done = subprocess.run([str(zizmor), "--offline", "--min-severity", "medium", "--format", "json", str(folder)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout) == [], done.stdout


# -- running the steps ---------------------------------------------------------------------------

class Runner:
    """Runs a workflow job's `run:` steps with bash, in order, with the environment Actions sets."""

    def __init__(self, workflow: dict, workspace: Path, env: dict, context: dict):
        self.job = next(iter(workflow["jobs"].values()))
        self.workspace = workspace
        self.env = env
        self.context = context
        self.outputs: dict[str, dict[str, str]] = {}
        self.logs: dict[str, str] = {}

    def expression(self, text: str) -> str:
        def value(m):
            expr = m.group(1).strip()
            if expr in self.context:
                return str(self.context[expr])
            if expr.startswith("secrets."):
                return self.context.get(expr, "")
            raise AssertionError(f"the test does not know the expression {expr!r}")
        return re.sub(r"\$\{\{(.*?)\}\}", value, str(text))

    def condition(self, cond: str | None) -> bool:
        if cond is None:
            return True
        cond = cond.strip()
        if cond.startswith("${{"):
            cond = cond[3:-2].strip()
        parts = [p.strip() for p in cond.split("&&")]
        result = True
        for part in parts:
            if part == "!cancelled()":
                continue
            m = re.fullmatch(r"hashFiles\('([^']+)'\) != ''", part)
            if m:
                result &= (self.workspace / m.group(1)).exists()
                continue
            m = re.fullmatch(r"steps\.(\w+)\.outputs\.(\w+) == '(\w+)'", part)
            if m:
                result &= self.outputs.get(m.group(1), {}).get(m.group(2)) == m.group(3)
                continue
            raise AssertionError(f"the test does not know the condition {part!r}")
        return result

    def run(self, skip: tuple[str, ...] = (INSTALL_STEP,), before: dict | None = None) -> list[tuple[str, int]]:
        done = []
        job_env = {k: self.expression(v) for k, v in (self.job.get("env") or {}).items()}
        for i, step in enumerate(self.job["steps"]):
            name = step.get("name") or step.get("uses")
            if "run" not in step or name in skip or not self.condition(step.get("if")):
                continue
            if before and name in before:
                before[name]()
            output = self.workspace.parent / f"output-{i}"
            output.write_text("")
            env = {**self.env, **job_env, **{k: self.expression(v) for k, v in (step.get("env") or {}).items()},
                   "GITHUB_OUTPUT": str(output)}
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=self.workspace, env=env, capture_output=True, text=True)
            self.logs[name] = proc.stdout + proc.stderr
            self.outputs[step.get("id", name)] = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
            done.append((name, proc.returncode))
            if proc.returncode != 0:
                break
        return done


def actions_env(fake, tmp_path: Path, workspace: Path, **extra) -> dict:
    summary = tmp_path / "step-summary.md"
    summary.touch()
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        **GIT_ENV,
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_REPOSITORY": fake.repository,
        "GITHUB_API_URL": fake.url,
        "GITHUB_STEP_SUMMARY": str(summary),
        **extra,
    }


@pytest.fixture
def models(tmp_path):
    """An 'origin' bare repository with main (the shop) and a PR branch that raises checkout to 0.45."""
    work = GitCli(tmp_path / "author")
    work.commit("shop", shop_registry(checkout=0.4))
    work.git("switch", "-q", "-c", "raise-checkout")
    work.commit("raise checkout", {"registry/parameters/checkout/checkout-base.yaml":
                                   parameter("checkout-base", "checkout", 0.45)})
    work.git("switch", "-q", "main")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(origin)], check=True,
                   env={**os.environ, **GIT_ENV})
    return origin


def checkout(origin: Path, dest: Path, ref: str) -> Path:
    """What actions/checkout with fetch-depth 0 leaves: a full clone at the ref, origin/* fetched."""
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True, env=env)
    subprocess.run(["git", "checkout", "-q", "--detach", f"origin/{ref}"], cwd=dest, check=True, env=env)
    return dest


def impact_run(fake, tmp_path, origin, name: str) -> tuple[Runner, list]:
    workspace = checkout(origin, tmp_path / name / "workspace", "raise-checkout")
    event = tmp_path / name / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 5, "pull_request": {
        "number": 5, "base": {"ref": "main"}, "head": {"ref": "raise-checkout"}}}))
    env = actions_env(fake, tmp_path / name, workspace, GITHUB_EVENT_PATH=str(event), GITHUB_EVENT_NAME="pull_request",
                      GITHUB_BASE_REF="main", GITHUB_HEAD_REF="raise-checkout")
    context = {"github.token": TOKEN, "github.event.pull_request.number": 5}
    runner = Runner(load_workflow(generated("funnel-impact.yml")), workspace, env, context)
    return runner, runner.run()


def test_impact_workflow_steps_post_one_sticky_comment(fake_github, tmp_path, models):  # noqa: F811
    runner, done = impact_run(fake_github, tmp_path, models, "first")
    assert done == [("Validate", 0), ("Diff against the base branch", 0), ("Job summary", 0), ("Sticky PR comment", 0)]
    assert "::error" not in runner.logs["Validate"]
    (comment,) = fake_github.comments[5]
    assert comment["body"].startswith(MARKER) and "`checkout-base`" in comment["body"]
    assert "| 0.4 | 0.45 | modified |" in comment["body"]
    summary = Path(runner.env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary == comment["body"]
    # A re-run (new push to the PR) updates the same comment.
    runner, done = impact_run(fake_github, tmp_path, models, "second")
    assert [code for _, code in done] == [0, 0, 0, 0]
    assert len(fake_github.comments[5]) == 1
    assert [c.method for c in fake_github.writes()] == ["POST"]  # same body: nothing to update


def test_impact_workflow_on_a_fork_writes_the_summary_once(fake_github, tmp_path, models):  # noqa: F811
    fake_github.read_only = True
    runner, done = impact_run(fake_github, tmp_path, models, "fork")
    assert [code for _, code in done] == [0, 0, 0, 0]
    assert "::notice title=funnelcheck github::could not write to GitHub" in runner.logs["Sticky PR comment"]
    summary = Path(runner.env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.count(MARKER) == 1 and fake_github.comments == {}


def test_impact_workflow_reports_validation_errors_and_still_comments(fake_github, tmp_path, models):  # noqa: F811
    work = GitCli(tmp_path / "author", init=False)
    work.git("switch", "-q", "raise-checkout")
    work.commit("oops", {"registry/parameters/checkout/checkout-base.yaml": parameter("checkout-base", "checkout", 1.4)})
    work.git("push", "-q", str(models), "raise-checkout")
    runner, done = impact_run(fake_github, tmp_path, models, "broken")
    assert done[0] == ("Validate", 1)
    assert "::error file=registry/parameters/checkout/checkout-base.yaml" in runner.logs["Validate"]
    # The job stops at a failing step unless later steps say `if: !cancelled()`: these do.
    runner.job["steps"] = [s for s in runner.job["steps"] if s.get("name") != "Validate"]
    done = runner.run()
    assert [code for _, code in done] == [0, 0, 0]
    assert "probability-range" in fake_github.comments[5][0]["body"]


def test_monitor_workflow_runs_update_pr_then_the_dashboard(fake_github, tmp_path, models):  # noqa: F811
    workspace = checkout(models, tmp_path / "day1" / "workspace", "main")
    subprocess.run(["git", "switch", "-q", "main"], cwd=workspace, check=True, env={**os.environ, **GIT_ENV})
    env = actions_env(fake_github, tmp_path / "day1", workspace, GITHUB_EVENT_NAME="schedule", GITHUB_REF_NAME="main",
                      GITHUB_TOKEN="")
    for command in (["github", "update-pr"], ["dashboard"]):
        probe = subprocess.run(["funnelcheck", *command, "--help"], env=env, cwd=workspace, capture_output=True)
        if probe.returncode != 0:
            pytest.skip(f"the installed funnelcheck has no `{' '.join(command)}` yet (built on another branch)")
    runner = Runner(load_workflow(generated("funnel-monitor.yml")), workspace, env, {"secrets.FUNNELCHECK_TOKEN": TOKEN})
    done = runner.run()
    assert done == [("Check the token", 0), ("Monitor and propose the posterior update", 0), ("Dashboard", 0)], runner.logs
    assert (workspace / "dashboard" / "index.html").is_file()
    assert all(c.authorization == f"Bearer {TOKEN}" for c in fake_github.calls)


def test_monitor_workflow_needs_its_token(fake_github, tmp_path, models):  # noqa: F811
    workspace = checkout(models, tmp_path / "w", "main")
    runner = Runner(load_workflow(generated("funnel-monitor.yml")), workspace,
                    actions_env(fake_github, tmp_path, workspace, GITHUB_REF_NAME="main"), {})
    assert runner.run() == [("Check the token", 1)]
    assert "::error title=funnelcheck::set the FUNNELCHECK_TOKEN secret" in runner.logs["Check the token"]


def test_the_projects_own_ci_workflow_matches_githubs_schema_and_runs_the_readme_commands():
    text = repository_copy("ci.yml")
    jsonschema.validate(load_workflow(text), json.loads(SCHEMA.read_text()))
    runs = [step.get("run", "") for job in load_workflow(text)["jobs"].values() for step in job["steps"]]
    assert "make demo" in runs and "make test" in runs
