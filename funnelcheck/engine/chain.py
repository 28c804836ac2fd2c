"""Absorbing Markov chains on the state graph, solved for many probability columns at once.

The structure of a chain (which state leads to which) is fixed for a run; only the
probabilities change between segments and Monte Carlo draws. So the structure is analysed
once into a `Plan`, and `propagate` then pushes mass for a whole array of columns
(segments × draws) with a few numpy operations per step, never a Python loop over columns.
The plan also fixes the order of the transitions: the caller lays the probabilities out in
`plan.order`, so that every step reads a contiguous slice (a view, not a copy).

- The strongly connected components of the state graph, ordered by the longest path of
  their condensation, give *levels*: every state of a level receives mass only from earlier
  levels or from its own component. A DAG is the special case where every component is a
  single state, and one gather-multiply-reduce per level is the whole solve.
- A component with several states (a cycle: users going back to pricing) is solved exactly
  by tearing it at a small *feedback set* F (every cycle passes through F). With the visits
  of F as k unknowns, the rest of the component is acyclic, so its visits are affine in
  them and follow by the same level-by-level push, carrying k + 1 coefficients; the k
  equations at F are then one batched k × k solve per column. Funnels go back to a few
  hub pages, so k stays small, and the cost stays close to a single pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from funnelcheck.engine.digraph import feedback_set, longest_path_levels, strong_components


class NotAbsorbing(ArithmeticError):
    """Mass can circulate forever in these states (a cycle whose exits all have probability 0)."""

    def __init__(self, states: np.ndarray):
        self.states = states
        super().__init__(f"{len(states)} state(s) never absorb")


@dataclass(frozen=True)
class Step:
    """Transitions whose contributions are summed into their targets at once.

    Transitions are sorted by target, so each target owns a run of rows. With `sparse` the sum is
    a product with a 0/1 matrix (targets × transitions): scipy's compiled CSR kernel adds whole
    rows of columns at once, several times faster, but scipy costs ~0.15 s to import. Without,
    numpy adds the k-th row of every run with at least k rows, for k = 1, 2, ...: the same sums
    in the same order (identical bits), with no scipy import. The Monte Carlo run imports scipy
    for its Beta quantiles anyway and sums sparse; the point estimate never imports it.
    """

    t: np.ndarray | slice  # transition ids; in a finished plan, their slice of `Plan.order`
    src: np.ndarray  # source of each transition (global or component-local index)
    targets: np.ndarray  # the distinct targets
    indptr: np.ndarray  # target i's rows are indptr[i] .. indptr[i + 1]
    _gather: object = field(default=None, compare=False, repr=False)  # the CSR matrix, built on first wide sum

    @classmethod
    def of(cls, t, src, tgt) -> "Step":
        """The step adding transitions t (src[i] → tgt[i]) into their targets."""
        t, src, tgt = (np.asarray(a, dtype=np.intp) for a in (t, src, tgt))
        order = np.argsort(tgt, kind="stable")  # each target's rows are then a run
        t, src, tgt = t[order], src[order], tgt[order]
        targets, counts = np.unique(tgt, return_counts=True)
        return cls(t, src, targets, np.r_[0, np.cumsum(counts)].astype(np.int32))

    @property
    def size(self) -> int:
        """Number of transitions."""
        return len(self.src)

    def sum(self, contributions: np.ndarray, sparse: bool = False) -> np.ndarray:
        """Per target, the sum of its transitions' rows of `contributions` (one row per transition)."""
        flat = contributions.reshape(contributions.shape[0], -1)
        if sparse:
            if self._gather is None:
                from scipy.sparse import csr_matrix

                object.__setattr__(self, "_gather", csr_matrix(
                    (np.ones(self.size), np.arange(self.size, dtype=np.int32), self.indptr),
                    shape=(len(self.targets), self.size)))
            out = self._gather @ flat
        else:
            starts, counts = self.indptr[:-1], np.diff(self.indptr)
            out = flat[starts]
            for k in range(1, int(counts.max(initial=0))):
                more = np.flatnonzero(counts > k)
                out[more] += flat[starts[more] + k]
        return out.reshape(len(self.targets), *contributions.shape[1:])

    def placed(self, start: int) -> "Step":
        """The same step reading rows start .. start + size of the probabilities."""
        return replace(self, t=slice(start, start + self.size))


