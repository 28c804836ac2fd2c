"""The history walk index: a run after the first reads only the commits no earlier run read, and
its rows are exactly those of a full walk — after new commits, from another branch, with the
entry damaged, after a shallow clone is deepened, after history is rewritten."""
from __future__ import annotations

import json
import subprocess

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnelcheck.git import history as history_module
from funnelcheck.git import walkindex
from funnelcheck.git.history import parameter_history
from funnelcheck.git.walkindex import WalkIndex, walk_index
from funnelcheck.load.cache import cache_dir, read_entry, write_entry
from gitrepos import GitCli, parameter, shop_registry, write_tree

PID = "checkout-base"
OLD = "registry/parameters/checkout/checkout-base.yaml"
NEW = "registry/parameters/archive/checkout-base.yaml"
WALK_ORDER = pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME


def value(mean: float) -> str:
    return parameter(PID, "checkout", mean, 0.05)


def rows(history) -> list[tuple]:
    return [(r.commit, r.status, r.path, r.previous_path,
             r.value.estimate.mean if r.value and r.value.estimate else None) for r in history.rows]


def run(repo: pygit2.Repository, start: str | pygit2.Oid, index: WalkIndex | None = None):
    """The history from `start`; the index is saved after, as the command does."""
    commit = (repo.revparse_single(start) if isinstance(start, str) else repo[start]).peel(pygit2.Commit)
    history = parameter_history(repo, commit, "registry", PID, index=index)
    if index is not None:
        index.save()
    return history


def reachable(repo: pygit2.Repository, start: str = "HEAD") -> int:
    return sum(1 for _ in repo.walk(repo.revparse_single(start).id))


def on_disk(tmp_path, repo: pygit2.Repository) -> WalkIndex:
    """The index as a run of the command would find it: read from its file, every time."""
    return walk_index(tmp_path / "project", PID, "registry", repo)


@pytest.fixture
def shop(tmp_path):
    """Edits, a move, a branch merged (its edit taken), a branch whose edit a merge discarded, an evil merge."""
    repo = GitCli(tmp_path / "shop")
    t = iter(range(1_700_000_000, 1_800_000_000, 100))

    def merge_env() -> dict[str, str]:
        return {"GIT_AUTHOR_DATE": f"{next(t)} +0000", "GIT_COMMITTER_DATE": f"{next(t)} +0000"}
    repo.commit("create", {**shop_registry(), OLD: value(0.4)}, when=next(t))
    repo.commit("edit", {OLD: value(0.45)}, when=next(t))
    repo.move(OLD, NEW, "move", when=next(t))
    repo.git("switch", "-q", "-c", "feature")
    repo.commit("feature edit", {NEW: value(0.5)}, when=next(t))
    repo.git("switch", "-q", "main")
    repo.commit("readme", {"README.md": "shop\n"}, when=next(t))
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature", env=merge_env())
    repo.git("switch", "-q", "-c", "discarded")
    repo.commit("experiment", {NEW: value(0.9)}, when=next(t))
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-s", "ours", "-m", "merge discarded", "discarded", env=merge_env())
    repo.git("switch", "-q", "-c", "side")
    repo.commit("side edit", {NEW: value(0.6)}, when=next(t))
    repo.git("switch", "-q", "main")
    repo.commit("main edit", {NEW: value(0.61)}, when=next(t))
    repo.git("merge", "-q", "--no-ff", "--no-commit", "-s", "ours", "side")
    repo.commit("evil merge", {NEW: value(0.62)}, when=next(t))
    repo.commit("last", {"README.md": "shop v2\n"}, when=next(t))
    return repo


def count_walks(monkeypatch) -> list:
    """Each call of the walk, recorded with the number of commits it read."""
    calls = []
    real = history_module._walk

    def counted(repo, start, locator, index, shallow, progress, history):
        top = real(repo, start, locator, index, shallow, progress, history)
        calls.append(history.commits_scanned)
        return top
    monkeypatch.setattr(history_module, "_walk", counted)
    return calls


