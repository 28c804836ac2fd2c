"""`funnelcheck history`: one parameter across the commits that changed it, following moves and merges."""
from __future__ import annotations

import csv
import io
import json
import subprocess

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelcheck.git.history import parameter_history
from gitrepos import GitCli, PyRepo, parameter, shop_registry

OLD = "registry/parameters/checkout/checkout-base.yaml"
NEW = "registry/parameters/archive/checkout/checkout-base.yaml"


def checkout_file(mean: float) -> dict[str, str]:
    return {OLD: parameter("checkout-base", "checkout", mean, 0.05)}


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """Edits, unrelated commits, a move, and three merges (one taken from the side, one discarded, one evil).

    Returns the repository and the expected (commit, status, mean, previous mean, path) rows, newest first.
    """
    repo = GitCli(tmp_path_factory.mktemp("story") / "repo")
    t = iter(range(1_700_000_000, 1_800_000_000, 100))
    c = {}
    c["create"] = repo.commit("create the shop", {**shop_registry(), **checkout_file(0.4)}, when=next(t))
    repo.commit("docs", {"README.md": "shop\n"}, when=next(t))
    c["edit1"] = repo.commit("raise checkout", checkout_file(0.45), author="Bob", when=next(t))
    repo.commit("other parameter", {"registry/parameters/cart/add-to-cart-base.yaml":
                                    parameter("add-to-cart-base", "add-to-cart", 0.6)}, when=next(t))
    c["move"] = repo.move(OLD, NEW, "archive checkout", when=next(t))
    # A feature branch edits the parameter; main moves on with something else; a real merge.
    repo.git("switch", "-q", "-c", "feature")
    c["feature"] = repo.commit("feature value", {NEW: parameter("checkout-base", "checkout", 0.5, 0.05)},
                               author="Cara", when=next(t))
    repo.git("switch", "-q", "main")
    repo.commit("unrelated on main", {"README.md": "shop v2\n"}, when=next(t))
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature",
             env={"GIT_AUTHOR_DATE": f"{next(t)} +0000", "GIT_COMMITTER_DATE": f"{next(t)} +0000"})
    # A side branch whose value the merge discards (-s ours): hidden, as in `git log -- PATH`.
    repo.git("switch", "-q", "-c", "discarded")
    repo.commit("experiment", {NEW: parameter("checkout-base", "checkout", 0.9, 0.05)}, when=next(t))
    repo.git("switch", "-q", "main")
    c["main55"] = repo.commit("main value", {NEW: parameter("checkout-base", "checkout", 0.55, 0.05)}, when=next(t))
    repo.git("merge", "-q", "--no-ff", "-s", "ours", "-m", "merge discarded", "discarded",
             env={"GIT_AUTHOR_DATE": f"{next(t)} +0000", "GIT_COMMITTER_DATE": f"{next(t)} +0000"})
    # An evil merge: both sides changed the value and the merge settles on a third one.
    repo.git("switch", "-q", "-c", "side")
    c["side"] = repo.commit("side value", {NEW: parameter("checkout-base", "checkout", 0.6, 0.05)}, when=next(t))
    repo.git("switch", "-q", "main")
    c["main61"] = repo.commit("main value again", {NEW: parameter("checkout-base", "checkout", 0.61, 0.05)},
                              when=next(t))
    repo.git("merge", "-q", "--no-ff", "--no-commit", "-s", "ours", "side")
    c["evil"] = repo.commit("merge side, settle on 0.62", {NEW: parameter("checkout-base", "checkout", 0.62, 0.05)},
                            when=next(t))
    repo.commit("last unrelated", {"README.md": "shop v3\n"}, when=next(t))
    expected = [
        (c["evil"], "modified", 0.62, 0.61, NEW),
        (c["main61"], "modified", 0.61, 0.55, NEW),
        (c["side"], "modified", 0.6, 0.55, NEW),
        (c["main55"], "modified", 0.55, 0.5, NEW),
        (c["feature"], "modified", 0.5, 0.45, NEW),
        (c["move"], "moved", 0.45, 0.45, NEW),
        (c["edit1"], "modified", 0.45, 0.4, OLD),
        (c["create"], "added", 0.4, None, OLD),
    ]
    return repo, expected


