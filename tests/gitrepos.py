"""Real Git repositories for tests: built with the git CLI or straight with pygit2.

Shared by the Git-native tests (gitsource, history, diff, github, workflows).
"""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pygit2

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Ada Tester",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Tester",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}

CONTEXTS = """
contexts:
  - id: channel
    values:
      - {id: google, share: 0.6}
      - {id: organic, share: 0.4}
"""

# home --add-to-cart--> cart --checkout--> buy (success). Conversion = p(add-to-cart) * p(checkout).
SHOP_GRAPH = """
id: shop
name: Shop
nodes:
  - id: home
    entry: {weight: 1}
  - id: cart
  - id: buy
    outcome: success
edges:
  - id: add-to-cart
    from: home
    to: cart
  - id: checkout
    from: cart
    to: buy
"""


def parameter(pid: str, edge: str, mean: float, stdev: float = 0.0, context: dict | None = None,
              description: str | None = None) -> str:
    """The text of one parameter file."""
    lines = [f"id: {pid}", f"edge: {edge}"]
    if context:
        lines.append("context_filter: {" + ", ".join(f"{k}: {v}" for k, v in context.items()) + "}")
    lines.append(f"value: {{mean: {mean}, stdev: {stdev}}}")
    if description is not None:
        lines.append(f"description: {description!r}" if "'" not in description else f'description: "{description}"')
    return "\n".join(lines) + "\n"


def shop_registry(add: float = 0.5, checkout: float = 0.4, google: float | None = None, stdev: float = 0.0,
                  prefix: str = "registry") -> dict[str, str]:
    """The small shop registry as {path: text}; `google` adds a checkout parameter for channel=google."""
    files = {
        f"{prefix}/contexts.yaml": textwrap.dedent(CONTEXTS).lstrip(),
        f"{prefix}/graphs/shop.yaml": textwrap.dedent(SHOP_GRAPH).lstrip(),
        f"{prefix}/parameters/cart/add-to-cart-base.yaml": parameter("add-to-cart-base", "add-to-cart", add, stdev),
        f"{prefix}/parameters/checkout/checkout-base.yaml": parameter("checkout-base", "checkout", checkout, stdev),
    }
    if google is not None:
        files[f"{prefix}/parameters/checkout/checkout-google.yaml"] = parameter(
            "checkout-google", "checkout", google, stdev, {"channel": "google"})
    return files


class GitCli:
    """A repository driven by the git command line, as a user would."""

    def __init__(self, path: Path, branch: str = "main", init: bool = True):
        self.path = Path(path)
        if init:
            self.path.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", branch)

    def git(self, *args: str, env: dict | None = None) -> str:
        full_env = {**os.environ, **GIT_ENV, **(env or {})}
        done = subprocess.run(["git", *args], cwd=self.path, env=full_env, capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def write(self, files: dict[str, str | bytes]) -> None:
        for rel, content in files.items():
            path = self.path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)

    def commit(self, message: str, files: dict[str, str | bytes] | None = None, remove: tuple[str, ...] = (),
               author: str = "Ada Tester", when: int | None = None) -> str:
        """Write files, delete `remove`, commit everything; returns the commit id."""
        self.write(files or {})
        for rel in remove:
            self.git("rm", "-q", "-r", rel)
        self.git("add", "-A")
        env = {"GIT_AUTHOR_NAME": author}
        if when is not None:
            env.update(GIT_AUTHOR_DATE=f"{when} +0000", GIT_COMMITTER_DATE=f"{when} +0000")
        self.git("commit", "-q", "--allow-empty", "-m", message, env=env)
        return self.git("rev-parse", "HEAD")

    def move(self, old: str, new: str, message: str, when: int | None = None) -> str:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)
        return self.commit(message, when=when)


class PyRepo:
    """A repository whose commits are written straight into the object database with pygit2 (fast)."""

    def __init__(self, path: Path):
        self.repo = pygit2.init_repository(str(path), initial_head="main")
        self.files: dict[str, bytes] = {}
        self.time = 1_700_000_000

    def commit(self, message: str, files: dict[str, str | bytes] | None = None, remove: tuple[str, ...] = (),
               parents: list | None = None, author: str = "Ada Tester", ref: str | None = "refs/heads/main") -> pygit2.Oid:
        """Apply changes to the current file set and commit it on top of HEAD (or `parents`)."""
        for rel, content in (files or {}).items():
            self.files[rel] = content.encode() if isinstance(content, str) else content
        for rel in remove:
            self.files.pop(rel)
        self.time += 60
        sig = pygit2.Signature(author, "ada@example.com", self.time, 0)
        if parents is None:
            parents = [] if self.repo.head_is_unborn else [self.repo.head.target]
        return self.repo.create_commit(ref, sig, sig, message, write_tree(self.repo, self.files), parents)


def write_tree(repo: pygit2.Repository, files: dict[str, bytes]) -> pygit2.Oid:
    """Write nested trees for {path: bytes} and return the root tree id."""
    root: dict = {}
    for rel, data in files.items():
        node = root
        *folders, name = rel.split("/")
        for folder in folders:
            node = node.setdefault(folder, {})
        node[name] = data

    def build(node: dict) -> pygit2.Oid:
        tb = repo.TreeBuilder()
        for name, child in node.items():
            if isinstance(child, dict):
                tb.insert(name, build(child), pygit2.GIT_FILEMODE_TREE)
            else:
                tb.insert(name, repo.create_blob(child), pygit2.GIT_FILEMODE_BLOB)
        return tb.write()

    return build(root)
