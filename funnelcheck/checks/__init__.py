"""Semantic and cross-file checks of a loaded registry (docs/validation.md).

`load.registry.load` already reports what one file can tell alone (YAML syntax, duplicate keys,
encoding, alias bombs, JSON Schema, file stem == id, duplicate ids, escaping symlinks).
The checks add everything that needs the model, one module per family: `references` between
files, `values` (probabilities and priors), `structure` (graphs, bases, conflicts, shares),
`sums` (outgoing sums), `draws` (Monte Carlo draws past 1), `ties` (resolution ties) and
`credentials`. Each check is a function from the shared `CheckIndex` to findings, and every
finding points at the YAML node at fault.
"""
from __future__ import annotations

from funnelcheck.checks.credentials import check_credentials
from funnelcheck.checks.draws import check_draw_sums
from funnelcheck.checks.index import CheckIndex
from funnelcheck.checks.memo import GraphMemo
from funnelcheck.checks.references import check_config_references, check_named_bases, check_parameter_references
from funnelcheck.checks.structure import check_bases, check_conflicts, check_graphs, check_shares
from funnelcheck.checks.sums import check_outgoing_sums
from funnelcheck.checks.ties import check_ties
from funnelcheck.checks.values import check_values
from funnelcheck.findings import Finding, sort_key
from funnelcheck.load.registry import Loaded

# One line each; docs/validation.md carries the same table for users.
CODES = {
    # reported while loading (registry.py, yamlload.py, sources.py)
    "yaml-syntax": "the file is not valid YAML",
    "duplicate-key": "a mapping has the same key twice",
    "encoding": "the file is not valid UTF-8",
    "alias-bomb": "aliases expand the document past a safe size; refused unexpanded",
    "file-too-large": "a file over 1 MiB; refused before it is parsed (docs/security.md)",
    "too-deep": "YAML nested more than 64 levels deep; refused (docs/security.md)",
    "non-finite": "a .nan or .inf where a number belongs",
    "empty-file": "the file holds no document",
    "schema": "the file breaks the JSON Schema of its kind (wrong type, unknown or missing key, bad id)",
    "id-mismatch": "the file stem differs from the id inside",
    "duplicate-id": "two files (or two entries) share an id",
    "duplicate-file": "more than one contexts file",
    "symlink-escape": "a symlink points outside the registry; refused",
    "symlink-loop": "a symlink that leads back to itself",
    "dangling-symlink": "a symlink whose target does not exist",
    "unreadable": "a file or folder that cannot be read (permissions, or not a regular file)",
    "no-contexts": "there is no contexts.yaml (warning)",
    # reported by the checks
    "unknown-edge": "a parameter's edge is in no graph",
    "unknown-context": "a context_filter key is not in contexts.yaml",
    "unknown-context-value": "a context_filter value is not a value of that context",
    "unknown-node": "a node named by an edge or a visited_filter is not in the graph",
    "unknown-parameter": "p.parameter_id names no parameter",
    "unknown-connection": "a connection name is not in funnelcheck.yaml connections",
    "base-mismatch": "p.parameter_id names a parameter of another edge, or one with filters",
    "probability-range": "a mean outside [0, 1]",
    "infeasible-stdev": "a stdev below 0, or so large no Beta distribution has it (stdev² ≥ mean·(1−mean))",
    "nonpositive-prior": "a Beta prior alpha or beta that is not above 0",
    "missing-value": "a parameter with no value, no fallback_value and no external prior",
    "conflicting-parameters": "two parameters with the same edge, context_filter and visited_filter",
    "no-base": "an edge with no base (no inline p, no parameter_id, no filter-free parameter)",
    "multiple-bases": "an edge with more than one base",
    "duplicate-node": "a node id appears twice in one graph",
    "duplicate-edge": "an edge id appears twice in one graph",
    "outcome-out-edge": "an edge leaves an outcome node (outcomes are absorbing)",
    "no-entry": "a graph without an entry node",
    "no-success": "a graph without a success outcome",
    "unreachable-node": "a node no path from an entry node reaches",
    "shares-partial": "some values of a context have a share and some do not",
    "shares-sum": "the shares of a context do not sum to 1",
    "shares-missing": "no value of a context has a share: equal shares are used (warning)",
    "outgoing-sum": "a node's resolved outgoing probabilities sum above 1 in some context/visited combination",
    "outgoing-sum-draws": "a node's Monte Carlo draws of its outgoing probabilities pass 1 in more than 1% of draws (warning)",
    "resolution-tie": "two parameters can match a query with equal rank; the tie-break decides (warning)",
    "inline-credential": "a password, token or key written into a file instead of taken from the environment",
}

CHECKS = (check_shares, check_parameter_references, check_values, check_conflicts, check_graphs, check_bases,
          check_named_bases, check_outgoing_sums, check_draw_sums, check_ties, check_config_references, check_credentials)


# What a what-if computation need not ask: checks that only ever warn, and the outgoing sums, which
# the engine itself refuses (with the node and segment) in exactly the segments it computes.
NOT_BLOCKING_A_COMPUTATION = (check_draw_sums, check_ties, check_outgoing_sums)


def validate(loaded: Loaded, computation: bool = False, memo: GraphMemo | None = None) -> list[Finding]:
    """Every finding for a loaded registry: the loader's and every check's, sorted, no duplicates.

    With `computation=True`, only what could stop a what-if computation that the engine does not check
    itself (`whatif` asks this once, before it runs the engine).
    `memo` keeps the per-graph searches' findings between runs (`checks/memo.py`); by default, this run only.
    """
    index = CheckIndex(loaded, memo)
    found: list[Finding] = list(loaded.findings)
    for check in CHECKS:
        if not (computation and check in NOT_BLOCKING_A_COMPUTATION):
            found += check(index)
    return sorted(set(found), key=sort_key)
