"""`funnelcheck update`: posteriors against the closed form, never the same evidence twice,
two windows == one window, comments kept by --write, --write refused on an invalid registry."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from ruamel.yaml import YAML

import sqlalchemy as sa

from funnelcheck.pipeline.stats import moment_match
from funnelcheck.pipeline.store import open_store, parameter_values

from test_pipeline_support import AS_OF, make_project, simulate_into

BASE = "registry/parameters/signup/signup-base.yaml"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("update"), "duckdb:///data.duckdb")
    simulate_into(root, str(root / "data.duckdb"), users=30_000)
    return root


@pytest.fixture
def project(pristine, tmp_path) -> Path:
    root = tmp_path / "p"
    shutil.copytree(pristine, root)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "registry").rglob("*.yaml"))}


def load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def test_dry_run_prints_the_change_and_the_diff_and_writes_nothing(cli, project):
    before = snapshot(project)
    r = cli("update", "--as-of", AS_OF, cwd=project)
    assert r.code == 0, r
    assert f"--- a/{BASE}" in r.out and f"+++ b/{BASE}" in r.out and "-value: {mean: 0.25, stdev: 0.04}" in r.out
    assert "dry run: nothing written" in r.out
    assert snapshot(project) == before


def test_json_matches_the_closed_form(cli, project):
    r = cli("update", "--as-of", AS_OF, "--format", "json", cwd=project)
    changes = {c["id"]: c for c in json.loads(r.out)}
    c = changes["signup-base"]
    prior = moment_match(0.25, 0.04)
    n, k = c["evidence"]["n"], c["evidence"]["k"]
    assert c["evidence"]["from"] == "2026-11-22T00:00:00Z" and c["evidence"]["to"] == "2026-11-29T00:00:00Z"
    assert c["prior"]["alpha"] == pytest.approx(prior.alpha) and c["prior"]["beta"] == pytest.approx(prior.beta)
    assert c["posterior"]["alpha"] == pytest.approx(prior.alpha + k)
    assert c["posterior"]["beta"] == pytest.approx(prior.beta + n - k)
    assert set(c) >= {"id", "prior", "evidence", "posterior", "file"}


def test_write_then_again_changes_nothing(cli, project):
    assert cli("update", "--as-of", AS_OF, "--write", cwd=project).code == 0
    once = snapshot(project)
    data = load(project / BASE)
    post_mean = data["bayesian_update"]["prior"]["alpha"] / (data["bayesian_update"]["prior"]["alpha"] +
                                                               data["bayesian_update"]["prior"]["beta"])
    assert data["value"]["mean"] == pytest.approx(post_mean, abs=1e-6)
    assert data["bayesian_update"]["updated_through"] == "2026-11-29T00:00:00Z"
    r = cli("update", "--as-of", AS_OF, "--write", cwd=project)
    assert r.code == 0 and "0 of 31 parameters change" in r.out
    assert snapshot(project) == once
    store = open_store("sqlite:///.funnelcheck/funnelcheck.db", project)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(parameter_values).where(parameter_values.c.source == "update")).all()
    store.close()
    assert len(rows) == 31
    assert {r.param_id: r.mean for r in rows}["signup-base"] == pytest.approx(data["value"]["mean"])


def test_the_next_update_counts_only_newer_evidence(cli, project):
    cli("update", "--as-of", "2026-11-25", "--write", cwd=project)
    r = cli("update", "--as-of", AS_OF, "--format", "json", cwd=project)
    c = {c["id"]: c for c in json.loads(r.out)}["signup-base"]
    assert (c["evidence"]["from"], c["evidence"]["to"]) == ("2026-11-25T00:00:00Z", "2026-11-29T00:00:00Z")
    con = duckdb.connect(str(project / "data.duckdb"), read_only=True)
    total = con.execute("SELECT COUNT(*) FROM user_journeys WHERE edge_slug = 'signup' AND created_at >= "
                        "TIMESTAMP '2026-11-25' AND created_at < TIMESTAMP '2026-11-29'").fetchone()[0]
    con.close()
    assert 0 < c["evidence"]["n"] < total  # the base only gets the traffic nothing more specific covers


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(split=st.integers(16, 28))
def test_two_windows_equal_one(cli, pristine, tmp_path_factory, split):
    """Updating up to a split day and then to AS_OF equals one update over both windows."""
    roots = []
    for name in ("two", "one"):
        root = tmp_path_factory.mktemp(name) / "p"
        shutil.copytree(pristine, root)
        path = root / BASE
        path.write_text(path.read_text() + 'bayesian_update: {updated_through: "2026-11-15T00:00:00Z"}\n')
        roots.append(root)
    two, one = roots
    assert cli("update", "--as-of", f"2026-11-{split:02d}", "--write", cwd=two).code == 0
    assert cli("update", "--as-of", AS_OF, "--write", cwd=two).code == 0
    assert cli("update", "--as-of", AS_OF, "--write", cwd=one).code == 0
    a, b = load(two / BASE)["bayesian_update"], load(one / BASE)["bayesian_update"]
    assert a["prior"]["alpha"] == pytest.approx(b["prior"]["alpha"], abs=2e-6)
    assert a["prior"]["beta"] == pytest.approx(b["prior"]["beta"], abs=2e-6)
    assert a["updated_through"] == b["updated_through"] == "2026-11-29T00:00:00Z"


def test_write_keeps_comments_order_and_quoting(cli, project):
    path = project / BASE
    path.write_text("# Signup base rate: owned by growth\n"
                    "id: signup-base   # the file stem\n"
                    "edge: 'signup'\n"
                    "description: \"Signup rate from the pricing page, all traffic\"\n"
                    "value: {mean: 0.25, stdev: 0.04}  # analysts' guess\n"
                    "observation_source:\n  type: events  # compiled\n  window: 7d\n"
                    "bayesian_update:\n  max_prior_weight: 5000  # keep the prior humble\n")
    assert cli("update", "--as-of", AS_OF, "--write", cwd=project).code == 0
    text = path.read_text()
    for kept in ("# Signup base rate: owned by growth\n", "id: signup-base   # the file stem\n", "edge: 'signup'\n",
                 'description: "Signup rate from the pricing page, all traffic"\n', "# analysts' guess\n",
                 "  type: events  # compiled\n", "  max_prior_weight: 5000  # keep the prior humble\n"):
        assert kept in text
    keys = list(load(path))
    assert keys == ["id", "edge", "description", "value", "observation_source", "bayesian_update"]
    assert text.index("max_prior_weight") < text.index("prior: {alpha")


def test_write_is_refused_on_a_registry_with_errors(cli, project):
    bad = project / "registry/parameters/checkout/checkout-base.yaml"
    bad.write_text(bad.read_text().replace("stdev: 0.05", "stdev: 0.9"))
    before = snapshot(project)
    r = cli("update", "--as-of", AS_OF, "--write", cwd=project)
    assert r.code == 1 and "update --write refused, nothing written" in r.err and "checkout-base.yaml" in r.err
    assert "Traceback" not in r.err and r.err.count("\n") == 1
    assert snapshot(project) == before
