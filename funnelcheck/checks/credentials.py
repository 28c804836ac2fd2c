"""Inline credentials: secrets come only through the environment (`*_env` keys), never written in a file.

funnelcheck.yaml is searched as written (its document), even when it breaks its schema and the
model keeps none of its data: a secret in a file is a problem whatever else is wrong with it.
"""
from __future__ import annotations

import re
from functools import lru_cache

from funnelcheck.checks.index import CheckIndex
from funnelcheck.findings import Finding


@lru_cache(maxsize=None)
def _patterns() -> tuple[re.Pattern, ...]:
    """Compiled on first use: most registries have no string that needs them."""
    return (
        # keys that hold a secret (their `*_env` twins are how to give one)
        re.compile(r"pass(word|wd)?$|pwd|secret|token|api_?key|private_?key|credential|webhook_url$", re.I),
        re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.I),  # scheme://user:password@host
        re.compile(r"[?&](password|passwd|pwd|token|access_token|auth_token|api_?key|key|secret|client_secret|sig"
                   r"|signature)=[^&#\s]", re.I),
        re.compile(r"hooks\.slack\.com/services/", re.I),  # a Slack webhook URL is itself the secret
    )


def check_credentials(index: CheckIndex) -> list[Finding]:
    """Credentials: secrets come only through the environment (`*_env` keys), never written in a file."""
    out = []
    registry = index.registry
    config = registry.config
    if config is not None and config.where is not None:
        out += _walk_credentials(config.where.doc, (), config.where.doc.data)
    for p in registry.parameters.values():  # findings are sorted at the end
        for section, data in (("prior_source", p.prior_source), ("observation_source", p.observation_source)):
            if data:
                out += _walk_credentials(p.where.doc, (section,), data)
    return out


def _walk_credentials(doc, parts: tuple, data) -> list[Finding]:
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = parts + (key,)
            literal = isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value) != ""
            if literal and isinstance(key, str) and not key.endswith("_env") and _patterns()[0].search(key):
                out.append(doc.finding(here, "inline-credential",
                                       f"'{key}' is written inline: put it in an environment variable and "
                                       f"name that variable with '{key}_env'"))
            else:
                out += _walk_credentials(doc, here, value)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            out += _walk_credentials(doc, parts + (i,), item)
    elif isinstance(data, str):
        _, password, secret_param, secret_url = _patterns()
        what = ("a password in the URL" if password.search(data) else
                "a secret query parameter in the URL" if secret_param.search(data) else
                "a webhook URL that is itself the secret" if secret_url.search(data) else None)
        if what:
            name = parts[-1] if parts and isinstance(parts[-1], str) else "the value"
            out.append(doc.finding(parts, "inline-credential",
                                   f"{what} is written inline in '{name}': take the URL from the environment "
                                   f"('{name}_env')"))
    return out
