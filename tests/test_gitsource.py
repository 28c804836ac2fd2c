"""Reading the registry at any Git revision, straight from the object database."""
from __future__ import annotations

import subprocess

import pygit2
import pytest

from funnelcheck.load import registry as registry_module
from funnelcheck.findings import FunnelcheckError, UsageError
from funnelcheck.load.cache import cache_dir
from funnelcheck.load.gitsource import GitTreeSource, load_revision, load_tree, open_revision
from funnelcheck.load.registry import ParseCache, find_project, load
from funnelcheck.load.sources import WorkTreeSource
from gitrepos import GitCli, PyRepo, parameter, shop_registry


@pytest.fixture
def shop(tmp_path):
    """Three commits: v1 (checkout 0.4), v2 (checkout 0.45, a google parameter), v3 (add-to-cart 0.55)."""
    repo = GitCli(tmp_path / "shop")
    repo.commit("v1", shop_registry(checkout=0.4))
    repo.git("tag", "v1")
    repo.commit("v2", shop_registry(checkout=0.45, google=0.5))
    repo.commit("v3", shop_registry(add=0.55, checkout=0.45, google=0.5))
    return repo


def test_tree_source_matches_the_work_tree_and_keys_are_blob_ids(shop):
    repo = pygit2.Repository(str(shop.path))
    source = GitTreeSource(repo, repo.head.peel(pygit2.Commit), "registry", "registry")
    files = source.files()
    disk = WorkTreeSource(shop.path / "registry").files()
    assert [f.path for f in files] == [f.path for f in disk]
    for sf in files:
        assert sf.key == shop.git("rev-parse", f"HEAD:registry/{sf.path}")
        assert sf.read() == (shop.path / "registry" / sf.path).read_bytes()


def test_revision_reads_the_object_database_not_the_work_tree(shop, monkeypatch):
    monkeypatch.chdir(shop.path)
    subprocess.run(["rm", "-rf", "registry"], check=True, cwd=shop.path)  # the work tree no longer has it
    project = find_project()
    head = load_revision(project, "HEAD").registry
    assert head.parameters["add-to-cart-base"].value.mean == 0.55
    assert load_revision(project, "HEAD~1").registry.parameters["add-to-cart-base"].value.mean == 0.5
    v1 = load_revision(project, "v1").registry
    assert v1.parameters["checkout-base"].value.mean == 0.4 and "checkout-google" not in v1.parameters
    sha = shop.git("rev-parse", "HEAD~1")
    assert load_revision(project, sha[:8]).registry.parameters["checkout-google"].value.mean == 0.5


def test_findings_name_the_same_paths_as_for_the_work_tree(shop, monkeypatch):
    shop.commit("broken", {"registry/parameters/checkout/checkout-base.yaml": "id: checkout-base\nedge: [\n"})
    monkeypatch.chdir(shop.path)
    loaded = load_revision(find_project(), "HEAD")
    assert [(f.path, f.code) for f in loaded.findings if f.severity == "error"] == [
        ("registry/parameters/checkout/checkout-base.yaml", "yaml-syntax")]


def test_unchanged_blobs_are_parsed_once(shop, monkeypatch):
    calls = []
    real = registry_module.parse_file
    monkeypatch.setattr(registry_module, "parse_file", lambda kind, sf, raw: calls.append(sf.path) or real(kind, sf, raw))
    project = find_project(registry=str(shop.path / "registry"))
    cache = ParseCache()
    load_tree(open_revision(project, "HEAD~1"), cache)
    assert len(calls) == 5  # contexts, graph, three parameters
    load_tree(open_revision(project, "HEAD"), cache)
    assert calls[5:] == ["parameters/cart/add-to-cart-base.yaml"]  # the only blob v3 changed
    load_tree(open_revision(project, "HEAD~1"), cache)
    assert len(calls) == 6


