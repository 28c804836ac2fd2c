"""What `monitor`, `update` and `simulate` share: the loaded project, its connections, its store."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from funnelcheck.findings import ERROR, FunnelcheckError
from funnelcheck.load.registry import Loaded, Project, load_project
from funnelcheck.pipeline.connections import Connections


class ConfigErrors(FunnelcheckError):
    """funnelcheck.yaml has validation errors: the pipeline refuses to guess (exit 1)."""

    exit_code = 1


@dataclass
class Pipeline:
    project: Project
    loaded: Loaded
    connections: Connections

    @property
    def config(self) -> dict:
        c = self.loaded.registry.config
        return c.data if c else {}


def open_pipeline(project: Project) -> Pipeline:
    """Load the registry and refuse a funnelcheck.yaml with errors (its first one, file:line:col)."""
    loaded = load_project(project)
    config_path = loaded.registry.config.path if loaded.registry.config else None
    bad = [f for f in loaded.findings if f.severity == ERROR and config_path and f.path == config_path]
    if bad:
        f = bad[0]
        raise ConfigErrors(f"{f.path}:{f.line}:{f.column}: {f.message}")
    where = config_path or "funnelcheck.yaml"
    return Pipeline(project, loaded, Connections((loaded.registry.config.data if loaded.registry.config else {})
                                                 .get("connections"), project.base, where))


def skipped_files(loaded: Loaded) -> list[str]:
    """Registry files whose errors kept them out of the model (the run goes on without them)."""
    return sorted({f.path for f in loaded.findings if f.severity == ERROR})


def head_revision(base: Path) -> str | None:
    """The commit the registry's repository is at, when it is in one."""
    try:
        import pygit2

        path = pygit2.discover_repository(str(base))
        if path is None:
            return None
        repo = pygit2.Repository(path)
        return None if repo.head_is_unborn else str(repo.head.target)
    except Exception:  # not a repository, or an unreadable one: the revision is optional
        return None