def rows_of(out: str) -> list[tuple]:
    return [(r["commit"], r["status"], r["mean"], (r["previous"] or {}).get("mean"), r["path"]) for r in json.loads(out)]


def test_history_follows_edits_moves_and_merges(story, cli):
    repo, expected = story
    res = cli("history", "checkout-base", "--format", "json", cwd=repo.path)
    assert res.code == 0, res
    assert rows_of(res.out) == expected
    first = json.loads(res.out)[-1]
    assert first["author"] == "Ada Tester" and first["message"] == "create the shop" and first["stdev"] == 0.05
    assert json.loads(res.out)[-2]["author"] == "Bob"
    assert json.loads(res.out)[0]["change"] == pytest.approx(0.01)


def test_history_limit_and_rev(story, cli):
    repo, expected = story
    res = cli("history", "checkout-base", "--format", "json", "--limit", "2", cwd=repo.path)
    assert rows_of(res.out) == expected[:2]
    res = cli("history", "checkout-base", "--format", "json", "--rev", expected[5][0], cwd=repo.path)
    assert rows_of(res.out) == expected[5:]
    res = cli("history", "checkout-base", "--format", "json", "--rev", "feature", cwd=repo.path)
    assert rows_of(res.out) == expected[4:]


def test_history_table_and_csv(story, cli):
    repo, expected = story
    table = cli("history", "checkout-base", cwd=repo.path).out.splitlines()
    assert table[0].split()[:7] == ["COMMIT", "DATE", "AUTHOR", "MEAN", "STDEV", "CHANGE", "STATUS"]
    assert len(table) == 1 + len(expected)
    assert table[1].startswith(expected[0][0][:10]) and "+0.01" in table[1] and "settle on 0.62" in table[1]
    rows = list(csv.DictReader(io.StringIO(cli("history", "checkout-base", "--format", "csv", cwd=repo.path).out)))
    assert [r["commit"] for r in rows] == [e[0] for e in expected]
    assert rows[-1]["change"] == "" and float(rows[0]["mean"]) == 0.62 and rows[-2]["path"] == OLD


def test_history_matches_git_log_with_default_simplification(story):
    """Independent check: `git log -- PATH` on the old and the new path lists exactly our commits.

    (Its default history simplification is the rule history follows; the move commit appears under both paths.)
    """
    repo, expected = story
    logged = repo.git("log", "--format=%H", "--", NEW).split() + repo.git("log", "--format=%H", "--", OLD).split()
    assert sorted(set(logged)) == sorted(e[0] for e in expected)
    assert len(logged) == len(expected) + 1
    assert repo.git("log", "--format=%H", "--", NEW).split() == [e[0] for e in expected[:6]]


def test_unknown_parameter_and_bad_id(story, cli):
    repo, _ = story
    res = cli("history", "never-existed", cwd=repo.path)
    assert res.code == 1 and "parameter 'never-existed' is not in registry/parameters/" in res.err
    assert res.err.count("\n") == 1
    res = cli("history", "Bad Id", cwd=repo.path)
    assert res.code == 2 and "is not a parameter id" in res.err


def test_removed_broken_and_readded(tmp_path, cli):
    repo = GitCli(tmp_path / "r")
    repo.commit("create", {**shop_registry(), **checkout_file(0.4)})
    broken = repo.commit("break it", {OLD: "id: checkout-base\nedge: checkout\nvalue: {mean: 0.4, stdev: [\n"})
    removed = repo.commit("remove", remove=(OLD,))
    readded = repo.commit("re-add elsewhere", {NEW: parameter("checkout-base", "checkout", 0.3, 0.01)})
    rows = json.loads(cli("history", "checkout-base", "--format", "json", cwd=repo.path).out)
    assert [(r["commit"], r["status"], r["mean"]) for r in rows[:3]] == [
        (readded, "added", 0.3), (removed, "removed", None), (broken, "modified", None)]
    assert rows[2]["error"].startswith("line 4: YAML syntax error") and rows[2]["change"] is None
    assert rows[1]["path"] is None and rows[1]["previous"]["path"] == OLD


