"""Load a registry from a source of (path, bytes) into the model, with findings as values.

Stages: list files → parse each (YAML + JSON Schema + id/stem; cached by content) →
build the model from the documents that passed. Cross-file checks live in `funnelcheck.checks`.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from funnelcheck.load import schema
from funnelcheck.findings import ERROR, Finding, UsageError
from funnelcheck.model import (Config, Context, ContextValue, Edge, Estimate, Graph, Node, Parameter,
                               Registry, Where)
from funnelcheck.load.cache import ParseCache, cache_dir
from funnelcheck.load.sources import Source, SourceFile, WorkTreeSource, content_key, display_path
from funnelcheck.yamlload import Doc, deferred_doc, load_yaml

CONFIG_NAME = "funnelcheck.yaml"


class ConfigFile(NamedTuple):
    """funnelcheck.yaml as read once: the model's Config, its findings, and the registry folder it names."""

    config: Config | None
    findings: list[Finding]
    registry: str  # the `registry:` setting, relative to the file ('registry' when absent or not a string)


NO_CONFIG = ConfigFile(None, [], "registry")


@dataclass
class Project:
    """Where things are: the config file (if any, already read), the registry root and the cache folder."""

    registry: Path
    config_path: Path | None
    base: Path  # the folder of funnelcheck.yaml, else the current directory
    config_file: ConfigFile = NO_CONFIG
    registry_given: bool = False  # --registry was given: it wins over funnelcheck.yaml at every revision

    def cache_file(self, stem: str) -> Path:
        """`<stem>.json` in the user-cache folder (`cache_dir`); for a registry named by --registry,
        `<stem>-<hash of its path>.json`, so two registries run from one folder keep a cache each."""
        if not self.registry_given:
            return cache_dir(self.base) / f"{stem}.json"
        real = os.path.realpath(self.registry).encode("utf-8", "surrogateescape")
        return cache_dir(self.base) / f"{stem}-{hashlib.blake2b(real, digest_size=6).hexdigest()}.json"


def find_project(registry: str | None = None, config: str | None = None, cwd: Path | None = None) -> Project:
    """Find the config and the registry: --config, else the nearest funnelcheck.yaml; --registry overrides.

    The config file is read here, once; every later step (the work tree, any Git revision) uses that reading.
    """
    cwd = Path(cwd or Path.cwd())
    config_path = None
    if config:
        config_path = Path(config)
        if not config_path.is_file():
            raise UsageError(f"config file not found: {config}")
    else:
        for folder in (cwd, *cwd.parents):
            if (folder / CONFIG_NAME).is_file():
                config_path = folder / CONFIG_NAME
                break
    base = config_path.parent if config_path else cwd
    config_file = read_config(display_path(config_path), config_path.read_bytes()) if config_path else NO_CONFIG
    root = Path(registry) if registry else base / config_file.registry
    return Project(root, config_path, base, config_file, bool(registry))


def kind_of(path: str) -> str | None:
    """Which schema a registry file falls under, by where it stands; None = not ours (ignored)."""
    if path in ("contexts.yaml", "contexts.yml"):
        return "contexts"
    head, _, rest = path.partition("/")  # plain string work: this runs for every file on every run
    if rest and head == "parameters":
        return "parameter"
    if rest and head == "graphs":
        return "graph"
    return None


class FailedFile(NamedTuple):
    """A registry file that did not make it (whole) into the model: what it defines is unknown."""

    kind: str  # contexts | parameter | graph
    path: str  # as findings name it

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem


@dataclass
class Loaded:
    """The result of loading: the model, every finding so far, and the files that failed to load."""

    registry: Registry
    findings: list[Finding] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # display path -> content key of each registry file read


def parse_file(kind: str, sf: SourceFile, raw: bytes) -> tuple[Doc | None, list[Finding]]:
    """YAML, the JSON Schema of its kind, and file stem == id: all that one file can tell alone."""
    doc, findings = load_yaml(sf.display, raw)
    if doc is None:
        return None, findings
    findings = schema.check(kind, doc)
    if findings:
        return doc, findings
    if kind in ("parameter", "graph"):
        stem = PurePosixPath(sf.path).stem
        if doc.data["id"] != stem:
            findings.append(doc.finding(("id",), "id-mismatch",
                                        f"id '{doc.data['id']}' does not match the file name '{stem}'"))
    return doc, findings