def test_a_second_run_reads_no_commit_and_gives_the_same_rows(shop, tmp_path):
    repo = pygit2.Repository(str(shop.path))
    cold = run(repo, "HEAD")
    first = run(repo, "HEAD", on_disk(tmp_path, repo))
    assert first.commits_scanned == cold.commits_scanned == reachable(repo) == 12 and not first.from_index
    again = run(repo, "HEAD", on_disk(tmp_path, repo))
    assert again.commits_scanned == 0 and again.from_index
    assert rows(again) == rows(first) == rows(cold)
    assert [r[1] for r in rows(cold)] == ["modified"] * 4 + ["moved", "modified", "added"]


def test_after_new_commits_only_those_are_read(shop, tmp_path):
    repo = pygit2.Repository(str(shop.path))
    run(repo, "HEAD", on_disk(tmp_path, repo))
    shop.commit("unrelated", {"README.md": "shop v3\n"})
    shop.commit("edit after", {NEW: value(0.7)})
    shop.commit("unrelated again", {"README.md": "shop v4\n"})
    warm = run(repo, "HEAD", on_disk(tmp_path, repo))
    assert warm.commits_scanned == 3 and warm.from_index
    assert rows(warm) == rows(run(repo, "HEAD"))
    assert rows(warm)[0][1:] == ("modified", NEW, NEW, 0.7)


def test_another_branch_and_older_starts_give_the_rows_of_a_full_walk(shop, tmp_path):
    repo = pygit2.Repository(str(shop.path))
    run(repo, "HEAD", on_disk(tmp_path, repo))
    # A branch from an old commit (not a descendant of the indexed start), with its own edits.
    shop.git("switch", "-q", "-c", "hotfix", "main~6")
    shop.commit("hotfix edit", {NEW: value(0.3)})
    shop.commit("hotfix readme", {"README.md": "hotfix\n"})
    for start in ("hotfix", "main", "feature", "discarded", "main~2", "side", "hotfix~1"):
        warm = run(repo, start, on_disk(tmp_path, repo))
        assert rows(warm) == rows(run(repo, start)), start
        assert warm.from_index, start
    assert run(repo, "hotfix", on_disk(tmp_path, repo)).commits_scanned == 0
    # A merge of the hotfix into main: only the merge is new.
    shop.git("switch", "-q", "main")
    shop.git("merge", "-q", "--no-ff", "-X", "theirs", "-m", "merge hotfix", "hotfix")
    warm = run(repo, "HEAD", on_disk(tmp_path, repo))
    assert warm.commits_scanned == 1 and rows(warm) == rows(run(repo, "HEAD"))


