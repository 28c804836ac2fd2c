// The arithmetic of `whatif --select` (funnelcheck/engine/mix.py, run.py), on precomputed segments.
const Mix = (() => {
  "use strict";

  function decodeDraws(b64, rows, cols) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const view = new DataView(bytes.buffer);
    const out = new Float64Array(rows * cols);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
    return out;
  }

  // value_shares: keep the ticked values, renormalise; a context left with no traffic is an error.
  function selectionShares(panel, ticked) {
    const shares = {};
    for (const c of panel.contexts) {
      const kept = c.values.map((v) => (ticked[c.id].has(v.id) ? v.share : 0.0));
      let total = 0;
      for (const x of kept) total += x;
      if (!(total > 0)) return { empty: c };
      shares[c.id] = {};
      c.values.forEach((v, i) => { shares[c.id][v.id] = kept[i] / total; });
    }
    return { shares };
  }

  // numpy.quantile's default (linear) method, with numpy's own interpolation formula.
  function quantile(sorted, q) {
    const h = (sorted.length - 1) * q;
    const lo = Math.floor(h);
    const hi = Math.min(lo + 1, sorted.length - 1);
    const t = h - lo;
    const a = sorted[lo], b = sorted[hi], diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
  }

  // weigh + the population sums of run.py: Σ_s w_s · figure_s, per draw for the interval.
  function mix(panel, shares) {
    const n = panel.samples;
    const weights = panel.segments.map((seg) => {
      let w = 1.0;
      for (const [key, , members] of seg.classes) {
        let share = 0;
        for (const v of members) share += shares[key][v];
        w *= share;
      }
      return w;
    });
    const draws = new Float64Array(n);
    const visits = new Array(panel.nodes.length).fill(0);
    const flows = new Array(panel.edges.length).fill(0);
    let point = 0;
    panel.segments.forEach((seg, j) => {
      const w = weights[j];
      if (!(w > 0)) return;
      point += w * seg.conversion;
      seg.visits.forEach((x, i) => { visits[i] += w * x; });
      seg.flows.forEach((x, i) => { flows[i] += w * x; });
      const base = j * n;
      for (let i = 0; i < n; i++) draws[i] += w * panel.draws[base + i];
    });
    let total = 0;
    for (let i = 0; i < n; i++) total += draws[i];
    const sorted = Float64Array.from(draws).sort();
    const nodeIndex = new Map(panel.nodes.map((node, i) => [node.id, i]));
    const p = panel.edges.map((e, i) => {
      const reach = visits[nodeIndex.get(e.source)];
      return reach > 0 ? flows[i] / reach : null;
    });
    return {
      weights, point, mean: total / n, visits, flows, p,
      p05: quantile(sorted, 0.05), p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95),
    };
  }

  return { decodeDraws, selectionShares, quantile, mix };
})();