# From this many files to parse (not in the cache) on, parsing is spread over the machine's cores:
# a cold run over thousands of files is mostly YAML and schema work, file by file.
PARALLEL_AT = 1000


def _parse_plain(job: tuple[str, str, str, bytes]) -> tuple[bool, object, list[Finding]]:
    """`parse_file` as the cache keeps it: (has a document, its data, the findings): plain values."""
    kind, path, display, raw = job
    doc, findings = parse_file(kind, SourceFile(path, display, _unreadable), raw)
    return doc is not None, doc.data if doc is not None else None, findings


def _unreadable() -> bytes:
    raise RuntimeError("a worker parses the bytes it was given")


def _parse_many(jobs: list[tuple[str, str, str, bytes]]) -> list[tuple[bool, object, list[Finding]]]:
    """`_parse_plain` over many files, in worker processes forked from this one (Linux) when there are
    several cores; results come back through the pool's pipe, never through a file."""
    import multiprocessing
    import os

    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [_parse_plain(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_parse_plain, jobs, chunksize=max(1, len(jobs) // (workers * 4))))


def load(source: Source, config: Config | None = None, cache: ParseCache | None = None) -> Loaded:
    """Load every registry file of `source` into a Registry; nothing here raises on bad input.

    The cache is only read and filled here: saving it is the caller's choice (once, after all loads).
    """
    cache = cache if cache is not None else ParseCache()
    findings: list[Finding] = []
    # Sorted, so which of two duplicates is kept (and reported) never depends on listing order.
    files = sorted(source.files(), key=lambda sf: sf.path)
    findings.extend(source.problems)
    # A refused file is known only by its finding's path.
    prefix = source.root_display + "/"
    failed = [FailedFile(kind, f.path) for f in source.problems if f.severity == ERROR and f.path.startswith(prefix)
              and (kind := kind_of(f.path[len(prefix):]))]
    parsed: list[tuple[str, Doc]] = []
    keys: dict[str, str] = {}
    entries = []  # (kind, file, cache key, cached result or None, bytes if already read)
    for sf in files:
        kind = kind_of(sf.path)
        if kind is not None:
            content, raw = cache.content_key(sf)
            key = (kind, sf.display, content)
            keys[sf.display] = content
            entries.append((kind, sf, key, cache.get(key), raw))
    fresh = None
    if sum(hit is None for _, _, _, hit, _ in entries) >= PARALLEL_AT:
        fresh = iter(_parse_many([(kind, sf.path, sf.display, sf.read() if raw is None else raw)
                                  for kind, sf, _, hit, raw in entries if hit is None]))
    for kind, sf, key, hit, raw in entries:
        if hit is None and fresh is None:
            doc, file_findings = parse_file(kind, sf, sf.read() if raw is None else raw)
            cache.put(key, (doc is not None, doc.data if doc is not None else None, file_findings))
        else:
            if hit is None:
                hit = next(fresh)
                cache.put(key, hit)
            has_doc, data, file_findings = hit
            doc = deferred_doc(sf.display, data, sf.read) if has_doc else None
        findings.extend(file_findings)
        if doc is not None and (not file_findings or not any(f.severity == ERROR for f in file_findings)):
            parsed.append((kind, doc))
        else:
            failed.append(FailedFile(kind, sf.display))
    registry = Registry(root=source.root_display, config=config)
    contexts_docs = [d for k, d in parsed if k == "contexts"]
    if len(contexts_docs) > 1:
        findings.append(contexts_docs[1].finding((), "duplicate-file", "only one contexts file is allowed"))
        failed += [FailedFile("contexts", d.path) for d in contexts_docs[1:2]]
    for kind, doc in parsed:
        before = len(findings)
        if kind == "contexts" and doc is contexts_docs[0]:
            registry.contexts = _contexts(doc, findings)
        elif kind == "parameter":
            _add_unique(registry.parameters, _parameter(doc), "parameter", findings)
        elif kind == "graph":
            _add_unique(registry.graphs, _graph(doc), "graph", findings)
        if len(findings) > before:  # a duplicate was dropped
            failed.append(FailedFile(kind, doc.path))
    if not contexts_docs and not any(f.path.endswith(("contexts.yaml", "contexts.yml")) for f in findings):
        findings.append(Finding(f"{source.root_display}/contexts.yaml", 1, 1, "warning", "no-contexts",
                                "there is no contexts.yaml: parameters cannot filter on context"))
    return Loaded(registry, findings, failed, keys)


def read_config(display: str, raw: bytes, cache: ParseCache | None = None) -> ConfigFile:
    """Parse and schema-check the bytes of a funnelcheck.yaml (from disk or a Git blob): the one reader."""
    key = ("config", display, content_key(raw))
    hit = cache.get(key) if cache is not None else None
    if hit is None:
        doc, findings = load_yaml(display, raw)
        if doc is not None:
            findings = schema.check("config", doc)
        hit = (doc, findings)
        if cache is not None:
            cache.put(key, hit)
    doc, findings = hit
    if doc is None:
        return ConfigFile(None, findings, "registry")
    setting = doc.data.get("registry") if isinstance(doc.data, dict) else None
    data = doc.data if isinstance(doc.data, dict) and not findings else {}
    return ConfigFile(Config(doc.path, data, Where(doc)), findings, setting if isinstance(setting, str) else "registry")


def load_with_config(source: Source, config_file: ConfigFile, cache: ParseCache | None = None) -> Loaded:
    """Load a registry with its funnelcheck.yaml: the config's findings first, its document among the docs.

    The work tree and every Git revision come through here.
    """
    config = config_file.config
    loaded = load(source, config, cache)
    loaded.findings[:0] = config_file.findings
    return loaded


def load_project(project: Project) -> Loaded:
    """Load the work tree of a project: its config, then its registry (with the disk cache, saved after)."""
    if not project.registry.is_dir():
        raise UsageError(f"registry folder not found: {display_path(project.registry)}")
    cache = ParseCache(project.cache_file("parse"))
    loaded = load_with_config(WorkTreeSource(project.registry), project.config_file, cache)
    cache.save()
    return loaded


def _add_unique(table: dict, item, what: str, findings: list[Finding]) -> None:
    if item.id in table:
        first = table[item.id].where.path
        findings.append(item.where.at("id").finding("duplicate-id", f"{what} id '{item.id}' is also defined in {first}"))
        return
    table[item.id] = item


def _estimate(data: dict | None) -> Estimate | None:
    if not data or "mean" not in data:
        return None
    return Estimate(float(data["mean"]), float(data["stdev"]))


def _contexts(doc: Doc, findings: list[Finding]) -> tuple[Context, ...]:
    out = []
    seen = set()
    for i, c in enumerate(doc.data["contexts"]):
        where = Where(doc, ("contexts", i))
        if c["id"] in seen:
            findings.append(where.at("id").finding("duplicate-id", f"context '{c['id']}' is defined twice"))
            continue
        seen.add(c["id"])
        values, seen_values = [], set()
        for j, v in enumerate(c["values"]):
            if v["id"] in seen_values:
                findings.append(where.at("values", j, "id").finding(
                    "duplicate-id", f"value '{v['id']}' of context '{c['id']}' is defined twice"))
                continue
            seen_values.add(v["id"])
            values.append(ContextValue(v["id"], v.get("label"), v.get("share"), where.at("values", j)))
        out.append(Context(c["id"], c.get("name"), tuple(values), where))
    return tuple(out)


def _parameter(doc: Doc) -> Parameter:
    d = doc.data
    return Parameter(
        id=d["id"],
        edge=d["edge"],
        context_filter=tuple(sorted((d.get("context_filter") or {}).items())),
        visited_filter=frozenset(d.get("visited_filter") or ()),
        visited_as_written=tuple(d.get("visited_filter") or ()),
        value=_estimate(d.get("value")),
        where=Where(doc),
        description=d.get("description"),
        fallback_value=_estimate(d.get("fallback_value")),
        prior_source=d.get("prior_source"),
        observation_source=d.get("observation_source"),
        bayesian_update=d.get("bayesian_update"),
        model_fit=d.get("model_fit"),
    )


def _graph(doc: Doc) -> Graph:
    d = doc.data
    nodes = tuple(
        Node(n["id"], (n.get("entry") or {}).get("weight"), n.get("outcome"), Where(doc, ("nodes", i)), n.get("name"))
        for i, n in enumerate(d["nodes"]))
    edges = tuple(
        Edge(e["id"], e["from"], e["to"], _estimate(e.get("p")), (e.get("p") or {}).get("parameter_id"),
             Where(doc, ("edges", i)))
        for i, e in enumerate(d["edges"]))
    return Graph(d["id"], d.get("name"), nodes, edges, Where(doc))