def test_a_damaged_entry_is_rebuilt_by_a_full_walk(shop, tmp_path):
    repo = pygit2.Repository(str(shop.path))
    expected = rows(run(repo, "HEAD"))
    path = on_disk(tmp_path, repo).path
    for damage in (lambda raw: raw[: len(raw) // 2],  # truncated
                   lambda raw: raw[:-5] + bytes([raw[-5] ^ 1]) + raw[-4:],  # a flipped bit
                   lambda raw: b"",
                   lambda raw: b"\x80\x04K\x01."):  # a pickle where the entry was
        run(repo, "HEAD", on_disk(tmp_path, repo))
        path.write_bytes(damage(path.read_bytes()))
        assert read_entry(path) is None
        warm = run(repo, "HEAD", on_disk(tmp_path, repo))
        assert warm.commits_scanned == reachable(repo) and rows(warm) == expected


def test_an_entry_of_the_wrong_shape_or_inconsistent_is_not_trusted(shop, tmp_path):
    repo = pygit2.Repository(str(shop.path))
    expected = rows(run(repo, "HEAD"))
    index = on_disk(tmp_path, repo)
    run(repo, "HEAD", index)
    good = read_entry(index.path)
    head = str(repo.head.target)
    wrong = [
        {**good, "changes": [c[:-1] for c in good["changes"]]},  # a field missing
        {**good, "changes": [[*c[:6], "rewritten", c[7]] for c in good["changes"]]},  # an unknown status
        {**good, "tips": [[head, "f" * 40]]},  # a tip whose change is not described
        {**good, "key": [*good["key"][:2], "other-parameter", *good["key"][3:]]},  # another parameter's
        {**good, "changes": [[c[0], str(c[1]), *c[2:]] for c in good["changes"]]},  # a time as text
    ]
    for data in wrong:
        write_entry(index.path, data)
        warm = run(repo, "HEAD", on_disk(tmp_path, repo))
        assert warm.commits_scanned == reachable(repo) and rows(warm) == expected


def test_a_stale_entry_is_dropped_and_the_walk_done_in_full(shop, tmp_path):
    """An entry that lacks a merge it should describe (written by hand: the walk never does) is not followed."""
    repo = pygit2.Repository(str(shop.path))
    index = on_disk(tmp_path, repo)
    run(repo, "HEAD", index)
    data = read_entry(index.path)
    assert data["links"]  # the TREESAME merges
    write_entry(index.path, {**data, "links": []})
    # A commit on top of the "merge discarded" merge: the walk must look below it, through the index.
    shop.git("switch", "-q", "-c", "late", ":/merge discarded")
    shop.commit("late edit", {NEW: value(0.33)})
    warm = run(repo, "late", on_disk(tmp_path, repo))
    assert rows(warm) == rows(run(repo, "late"))
    assert warm.commits_scanned == run(repo, "late").commits_scanned  # all of them: the entry was dropped


def test_the_entry_is_json_data_in_the_user_cache_never_in_the_repository(shop, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cli("history", PID, cwd=shop.path).code == 0
    [entry] = (cache_dir(shop.path) / "history-index").iterdir()
    raw = entry.read_bytes()
    head, _, payload = raw.partition(b"\n")
    assert head.startswith(b"funnelcheck-cache-1 ")
    data = json.loads(payload)
    assert set(data) == {"key", "tips", "links", "changes"}

    def plain(x) -> bool:
        return x is None or type(x) in (str, int) or (type(x) is list and all(plain(v) for v in x))
    assert all(plain(v) for v in data.values())
    assert shop.git("status", "--porcelain") == ""


def test_the_command_uses_the_index_and_its_rows_do_not_change(shop, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    walks = count_walks(monkeypatch)
    first = cli("history", PID, "--format", "json", cwd=shop.path)
    second = cli("history", PID, "--format", "json", cwd=shop.path)
    assert first.code == second.code == 0 and first.out == second.out
    total = reachable(pygit2.Repository(str(shop.path)))
    assert walks == [total]  # the second run walked nothing
    shop.commit("edit after", {NEW: value(0.7)})
    third = cli("history", PID, "--format", "json", cwd=shop.path)
    assert walks == [total, 1]
    assert json.loads(third.out)[1:] == json.loads(first.out) and json.loads(third.out)[0]["mean"] == 0.7


def test_a_parameter_never_found_leaves_no_entry(shop, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for _ in range(2):
        res = cli("history", "no-such-parameter", cwd=shop.path)
        assert res.code == 1 and f"{reachable(pygit2.Repository(str(shop.path)))} commits searched" in res.err
    assert not (cache_dir(shop.path) / "history-index").exists()


def test_each_registry_placement_has_its_own_entry(tmp_path, cli, monkeypatch):
    """`--registry` fixes the folder at every commit: its rows differ, and so does its entry."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    repo = GitCli(tmp_path / "moved")
    repo.commit("before", {"funnelcheck.yaml": "registry: registry\n", **shop_registry(checkout=0.4)})
    repo.commit("edit", {OLD: value(0.45)})
    repo.git("mv", "registry", "models")
    repo.commit("move the registry", {"funnelcheck.yaml": "registry: models\n"})
    repo.commit("after", {"models/parameters/checkout/checkout-base.yaml": value(0.5)})
    for _ in range(2):
        followed = json.loads(cli("history", PID, "--format", "json", cwd=repo.path).out)
        fixed = json.loads(cli("history", PID, "--format", "json", "--registry", "models", cwd=repo.path).out)
        assert [r["status"] for r in followed] == ["modified", "moved", "modified", "added"]
        assert [r["status"] for r in fixed] == ["modified", "added"]
    assert len(list((cache_dir(repo.path) / "history-index").iterdir())) == 2


def test_deepening_a_shallow_clone_gives_the_full_history(shop, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "3", "--branch", "main", f"file://{shop.path}", str(clone)],
                   check=True)
    shallow = json.loads(cli("history", PID, "--format", "json", cwd=clone).out)
    assert shallow[-1]["status"] == "truncated"
    subprocess.run(["git", "fetch", "-q", "--unshallow"], cwd=clone, check=True)
    deep = cli("history", PID, "--format", "json", cwd=clone)
    assert "shallow" not in deep.err
    assert deep.out == cli("history", PID, "--format", "json", cwd=shop.path).out


def test_rewritten_history_drops_the_lost_start(shop, tmp_path):
    repo = pygit2.Repository(str(shop.path))
    shop.commit("to be amended", {NEW: value(0.8)})
    lost = shop.git("rev-parse", "HEAD")
    run(repo, "HEAD", on_disk(tmp_path, repo))
    shop.git("reset", "-q", "--hard", "HEAD~1")
    shop.commit("amended", {NEW: value(0.81)})
    shop.git("reflog", "expire", "--expire=now", "--all")
    shop.git("gc", "-q", "--prune=now")
    repo = pygit2.Repository(str(shop.path))
    assert repo.get(lost) is None
    warm = run(repo, "HEAD", on_disk(tmp_path, repo))
    assert rows(warm) == rows(run(repo, "HEAD")) and rows(warm)[0][4] == 0.81
    assert lost not in on_disk(tmp_path, repo).tips


# Random histories with branches and merges, queried from random starts through one index kept on
# disk (with room for only two starts, so starts are also forgotten): each answer must equal a full
# walk's, and a reference computed the plain way (every commit searched, Git's simplification as
# written in the module doc, libgit2's walk order).
FOLDERS = ("parameters", "parameters/a", "parameters/a/b")
CHANGES = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from([0.1, 0.2, 0.3])),
    st.tuples(st.just("move"), st.sampled_from(FOLDERS)),
    st.tuples(st.just("delete"), st.none()),
    st.tuples(st.just("other"), st.sampled_from([0.1, 0.2])),
    st.tuples(st.just("unrelated"), st.integers(0, 2)),
)
STEPS = st.lists(st.one_of(
    st.tuples(st.just("commit"), st.integers(0, 99), CHANGES),
    st.tuples(st.just("merge"), st.integers(0, 99), st.integers(0, 99), st.sampled_from(["ours", "theirs", "evil"])),
    st.tuples(st.just("query"), st.integers(0, 99)),
), min_size=1, max_size=18)


def reference(repo: pygit2.Repository, start: pygit2.Oid) -> set[tuple]:
    def locate(commit: pygit2.Commit):
        found = []

        def search(tree, prefix):
            for entry in tree:
                if isinstance(entry, pygit2.Tree):
                    search(entry, f"{prefix}{entry.name}/")
                elif entry.name == f"{PID}.yaml":
                    found.append((f"{prefix}{entry.name}", str(entry.id)))
        try:
            search(commit.tree["registry/parameters"], "registry/parameters/")
        except KeyError:
            pass
        assert len(found) <= 1
        return found[0] if found else None

    order = list(repo.walk(start, WALK_ORDER))
    where = {c.id: locate(c) for c in order}
    kept, out = {start}, set()
    for c in order:
        if c.id not in kept:
            continue
        here, parents = where[c.id], c.parent_ids
        same = next((p for p in parents if where[p] == here), None)
        if same is not None:
            kept.add(same)
            continue
        if here is None and not parents:
            continue
        kept.update(parents)
        first = where[parents[0]] if parents else None
        status = ("removed" if here is None else "added" if first is None
                  else "moved" if here[1] == first[1] else "modified")
        out.add((str(c.id), status, here[0] if here else None, first[0] if first else None))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_random_histories_warm_equals_cold_equals_the_reference(tmp_path_factory, monkeypatch, steps):
    monkeypatch.setattr(walkindex, "MAX_TIPS", 2)
    tmp = tmp_path_factory.mktemp("dag")
    repo = pygit2.init_repository(str(tmp / "r"), initial_head="main")
    clock = iter(range(1_700_000_000, 1_800_000_000, 60))
    base = {k: v.encode() for k, v in shop_registry().items() if PID not in k}

    def commit(files: dict, parents: list, message: str) -> pygit2.Oid:
        sig = pygit2.Signature("Ada", "ada@example.com", next(clock), 0)
        oid = repo.create_commit(None, sig, sig, message, write_tree(repo, files), parents)
        states.append((oid, files))
        return oid

    def place(folder: str, mean: float) -> dict:
        return {f"registry/{folder}/{PID}.yaml": value(mean).encode()}

    states: list[tuple[pygit2.Oid, dict]] = []
    commit({**base, **place("parameters", 0.5)}, [], "start")
    queried = []
    for step in steps:
        if step[0] == "commit":
            parent, files = states[step[1] % len(states)]
            files = {k: v for k, v in files.items()}
            mine = [k for k in files if k.endswith(f"/{PID}.yaml")]
            kind, arg = step[2]
            mean = 0.5 if not mine else float(files[mine[0]].split(b"mean: ")[1].split(b",")[0])
            folder = mine[0].split("/", 1)[1].rsplit("/", 1)[0] if mine else "parameters"
            if kind in ("edit", "move", "delete"):
                for k in mine:
                    del files[k]
            if kind == "edit":
                files.update(place(folder, arg))
            elif kind == "move":
                files.update(place(arg, mean))
            elif kind == "other":
                files["registry/parameters/cart/add-to-cart-base.yaml"] = parameter(
                    "add-to-cart-base", "add-to-cart", arg).encode()
            elif kind == "unrelated":
                files[f"notes/{arg}.txt"] = f"{len(states)}\n".encode()
            commit(files, [parent], f"{kind} {arg}")
        elif step[0] == "merge":
            (a, files_a), (b, files_b) = states[step[1] % len(states)], states[step[2] % len(states)]
            if a == b:
                continue
            files = dict(files_b if step[3] == "theirs" else files_a)
            if step[3] == "evil":
                files = {k: v for k, v in files.items() if not k.endswith(f"/{PID}.yaml")}
                files.update(place("parameters", 0.99))
            commit(files, [a, b], f"merge {step[3]}")
        else:
            queried.append(states[step[1] % len(states)][0])
    queried += [states[-1][0], *(oid for oid, _ in states[::-1])]
    for start in queried:
        cold = run(repo, start)
        warm = run(repo, start, on_disk(tmp, repo))
        assert rows(warm) == rows(cold)
        assert {r[:4] for r in rows(cold)} == reference(repo, start)
        again = run(repo, start, on_disk(tmp, repo))
        assert again.commits_scanned == 0 and rows(again) == rows(cold)
        commits = [repo[r[0]] for r in rows(cold)]  # children before parents
        assert not any(repo.descendant_of(later.id, earlier.id)
                       for i, earlier in enumerate(commits) for later in commits[i + 1:])