@dataclass(frozen=True)
class Block:
    """A component with several states, torn at its feedback states."""

    states: np.ndarray  # global indices; position = local index
    feedback: np.ndarray  # local indices of F
    steps: tuple[Step, ...]  # pushes into the other states, in dependency order (local indices)
    closing: Step  # transitions into F (targets are positions in `feedback`)


@dataclass(frozen=True)
class Level:
    inflow: Step  # transitions from earlier levels into this level's states (global indices)
    loops: Step  # self-loops of single-state components
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Plan:
    n: int
    entry_states: np.ndarray
    entry_weights: np.ndarray
    levels: tuple[Level, ...]
    order: np.ndarray  # the caller's transition indices, in the order `propagate` reads them

    @property
    def working_rows(self) -> int:
        """Rows of columns that `propagate` holds at its peak: visits plus one step's temporaries."""
        peak = 0
        for lv in self.levels:
            peak = max(peak, 2 * lv.inflow.size)
            for b in lv.blocks:
                width = len(b.feedback) + 1
                steps = max((s.size for s in (*b.steps, b.closing)), default=0)
                peak = max(peak, width * (len(b.states) + 3 * steps))
        return self.n + peak


def make_plan(n: int, src: np.ndarray, tgt: np.ndarray, entries: dict[int, float]) -> Plan:
    """Analyse the structure of a chain with `n` states and transitions src[i] → tgt[i]."""
    src = np.asarray(src, dtype=np.intp)
    tgt = np.asarray(tgt, dtype=np.intp)
    if n == 0:
        return Plan(0, np.zeros(0, np.intp), np.zeros(0), (), np.zeros(0, np.intp))
    n_comp, comp = strong_components(n, src.tolist(), tgt.tolist())
    level = longest_path_levels(n_comp, comp[src], comp[tgt])
    sizes = np.bincount(comp, minlength=n_comp)
    t_all = np.arange(len(src))
    state_level = level[comp]
    cross = comp[src] != comp[tgt]
    levels = []
    by_level_t = _group(state_level[tgt], np.max(level) + 1)
    members = _group(comp, n_comp)
    comps_at = _group(level, np.max(level) + 1)
    for lv in range(int(np.max(level)) + 1):
        into = by_level_t[lv]
        ext = into[cross[into]]
        internal = into[~cross[into]]
        single = sizes[comp[tgt[internal]]] == 1
        loops = internal[single]
        blocks = tuple(_block(members[c], internal[comp[tgt[internal]] == c], src, tgt)
                       for c in comps_at[lv] if sizes[c] > 1)
        levels.append(Level(Step.of(t_all[ext], src[ext], tgt[ext]),
                            Step.of(t_all[loops], src[loops], tgt[loops]), blocks))
    weights = np.array([entries[k] for k in sorted(entries)], dtype=float)
    return _placed(Plan(n, np.array(sorted(entries), dtype=np.intp), weights, tuple(levels), np.zeros(0, np.intp)))


def _placed(plan: Plan) -> Plan:
    """Lay the transitions out in the order `propagate` reads them; steps then read slices."""
    order: list[np.ndarray] = []
    count = 0

    def place(step: Step) -> Step:
        nonlocal count
        order.append(step.t)
        count += step.size
        return step.placed(count - step.size)

    levels = []
    for lv in plan.levels:
        inflow, loops = place(lv.inflow), place(lv.loops)
        blocks = tuple(replace(b, steps=tuple(place(s) for s in b.steps), closing=place(b.closing)) for b in lv.blocks)
        levels.append(Level(inflow, loops, blocks))
    return replace(plan, levels=tuple(levels), order=np.concatenate(order) if order else np.zeros(0, np.intp))


