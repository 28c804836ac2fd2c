// funnelcheck dashboard (docs/dashboard.md). Hand-written, no library. Every string from the
// registry or the database goes into the page through textContent or setAttribute, never as HTML.
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("funnelcheck-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const STATUSES = ["red", "amber", "error", "insufficient", "green"];

  // --- building elements -----------------------------------------------------------------------

  function make(ns, tag, attrs, children) {
    const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
    }
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const h = (tag, attrs, ...children) => make(null, tag, attrs, children);
  const s = (tag, attrs, ...children) => make(SVG, tag, attrs, children);

  const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);
  const pct = (x, digits = 2) => (x === null || x === undefined ? "–" : (100 * x).toFixed(digits) + "%");
  const num = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

  // --- the arithmetic of `whatif --select` (funnelcheck/engine/mix.py, run.py) ---------------------

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

  function describe(parameterId) {
    const text = (DATA.descriptions || {})[parameterId];
    return text ? h("div", { class: "muted small" }, text) : null;
  }

  // --- the what-if panel -------------------------------------------------------------------------

  function segmentLabel(seg) {
    const parts = seg.classes.map(([key, value, members]) => `${key}=${value === "*" ? members.join("|") : value}`);
    return parts.join(" ") || "all traffic";
  }

  function selector(panel, ticked, onChange) {
    const form = h("form", { class: "selector", "aria-label": "traffic selection" });
    for (const c of panel.contexts) {
      ticked[c.id] = new Set(c.values.map((v) => v.id));
      const legend = h("legend", {}, c.name, c.used ? null : h("span", { class: "muted" }, " (no parameter of this graph depends on it)"));
      const set = h("fieldset", { "data-context-set": c.id }, legend);
      for (const v of c.values) {
        const id = `ctx-${panel.id}-${c.id}-${v.id}`;
        const box = h("input", { type: "checkbox", id, "data-context": c.id, value: v.id, checked: true });
        box.checked = true;
        box.addEventListener("change", () => {
          if (box.checked) ticked[c.id].add(v.id); else ticked[c.id].delete(v.id);
          onChange();
        });
        set.appendChild(h("label", { for: id }, box, ` ${v.label} `, h("span", { class: "muted" }, pct(v.share, 0))));
      }
      form.appendChild(set);
    }
    return form;
  }

  const NODE_W = 116, NODE_H = 44, COL_W = 150, ROW_H = 84, TOP = 70;

  // Neighbouring columns: an S-curve between the boxes' sides. Longer forward edges arc above
  // the boxes, edges that close a cycle (or stay in a column) loop below them.
  function edgeGeometry(e, pos) {
    const a = pos.get(e.source), b = pos.get(e.target), span = Math.round((b.x - a.x) / COL_W);
    if (!e.back && span === 1) {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, dx = (x2 - x1) / 2;
      return { d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, lx: (x1 + x2) / 2, ly: (y1 + y2) / 2 - 5 };
    }
    const x1 = a.x + NODE_W / 2, x2 = b.x + NODE_W / 2;
    const bend = 26 + 12 * Math.abs(span);
    if (!e.back && span > 1 && b.y > a.y) {  // down to a lower row: leave from below, enter from the left
      const y1 = a.y + NODE_H, x3 = b.x, y3 = b.y + NODE_H / 2;
      return { d: `M${x1},${y1} C${x1},${y3} ${x3 - 40},${y3} ${x3},${y3}`, lx: (x1 + x3) / 2, ly: y3 - 6 };
    }
    if (!e.back && span > 1) {
      const y1 = a.y, y2 = b.y, high = Math.min(y1, y2) - bend;
      return { d: `M${x1},${y1} C${x1},${high} ${x2},${high} ${x2},${y2}`, lx: (x1 + x2) / 2, ly: high + bend / 4 - 2 };
    }
    const y1 = a.y + NODE_H, y2 = b.y + NODE_H, low = Math.max(y1, y2) + bend;
    return { d: `M${x1},${y1} C${x1},${low} ${x2},${low} ${x2},${y2}`, lx: (x1 + x2) / 2, ly: low - bend / 4 + 10 };
  }

  function diagram(panel) {
    const pos = new Map(panel.nodes.map((n) => [n.id, { x: 12 + n.column * COL_W, y: TOP + n.row * ROW_H }]));
    const cols = Math.max(...panel.nodes.map((n) => n.column)) + 1;
    const rows = Math.max(...panel.nodes.map((n) => n.row)) + 1;
    const width = 24 + (cols - 1) * COL_W + NODE_W, height = TOP + (rows - 1) * ROW_H + NODE_H + 52;
    const root = s("svg", { class: "diagram", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
      "aria-label": `funnel diagram of ${panel.name}` });
    const edges = s("g", { class: "edges" }), labels = s("g", { class: "labels" }), nodes = s("g", { class: "nodes" });
    const parts = { edges: [], labels: [], nodes: [], visits: [] };
    for (const e of panel.edges) {
      const g = edgeGeometry(e, pos);
      const path = s("path", { d: g.d, class: `edge status-${e.status || "none"}`, "data-edge": e.id },
        s("title", {}, `${e.id}: ${e.source} → ${e.target}` + (e.status ? ` (monitor: ${e.status})` : "")));
      edges.appendChild(path);
      const label = s("text", { x: g.lx, y: g.ly, class: "edge-label", "text-anchor": "middle" });
      labels.appendChild(label);
      parts.edges.push(path);
      parts.labels.push(label);
    }
    for (const n of panel.nodes) {
      const p = pos.get(n.id);
      const visits = s("text", { x: p.x + NODE_W / 2, y: p.y + 35, class: "node-visits", "text-anchor": "middle" });
      const group = s("g", { class: `node ${n.outcome ? "outcome-" + n.outcome : ""} ${n.entry ? "entry" : ""}`, "data-node": n.id },
        s("rect", { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6 }),
        s("title", {}, n.name === n.id ? n.id : `${n.name} (${n.id})`),
        s("text", { x: p.x + NODE_W / 2, y: p.y + 18, class: "node-name", "text-anchor": "middle" }, clip(n.name, 17)),
        visits);
      nodes.appendChild(group);
      parts.nodes.push(group);
      parts.visits.push(visits);
    }
    root.append(edges, nodes, labels);
    return { root, parts };
  }

  function updateDiagram(panel, parts, m) {
    const top = Math.max(1e-12, ...m.flows);
    panel.edges.forEach((e, i) => {
      parts.edges[i].setAttribute("stroke-width", (1 + 13 * m.flows[i] / top).toFixed(2));
      parts.edges[i].setAttribute("data-flow", String(m.flows[i]));
      parts.edges[i].setAttribute("data-p", m.p[i] === null ? "" : String(m.p[i]));
      parts.labels[i].textContent = m.p[i] === null ? "–" : `p ${num(m.p[i])}`;
    });
    panel.nodes.forEach((n, i) => {
      parts.visits[i].textContent = `${pct(m.visits[i], 1)} visit`;
      parts.nodes[i].setAttribute("data-visits", String(m.visits[i]));
    });
  }

  function table(headers, rows, attrs) {
    return h("table", attrs || {}, h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((x) => h("td", {}, x))))));
  }

  function graphSection(panel) {
    if (panel.error) {
      return h("section", { "data-graph": panel.id, class: "graph", "aria-labelledby": `title-${panel.id}` },
        h("h2", { id: `title-${panel.id}` }, panel.name, h("span", { class: "muted" }, ` (${panel.id})`)),
        h("p", { class: "problem", role: "alert" }, `This graph cannot be computed: ${panel.error}`));
    }
    panel.draws = decodeDraws(panel.draws, panel.segments.length, panel.samples);
    const ticked = {};
    const section = h("section", { "data-graph": panel.id, class: "graph", "aria-labelledby": `title-${panel.id}` });
    const conversion = h("span", { "data-testid": "conversion", class: "kpi" });
    const interval = h("div", { "data-testid": "interval" });
    const details = h("div", { class: "muted" });
    const problem = h("p", { class: "problem", role: "alert", hidden: true });
    const { root, parts } = diagram(panel);
    const top = h("div", { class: "segments" });
    const figures = h("div", { class: "tables" });

    function refresh() {
      const sel = selectionShares(panel, ticked);
      if (sel.empty) {
        problem.hidden = false;
        problem.textContent = `Tick at least one value of ${sel.empty.name}: it has no traffic left.`;
        section.classList.add("stale");
        return;
      }
      problem.hidden = true;
      section.classList.remove("stale");
      const m = mix(panel, sel.shares);
      conversion.setAttribute("data-value", String(m.point));
      conversion.textContent = pct(m.point);
      interval.setAttribute("data-p05", String(m.p05));
      interval.setAttribute("data-p95", String(m.p95));
      interval.textContent = `90% interval ${pct(m.p05)} – ${pct(m.p95)}`;
      details.textContent = `median ${pct(m.p50)}, mean ${pct(m.mean)} over ${panel.samples.toLocaleString("en")} Monte Carlo draws (seed ${panel.seed})`;
      updateDiagram(panel, parts, m);
      const order = panel.segments.map((seg, j) => j).filter((j) => m.weights[j] > 0)
        .sort((a, b) => m.weights[b] - m.weights[a]).slice(0, 10);
      top.replaceChildren(h("h3", {}, "Top segments"), table(["segment", "weight", "conversion", "90% interval"],
        order.map((j) => {
          const seg = panel.segments[j];
          return [segmentLabel(seg), pct(m.weights[j], 1), pct(seg.conversion), `${pct(seg.p05)} – ${pct(seg.p95)}`];
        }), { class: "numbers" }));
      figures.replaceChildren(
        h("details", {}, h("summary", {}, "Nodes and edges"),
          table(["node", "visits", "drop-off"], panel.nodes.map((n, i) => {
            const out = panel.edges.reduce((acc, e, k) => acc + (e.source === n.id ? m.flows[k] : 0), 0);
            return [n.name, pct(m.visits[i]), n.outcome ? n.outcome : pct(Math.max(0, m.visits[i] - out))];
          }), { class: "numbers" }),
          table(["edge", "from → to", "p", "flow", "monitor"], panel.edges.map((e, i) =>
            [e.id, `${e.source} → ${e.target}`, num(m.p[i], 4), pct(m.flows[i]), e.status || "–"]), { class: "numbers" })));
    }

    section.append(
      h("h2", { id: `title-${panel.id}` }, panel.name, h("span", { class: "muted" }, ` (${panel.id})`)),
      panel.description ? h("p", { class: "description" }, panel.description) : null,
      h("div", { class: "whatif" }, selector(panel, ticked, refresh),
        h("div", { class: "figures" }, h("div", {}, conversion, h("span", { class: "muted" }, " conversion at the means")),
          interval, details, problem, legend())),
      h("div", { class: "diagram-wrap" }, root), top, figures);
    if (DATA.serve) section.appendChild(overridePanel(panel, refresh));
    refresh();
    return section;
  }

  function legend() {
    return h("p", { class: "legend" }, "Edges: width by flow, label = effective p, colour = worst monitor status of their parameters: ",
      ...STATUSES.map((st) => h("span", { class: `chip status-${st}` }, st)), h("span", { class: "chip status-none" }, "not monitored"));
  }

  // --- live overrides (serve) ----------------------------------------------------------------------

  function overridePanel(panel, refresh) {
    const status = h("p", { class: "muted", role: "status" });
    const inputs = [];
    const body = panel.overrides.map((o) => {
      const input = h("input", { type: "number", min: 0, max: 1, step: "any", value: o.mean, "data-override": o.reference,
        "aria-label": `p.mean of ${o.reference}` });
      inputs.push([o, input]);
      input.addEventListener("change", send);
      return h("tr", {}, h("td", {}, h("code", {}, o.reference)),
        h("td", {}, o.parameter, describe(o.parameter)), h("td", {}, num(o.mean, 4)), h("td", {}, input));
    });

    async function send() {
      const overrides = {};
      for (const [o, input] of inputs) {
        if (input.value !== "" && Number(input.value) !== o.mean) overrides[o.reference] = Number(input.value);
      }
      status.textContent = "computing…";
      try {
        const answer = await fetch("api/whatif", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ graph: panel.id, overrides }) });
        const reply = await answer.json();
        status.classList.toggle("problem", !answer.ok);
        if (!answer.ok) { status.textContent = reply.error || `error ${answer.status}`; return; }
        panel.segments = reply.segments;
        panel.draws = decodeDraws(reply.draws, reply.segments.length, reply.samples);
        const n = Object.keys(overrides).length;
        status.textContent = n ? `${n} override${n > 1 ? "s" : ""} applied (as whatif --set)` : "no overrides";
        refresh();
      } catch (err) {
        status.classList.add("problem");
        status.textContent = `the server did not answer: ${err}`;
      }
    }

    return h("details", { class: "overrides", open: true }, h("summary", {}, "Live overrides (p.mean, recomputed by the engine on the server)"),
      status, h("table", { class: "numbers" }, h("thead", {}, h("tr", {}, ...["reference", "parameter", "registry mean", "override"].map((x) => h("th", {}, x)))),
        h("tbody", {}, ...body)));
  }

  // --- Red/Amber/Green board -------------------------------------------------------------------

  function sparkline(values) {
    const w = 120, hgt = 28, pts = values.map((z, i) => [i, z]).filter(([, z]) => z !== null);
    const top = Math.max(3.5, ...pts.map(([, z]) => Math.abs(z)));
    const x = (i) => (values.length < 2 ? w / 2 : 2 + (i * (w - 4)) / (values.length - 1));
    const y = (z) => hgt / 2 - (z / top) * (hgt / 2 - 2);
    const svg = s("svg", { class: "spark", width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: "img",
      "aria-label": `σ over the last ${values.length} runs` });
    for (const band of [-3, -2, 2, 3]) svg.appendChild(s("line", { x1: 0, x2: w, y1: y(band), y2: y(band), class: Math.abs(band) === 3 ? "band-red" : "band-amber" }));
    svg.appendChild(s("line", { x1: 0, x2: w, y1: y(0), y2: y(0), class: "band-zero" }));
    if (pts.length) {
      svg.appendChild(s("polyline", { points: pts.map(([i, z]) => `${x(i).toFixed(1)},${y(z).toFixed(1)}`).join(" ") }));
      const [i, z] = pts[pts.length - 1];
      svg.appendChild(s("circle", { cx: x(i), cy: y(z), r: 2.5 }));
    }
    return svg;
  }

  const BOARD_COLUMNS = [
    ["parameter", (r) => r.param_id], ["reference", (r) => r.reference], ["expected", (r) => r.expected],
    ["observed", (r) => r.observed], ["n", (r) => r.n], ["σ", (r) => r.z],
    ["status", (r) => STATUSES.indexOf(r.status)], ["σ, last 30 runs", null],
  ];

  function boardSection(board) {
    const section = h("section", { id: "board", "aria-labelledby": "board-title" },
      h("h2", { id: "board-title" }, "Model fit", board.run_date ? h("span", { class: "muted" }, ` (monitor run ${board.run_date})`) : null));
    if (board.note) {
      section.appendChild(h("p", { class: "note", "data-testid": "board-note" }, board.note));
      return section;
    }
    const shown = new Set(STATUSES);
    let sortBy = 6, ascending = true;
    const tbody = h("tbody");
    const rows = board.rows.map((r) => h("tr", { "data-param": r.param_id, "data-status": r.status },
      h("td", {}, r.param_id), h("td", {}, h("code", {}, r.reference)), h("td", { class: "num" }, pct(r.expected)),
      h("td", { class: "num" }, pct(r.observed)), h("td", { class: "num" }, r.n === null ? "–" : r.n.toLocaleString("en")),
      h("td", { class: "num" }, r.z === null ? "–" : `${r.z.toFixed(1)}σ`),
      h("td", {}, h("span", { class: `chip status-${r.status}`, title: r.message }, r.status)), h("td", {}, sparkline(r.z_history))));
    const heads = BOARD_COLUMNS.map(([name, key], c) => {
      if (!key) return h("th", { scope: "col" }, name);
      const button = h("button", { type: "button", "data-sort": name }, name);
      button.addEventListener("click", () => { ascending = sortBy === c ? !ascending : true; sortBy = c; draw(); });
      return h("th", { scope: "col" }, button);
    });
    function draw() {
      const key = BOARD_COLUMNS[sortBy][1];
      const order = board.rows.map((r, i) => i).sort((a, b) => {
        const x = key(board.rows[a]), y = key(board.rows[b]);
        const cmp = x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1;
        return (ascending || x === null || y === null ? cmp : -cmp) || board.rows[a].param_id.localeCompare(board.rows[b].param_id);
      });
      tbody.replaceChildren(...order.filter((i) => shown.has(board.rows[i].status) || !STATUSES.includes(board.rows[i].status)).map((i) => rows[i]));
      heads.forEach((th, c) => th.setAttribute("aria-sort", c === sortBy ? (ascending ? "ascending" : "descending") : "none"));
    }
    const filter = h("fieldset", { class: "filter" }, h("legend", {}, "Show"));
    for (const st of STATUSES) {
      const count = board.rows.filter((r) => r.status === st).length;
      const box = h("input", { type: "checkbox", "data-status-filter": st, checked: true, id: `filter-${st}` });
      box.checked = true;
      box.addEventListener("change", () => { if (box.checked) shown.add(st); else shown.delete(st); draw(); });
      filter.appendChild(h("label", { for: `filter-${st}` }, box, " ", h("span", { class: `chip status-${st}` }, st), ` ${count}`));
    }
    section.append(filter, h("div", { class: "board-wrap" }, h("table", { class: "board numbers" }, h("thead", {}, h("tr", {}, ...heads)), tbody)));
    draw();
    return section;
  }

  // --- history -------------------------------------------------------------------------------------

  const tooltip = h("div", { class: "tooltip", role: "tooltip", hidden: true });

  function showTip(target, point) {
    tooltip.replaceChildren(h("strong", {}, `mean ${num(point.mean, 4)}` + (point.stdev === null ? "" : ` ± ${num(point.stdev, 4)}`)),
      h("div", {}, h("code", {}, point.commit.slice(0, 10)), ` ${point.date.slice(0, 16).replace("T", " ")}`),
      h("div", {}, point.author), h("div", { class: "message" }, point.message));
    tooltip.hidden = false;
    const box = target.getBoundingClientRect();
    tooltip.style.left = `${Math.min(window.innerWidth - 280, box.right + 8)}px`;
    tooltip.style.top = `${box.top + window.scrollY - 8}px`;
  }

  function historyChart(item) {
    const pts = item.points.filter((p) => p.mean !== null);
    const w = 270, hgt = 100, left = 38, right = 10, top = 10, bottom = 24;
    const svg = s("svg", { class: "history-chart", width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: "img",
      "aria-label": `mean of ${item.param_id} over ${pts.length} commits` });
    let lo = Math.min(...pts.map((p) => p.mean)), hi = Math.max(...pts.map((p) => p.mean));
    if (hi - lo < 1e-9) { lo -= 0.01; hi += 0.01; }
    const x = (i) => left + (i * (w - left - right)) / Math.max(1, pts.length - 1);
    const y = (m) => top + ((hi - m) / (hi - lo)) * (hgt - top - bottom);
    svg.append(s("line", { x1: left, x2: left, y1: top, y2: hgt - bottom, class: "axis-line" }),
      s("text", { x: left - 4, y: top + 4, class: "axis", "text-anchor": "end" }, num(hi, 3)),
      s("text", { x: left - 4, y: hgt - bottom, class: "axis", "text-anchor": "end" }, num(lo, 3)),
      s("text", { x: left, y: hgt - 6, class: "axis" }, pts[0].date.slice(0, 10)),
      s("text", { x: w - right, y: hgt - 6, class: "axis", "text-anchor": "end" }, pts[pts.length - 1].date.slice(0, 10)),
      s("polyline", { points: pts.map((p, i) => `${x(i).toFixed(1)},${y(p.mean).toFixed(1)}`).join(" ") }));
    pts.forEach((p, i) => {
      const dot = s("circle", { cx: x(i), cy: y(p.mean), r: 4.5, tabindex: 0, "data-commit": p.commit });
      for (const ev of ["mouseenter", "focus"]) dot.addEventListener(ev, () => showTip(dot, p));
      for (const ev of ["mouseleave", "blur"]) dot.addEventListener(ev, () => { tooltip.hidden = true; });
      svg.appendChild(dot);
    });
    return svg;
  }

  // Parameters whose mean changed get a chart; the others share one table.
  function historySection(history) {
    const changed = history.filter((item) => new Set(item.points.filter((p) => p.mean !== null).map((p) => p.mean)).size > 1);
    const grid = h("div", { class: "history-grid" });
    for (const item of changed) {
      const last = item.points[item.points.length - 1];
      grid.appendChild(h("figure", { "data-history": item.param_id },
        h("figcaption", {}, item.param_id, last.mean !== null ? h("span", { class: "muted" }, ` now ${num(last.mean, 4)}`) : null),
        describe(item.param_id), historyChart(item)));
    }
    const steady = history.filter((item) => !changed.includes(item));
    const rows = steady.map((item) => {
      const first = item.points.find((p) => p.mean !== null);
      return h("tr", { "data-history": item.param_id }, h("td", {}, item.param_id),
        h("td", {}, first ? num(first.mean, 4) : "–"),
        h("td", {}, first ? first.date.slice(0, 10) : "not committed yet"), h("td", {}, first ? first.message : ""));
    });
    return h("section", { id: "history", "aria-labelledby": "history-title" },
      h("h2", { id: "history-title" }, "Parameter history"),
      h("p", { class: "muted" }, changed.length
        ? "The mean at each commit that changed it, oldest to newest; hover or focus a point for the commit."
        : "No parameter's mean has changed in the commits so far."),
      changed.length ? grid : null,
      steady.length ? h("details", { open: !changed.length }, h("summary", {}, steady.length === 1 ? "1 parameter unchanged since it was committed" : `${steady.length} parameters unchanged since they were committed`),
        h("table", { class: "numbers" }, h("thead", {}, h("tr", {}, ...["parameter", "mean", "since", "commit message"].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", {}, ...rows))) : null);
  }

  // --- the page --------------------------------------------------------------------------------------

  const app = document.getElementById("app");
  const nav = h("nav", {}, ...DATA.graphs.map((g) => h("a", { href: `#title-${g.id}` }, g.name)),
    h("a", { href: "#board" }, "Model fit"), DATA.history ? h("a", { href: "#history" }, "History") : null);
  app.replaceChildren(
    h("header", {}, h("h1", {}, DATA.title), h("p", { class: "muted" }, `generated ${DATA.generated}`), nav),
    ...DATA.graphs.map(graphSection), boardSection(DATA.board), DATA.history ? historySection(DATA.history) : null, tooltip);
  document.body.setAttribute("data-ready", "true");
})();
