"""Rewrite a few keys of a parameter file with ruamel.yaml round-trip: comments, key order,
quoting and flow style of everything else are kept. Writing is atomic (atomicfile)."""
from __future__ import annotations

import io
from pathlib import Path


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _set(mapping, key: str, values: dict) -> None:
    """Set `key` to `values`, editing an existing mapping in place so its style survives."""
    from ruamel.yaml.comments import CommentedMap

    current = mapping.get(key)
    if isinstance(current, CommentedMap):
        for k in list(current):
            if k not in values:
                del current[k]
        for k, v in values.items():
            current[k] = v
        return
    new = CommentedMap(values)
    new.fa.set_flow_style()
    mapping[key] = new


def rewrite_posterior(text: str, mean: float, stdev: float, alpha: float, beta: float, updated_through: str) -> str:
    """The file's text with `value`, `bayesian_update.prior` and `bayesian_update.updated_through` replaced."""
    from ruamel.yaml.comments import CommentedMap

    yaml = _yaml()
    doc = yaml.load(text)
    _set(doc, "value", {"mean": mean, "stdev": stdev})
    update = doc.get("bayesian_update")
    if not isinstance(update, CommentedMap):
        update = CommentedMap()
        doc["bayesian_update"] = update
    _set(update, "prior", {"alpha": alpha, "beta": beta})
    update["updated_through"] = updated_through
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def write_text(path: Path, text: str) -> None:
    """Replace the file atomically."""
    from funnelcheck.atomicfile import write_atomic

    write_atomic(path, text.encode("utf-8"))
