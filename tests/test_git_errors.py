"""Repository problems are clear one-line errors: untrusted owner, missing objects, ambiguous or odd revisions."""
from __future__ import annotations

import json
import os
import shutil

import pygit2
import pytest

from gitrepos import GitCli, parameter, shop_registry

CHECKOUT = "registry/parameters/checkout/checkout-base.yaml"


@pytest.fixture
def shop(tmp_path):
    repo = GitCli(tmp_path / "shop")
    repo.commit("first: checkout at 0.4", shop_registry(checkout=0.4))
    repo.commit("second: checkout at 0.45", {CHECKOUT: parameter("checkout-base", "checkout", 0.45)})
    return repo


def one_line(res) -> str:
    assert "Traceback" not in res.err and res.err.count("\n") == 1, res
    return res.err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing a folder's owner needs root")
def test_a_repository_owned_by_another_user_says_how_to_mark_it_safe(shop, cli, tmp_path):
    stranger = tmp_path / "stranger"
    shutil.copytree(shop.path, stranger, symlinks=True)
    for folder, dirs, files in os.walk(stranger):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), 4321, 4321)
    os.lchown(stranger, 4321, 4321)
    res = cli("validate", "--rev", "HEAD", cwd=stranger)
    err = one_line(res)
    assert res.code == 2 and "owned by another user" in err
    assert f"git config --global --add safe.directory {stranger}" in err


def test_a_missing_object_names_the_revision_and_suggests_fetch(shop, cli):
    blob = shop.git("rev-parse", f"HEAD~1:{CHECKOUT}")
    os.remove(shop.path / ".git" / "objects" / blob[:2] / blob[2:])  # a damaged clone: one loose object gone
    assert cli("validate", "--rev", "HEAD", cwd=shop.path).code == 0  # HEAD does not need it
    res = cli("validate", "--rev", "HEAD~1", cwd=shop.path)
    err = one_line(res)
    assert res.code == 1 and "cannot read revision 'HEAD~1'" in err and blob[:10] in err and "git fetch" in err
    res = cli("diff", "HEAD~1", "HEAD", cwd=shop.path)
    assert res.code == 1 and "cannot read revision 'HEAD~1'" in one_line(res)
    res = cli("history", "checkout-base", cwd=shop.path)
    assert res.code == 1 and "git fetch" in one_line(res)


def test_an_ambiguous_short_sha_says_so(shop, cli):
    repo = pygit2.Repository(str(shop.path))
    seen: dict[str, str] = {}
    i = 0
    while True:  # loose blobs until two share a 4-digit prefix (a few hundred, by the birthday bound)
        oid = str(repo.create_blob(f"filler {i}\n".encode()))
        i += 1
        if oid[:4] in seen:
            prefix = oid[:4]
            break
        seen[oid[:4]] = oid
    res = cli("resolve", "e.checkout.p.mean", "--rev", prefix, cwd=shop.path)
    assert res.code == 2 and f"the short SHA '{prefix}' is ambiguous" in one_line(res)


def test_revision_syntax_resolves_as_git_rev_parse(shop, cli):
    for rev in (":/first", "HEAD^", "HEAD~1", "@~1", "main~1"):
        assert shop.git("rev-parse", rev) == shop.git("rev-parse", "HEAD~1")
        res = cli("resolve", "e.checkout.p.mean", "--rev", rev, "--format", "json", cwd=shop.path)
        assert res.code == 0, (rev, res)
        assert json.loads(res.out)["value"] == 0.4
    res = cli("resolve", "e.checkout.p.mean", "--rev", ":/second", "--format", "json", cwd=shop.path)
    assert json.loads(res.out)["value"] == 0.45


@pytest.mark.parametrize("rev, message", [
    (":/no such message", "no commit message matches 'no such message'"),
    ("HEAD~1..HEAD", "is a range of revisions; give one revision"),
    ("HEAD^{tree}", "names a tree, not a commit"),
    (f"HEAD:{CHECKOUT}", "names a blob, not a commit"),
])
def test_revisions_that_are_not_one_commit_are_refused(shop, cli, rev, message):
    res = cli("resolve", "e.checkout.p.mean", "--rev", rev, cwd=shop.path)
    assert res.code == 2 and message in one_line(res)