def test_the_blob_cache_persists_between_runs(shop, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(shop.path)
    load_revision(find_project(), "HEAD")
    assert (cache_dir(shop.path) / "git-parse.json").is_file()
    assert not (shop.path / ".funnelcheck").exists()
    calls = []
    monkeypatch.setattr(registry_module, "parse_file", lambda *a: calls.append(a) or (None, []))
    assert load_revision(find_project(), "HEAD").registry.parameters  # served from the cache
    assert calls == []


def test_config_is_read_at_the_revision(tmp_path, monkeypatch):
    repo = GitCli(tmp_path / "r")
    files = shop_registry(prefix="models")
    repo.commit("one", {**files, "funnelcheck.yaml": "registry: models\nbogus: 1\n"})
    repo.commit("two", {"funnelcheck.yaml": "registry: models\n"})
    monkeypatch.chdir(repo.path)
    project = find_project()
    assert [f.code for f in load_revision(project, "HEAD~1").findings if f.path == "funnelcheck.yaml"] == ["schema"]
    assert not [f for f in load_revision(project, "HEAD").findings if f.path == "funnelcheck.yaml"]


def test_registry_in_a_subfolder_and_symlinks(tmp_path):
    repo = PyRepo(tmp_path / "r")
    files = shop_registry(prefix="a/b/reg")
    repo.commit("one", files)
    commit = repo.repo.head.peel(pygit2.Commit)
    # Add two symlinks by hand: one inside the registry (followed), one escaping it (refused).
    reg_tree = commit.tree["a/b/reg/parameters/checkout"]
    tb = repo.repo.TreeBuilder(repo.repo[reg_tree.id])
    tb.insert("inside.yaml", repo.repo.create_blob(b"checkout-base.yaml"), pygit2.GIT_FILEMODE_LINK)
    tb.insert("outside.yaml", repo.repo.create_blob(b"../../../../../../etc/passwd"), pygit2.GIT_FILEMODE_LINK)
    new_checkout = tb.write()

    def replace(tree, parts, oid):
        builder = repo.repo.TreeBuilder(tree)
        if len(parts) == 1:
            builder.insert(parts[0], oid, pygit2.GIT_FILEMODE_TREE)
        else:
            builder.insert(parts[0], replace(repo.repo[tree[parts[0]].id], parts[1:], oid), pygit2.GIT_FILEMODE_TREE)
        return builder.write()

    new_root = replace(commit.tree, "a/b/reg/parameters/checkout".split("/"), new_checkout)
    sig = pygit2.Signature("A", "a@example.com", 1_700_000_000, 0)
    repo.repo.create_commit("refs/heads/main", sig, sig, "links", new_root, [commit.id])
    source = GitTreeSource(repo.repo, repo.repo.head.peel(pygit2.Commit), "a/b/reg", "a/b/reg")
    paths = [f.path for f in source.files()]
    assert "parameters/checkout/inside.yaml" in paths and "parameters/checkout/outside.yaml" not in paths
    assert [(p.path, p.code) for p in source.problems] == [("a/b/reg/parameters/checkout/outside.yaml", "symlink-escape")]
    loaded = load(source)
    assert any(f.code == "id-mismatch" for f in loaded.findings)  # inside.yaml holds checkout-base's content


@pytest.mark.parametrize("rev, message", [
    ("no-such-branch", "unknown revision 'no-such-branch'"),
    ("HEAD~99", "unknown revision 'HEAD~99'"),
    ("0123456789abcdef0123456789abcdef01234567", "unknown revision"),
])
def test_unknown_revisions(shop, monkeypatch, rev, message):
    monkeypatch.chdir(shop.path)
    with pytest.raises(UsageError, match=message):
        load_revision(find_project(), rev)


def test_registry_missing_at_revision(tmp_path, monkeypatch):
    repo = GitCli(tmp_path / "r")
    repo.commit("readme only", {"README.md": "hello\n"})
    repo.commit("registry", shop_registry())
    monkeypatch.chdir(repo.path)
    with pytest.raises(FunnelcheckError, match=r"there is no registry folder registry/ at revision 'HEAD~1'"):
        load_revision(find_project(), "HEAD~1")


def test_shallow_clone_says_fetch_full_history(shop, tmp_path, monkeypatch):
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{shop.path}", str(clone)], check=True)
    monkeypatch.chdir(clone)
    assert load_revision(find_project(), "HEAD").registry.parameters["add-to-cart-base"].value.mean == 0.55
    with pytest.raises(UsageError, match="shallow: fetch with full history"):
        load_revision(find_project(), "HEAD~1")


def test_cli_rev_errors_are_one_line(shop, tmp_path, cli):
    res = cli("resolve", "e.checkout.p.mean", "--rev", "nope", cwd=shop.path)
    assert res.code == 2 and res.err.count("\n") == 1 and "unknown revision 'nope'" in res.err
    (tmp_path / "plain" / "registry").mkdir(parents=True)
    res = cli("resolve", "e.checkout.p.mean", "--rev", "HEAD", cwd=tmp_path / "plain")
    assert res.code == 2 and "needs a Git repository" in res.err and "Traceback" not in res.err


def test_cli_resolve_at_revisions(shop, cli):
    ref = "e.checkout.context(channel='google').p.mean"
    assert "= 0.4\n" in cli("resolve", ref, "--rev", "v1", cwd=shop.path).out
    assert "= 0.5\n" in cli("resolve", ref, "--rev", "main", cwd=shop.path).out
    assert "= 0.5\n" in cli("resolve", ref, cwd=shop.path).out  # the work tree


def test_cli_rev_on_every_reading_command(shop, cli):
    """validate, resolve and whatif all read `--rev` through the same loader."""
    (shop.path / "registry" / "parameters" / "checkout" / "checkout-base.yaml").write_text(
        parameter("checkout-base", "checkout", 1.5))  # broken in the work tree only
    res = cli("validate", "--rev", "HEAD", cwd=shop.path)
    assert res.code == 0, res
    assert cli("validate", cwd=shop.path).code == 1
    res = cli("whatif", "shop", "--rev", "v1", "--format", "json", cwd=shop.path)
    assert res.code == 0, res
    import json

    assert json.loads(res.out)["conversion"]["point"] == pytest.approx(0.5 * 0.4)
    res = cli("whatif", "shop", "--rev", "HEAD", "--format", "json", cwd=shop.path)
    assert json.loads(res.out)["conversion"]["point"] == pytest.approx(0.55 * (0.6 * 0.5 + 0.4 * 0.45))


def test_config_outside_the_repository_is_read_from_disk(tmp_path):
    repo = GitCli(tmp_path / "models")
    repo.commit("registry", shop_registry())
    outside = tmp_path / "settings" / "funnelcheck.yaml"
    outside.parent.mkdir()
    outside.write_text("registry: ../models/registry\nbogus: 1\n")
    loaded = load_revision(find_project(config=str(outside)), "HEAD")
    assert [f.code for f in loaded.findings if f.path.endswith("funnelcheck.yaml")] == ["schema"]
    assert loaded.registry.parameters["checkout-base"].value.mean == 0.4