def propagate(plan: Plan, probs: np.ndarray, sparse: bool = False) -> np.ndarray:
    """Expected visits of every state, shape (n, *columns).

    `probs` holds the transitions' probabilities in `plan.order`: (len(plan.order), *columns).
    `sparse`: sum with scipy's CSR kernel (`Step.sum`); the numbers are the same either way.
    """
    shape = probs.shape[1:]
    visits = np.zeros((plan.n, *shape))
    visits[plan.entry_states] = plan.entry_weights.reshape(-1, *(1,) * len(shape))
    for level in plan.levels:
        _push(visits, visits, level.inflow, probs, sparse)
        if level.loops.size:
            stay = level.loops.sum(probs[level.loops.t], sparse)
            if np.any(stay >= 1.0):
                raise NotAbsorbing(level.loops.targets)
            visits[level.loops.targets] /= 1.0 - stay
        for block in level.blocks:
            _solve_block(visits, block, probs, shape, sparse)
    return visits


def _push(dst: np.ndarray, source: np.ndarray, step: Step, probs: np.ndarray, sparse: bool,
          extra_axes: int = 0) -> None:
    """dst[target] += Σ p(t) · source[src(t)] over the step's transitions."""
    if not step.size:
        return
    p = probs[step.t]
    if extra_axes:
        p = p.reshape(p.shape[0], *(1,) * extra_axes, *p.shape[1:])
    dst[step.targets] += step.sum(source[step.src] * p, sparse)


def _solve_block(visits: np.ndarray, block: Block, probs, shape: tuple[int, ...], sparse: bool) -> None:
    m, k = len(block.states), len(block.feedback)
    # coef[v] = (constant, coefficients on the visits of each feedback state) of v's visits.
    coef = np.zeros((m, k + 1, *shape))
    coef[:, 0] = visits[block.states]  # mass that entered from earlier levels
    coef[block.feedback, 0] = 0.0
    coef[block.feedback, 1 + np.arange(k)] = 1.0
    for step in block.steps:
        _push(coef, coef, step, probs, sparse, extra_axes=1)
    back = np.zeros((k, k + 1, *shape))
    _push(back, coef, block.closing, probs, sparse, extra_axes=1)
    # x = b + back_const + back_coef · x  →  (I − back_coef) x = b + back_const
    lhs = -np.moveaxis(back[:, 1:], (0, 1), (-2, -1))
    lhs[..., np.arange(k), np.arange(k)] += 1.0
    rhs = np.moveaxis(visits[block.states[block.feedback]] + back[:, 0], 0, -1)
    try:
        x = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        raise NotAbsorbing(block.states) from None
    if not np.all(np.isfinite(x)):
        raise NotAbsorbing(block.states)
    x = np.moveaxis(x, -1, 0)  # (k, *shape)
    visits[block.states] = coef[:, 0] + np.einsum("mk...,k...->m...", coef[:, 1:], x)


def _group(keys: np.ndarray, n: int) -> list[np.ndarray]:
    """Indices of `keys` grouped by value 0..n-1 (each group in ascending order)."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n)]


def _block(states: np.ndarray, t: np.ndarray, src: np.ndarray, tgt: np.ndarray) -> Block:
    """Tear one strongly connected component (`t`: its internal transitions)."""
    local = {int(s): i for i, s in enumerate(states)}
    a = np.array([local[int(x)] for x in src[t]], dtype=np.intp)
    b = np.array([local[int(x)] for x in tgt[t]], dtype=np.intp)
    m = len(states)
    feedback = feedback_set(m, list(zip(a.tolist(), b.tolist())))
    is_f = np.zeros(m, dtype=bool)
    is_f[feedback] = True
    position = np.full(m, -1, dtype=np.intp)
    position[feedback] = np.arange(len(feedback))
    into_rest = ~is_f[b]
    rest_edges = into_rest & ~is_f[a]
    depth = longest_path_levels(m, a[rest_edges], b[rest_edges])
    steps = []
    for d in range(int(depth.max()) + 1 if m else 0):
        sel = into_rest & (depth[b] == d)
        if sel.any():
            steps.append(Step.of(t[sel], a[sel], b[sel]))
    closing = ~into_rest
    return Block(states, np.array(feedback, dtype=np.intp), tuple(steps),
                 Step.of(t[closing], a[closing], position[b[closing]]))