def test_shallow_clone_warns_and_marks_the_boundary(story, tmp_path, cli):
    repo, expected = story
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "2", "--branch", "main", f"file://{repo.path}", str(clone)],
                   check=True)
    res = cli("history", "checkout-base", "--format", "json", cwd=clone)
    assert res.code == 0 and "clone is shallow; fetch with full history" in res.err
    rows = json.loads(res.out)
    assert rows[-1]["status"] == "truncated" and rows[0]["commit"] == expected[0][0]


def test_progress_is_reported_and_never_printed(story, capsys):
    repo, _ = story
    r = pygit2.Repository(str(repo.path))
    seen = []
    history = parameter_history(r, r.head.peel(pygit2.Commit), "registry", "checkout-base",
                                progress=lambda scanned, found: seen.append((scanned, found)))
    assert seen[-1] == (history.commits_scanned, len(history.rows)) and history.commits_scanned >= 15
    assert capsys.readouterr() == ("", "")


def test_history_reports_its_totals_to_the_progress_display(story):
    repo, rows = story
    r = pygit2.Repository(str(repo.path))
    calls = []
    history = parameter_history(r, r.head.peel(pygit2.Commit), "registry", "checkout-base",
                                progress=lambda scanned, found: calls.append((scanned, found)))
    assert calls[-1] == (history.commits_scanned, len(rows)) and history.commits_scanned > len(rows)


def test_empty_repository(tmp_path, cli):
    GitCli(tmp_path / "empty")
    (tmp_path / "empty" / "registry").mkdir()
    res = cli("history", "x", cwd=tmp_path / "empty")
    assert res.code == 2 and "the repository has no commits yet" in res.err


# A linear history of random operations, built with pygit2; the expected rows come from replaying the
# operations, independently of Git.
FOLDERS = ("parameters", "parameters/a", "parameters/a/b", "parameters/c")
ops = st.lists(st.one_of(
    st.tuples(st.just("edit"), st.sampled_from([0.1, 0.2, 0.3, 0.4])),
    st.tuples(st.just("move"), st.sampled_from(FOLDERS)),
    st.tuples(st.just("other"), st.sampled_from([0.1, 0.2])),
    st.tuples(st.just("unrelated"), st.integers(0, 3)),
    st.tuples(st.just("delete"), st.none()),
), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops)
def test_history_replays_random_operations(tmp_path_factory, ops):
    repo = PyRepo(tmp_path_factory.mktemp("prop") / "r")
    base = {k: v for k, v in shop_registry().items() if "checkout-base" not in k}
    folder, mean = "parameters", 0.5
    target = lambda: f"registry/{folder}/checkout-base.yaml"  # noqa: E731
    state = {target(): parameter("checkout-base", "checkout", mean)}
    expected = [(str(repo.commit("start", {**base, **state})), "added", 0.5)]
    for i, (op, arg) in enumerate(ops):
        before = dict(state)
        if op == "edit" and state:
            mean = arg
            state = {target(): parameter("checkout-base", "checkout", mean)}
        elif op == "move" and state:
            folder = arg
            state = {target(): parameter("checkout-base", "checkout", mean)}
        elif op == "delete":
            state = {}
        elif op == "edit" or op == "move":  # deleted: edit/move re-create it
            folder = arg if op == "move" else folder
            mean = arg if op == "edit" else mean
            state = {target(): parameter("checkout-base", "checkout", mean)}
        files = {"registry/parameters/cart/add-to-cart-base.yaml": parameter("add-to-cart-base", "add-to-cart", arg)} \
            if op == "other" else {f"notes/{arg}.txt": f"{i}\n"} if op == "unrelated" else {}
        commit = repo.commit(f"{op} {arg}", {**files, **state}, remove=tuple(set(before) - set(state)))
        if before != state:
            status = ("removed" if not state else "added" if not before
                      else "moved" if list(before.values()) == list(state.values()) else "modified")
            expected.append((str(commit), status, mean if state else None))
    history = parameter_history(repo.repo, repo.repo.head.peel(pygit2.Commit), "registry", "checkout-base")
    got = [(r.commit, r.status, r.value.estimate.mean if r.value else None) for r in history.rows]
    assert got == expected[::-1]
