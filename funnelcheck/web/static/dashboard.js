// funnelcheck dashboard (docs/dashboard.md). Hand-written, no library. Every string from the
// registry or the database goes into the page through textContent or setAttribute, never as HTML.
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("funnelcheck-data").textContent);
  const { h, s, clip, pct, num, table } = Dom;
  const { STATUSES } = Board;

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

  const NODE_W = 116, NODE_H = 44, COL_W = 150, ROW_H = 84;

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
    // Room above the first row for the arcs of edges that skip columns (their apex is 3/4 of the bend up).
    const at = new Map(panel.nodes.map((n) => [n.id, n]));
    const arcs = panel.edges.filter((e) => !e.back && at.get(e.target).column - at.get(e.source).column > 1
      && at.get(e.target).row <= at.get(e.source).row);
    const TOP = 16 + Math.max(0, ...arcs.map((e) => 0.75 * (26 + 12 * (at.get(e.target).column - at.get(e.source).column)) + 8));
    const pos = new Map(panel.nodes.map((n) => [n.id, { x: 12 + n.column * COL_W, y: TOP + n.row * ROW_H }]));
    const cols = Math.max(...panel.nodes.map((n) => n.column)) + 1;
    const rows = Math.max(...panel.nodes.map((n) => n.row)) + 1;
    // Room below the last row for the loops of back edges that start or end there.
    const span = (e) => Math.abs(at.get(e.target).column - at.get(e.source).column);
    const loops = panel.edges.filter((e) => (e.back || span(e) === 0)
      && Math.max(at.get(e.source).row, at.get(e.target).row) === rows - 1);
    const bottom = 12 + Math.max(0, ...loops.map((e) => 0.75 * (26 + 12 * span(e)) + 14));
    const width = 24 + (cols - 1) * COL_W + NODE_W, height = TOP + (rows - 1) * ROW_H + NODE_H + bottom;
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
        s("text", { x: p.x + NODE_W / 2, y: p.y + 18, class: "node-name", "text-anchor": "middle" }, clip(n.name, 14)),
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

  function graphSection(panel) {
    if (panel.error) {
      return h("section", { "data-graph": panel.id, class: "graph", "aria-labelledby": `title-${panel.id}` },
        h("h2", { id: `title-${panel.id}` }, panel.name, h("span", { class: "muted" }, ` (${panel.id})`)),
        h("p", { class: "problem", role: "alert" }, `This graph cannot be computed: ${panel.error}`));
    }
    panel.draws = Mix.decodeDraws(panel.draws, panel.segments.length, panel.samples);
    const ticked = {};
    const section = h("section", { "data-graph": panel.id, class: "graph", "aria-labelledby": `title-${panel.id}` });
    const conversion = h("span", { "data-testid": "conversion", class: "kpi" });
    const interval = h("div", { "data-testid": "interval" });
    const details = h("div", { class: "muted" });
    const problem = h("p", { class: "problem", role: "alert", hidden: true });
    const { root, parts } = diagram(panel);
    const top = h("div", { class: "segments" });
    const figures = h("details", { class: "tables" });  // built once: it stays open across refreshes

    function refresh() {
      const sel = Mix.selectionShares(panel, ticked);
      if (sel.empty) {
        problem.hidden = false;
        problem.textContent = `Tick at least one value of ${sel.empty.name}: it has no traffic left.`;
        section.classList.add("stale");
        return;
      }
      problem.hidden = true;
      section.classList.remove("stale");
      const m = Mix.mix(panel, sel.shares);
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
      figures.replaceChildren(h("summary", {}, "Nodes and edges"),
          table(["node", "visits", "drop-off"], panel.nodes.map((n, i) => {
            const out = panel.edges.reduce((acc, e, k) => acc + (e.source === n.id ? m.flows[k] : 0), 0);
            return [n.name, pct(m.visits[i]), n.outcome ? n.outcome : pct(Math.max(0, m.visits[i] - out))];
          }), { class: "numbers" }),
          table(["edge", "from → to", "p", "flow", "monitor"], panel.edges.map((e, i) =>
            [e.id, `${e.source} → ${e.target}`, num(m.p[i], 4), pct(m.flows[i]), e.status || "–"]), { class: "numbers" }));
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
    let asked = 0;  // only the answer to the latest change is applied, whatever order answers come in
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
      const mine = ++asked;
      try {
        const answer = await fetch("api/whatif", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ graph: panel.id, overrides }) });
        const reply = await answer.json();
        if (mine !== asked) return;
        status.classList.toggle("problem", !answer.ok);
        if (!answer.ok) { status.textContent = reply.error || `error ${answer.status}`; return; }
        panel.segments = reply.segments;
        panel.draws = Mix.decodeDraws(reply.draws, reply.segments.length, reply.samples);
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

  // --- the page --------------------------------------------------------------------------------------

  const app = document.getElementById("app");
  const nav = h("nav", {}, ...DATA.graphs.map((g) => h("a", { href: `#title-${g.id}` }, g.name)),
    h("a", { href: "#board" }, "Model fit"), DATA.history ? h("a", { href: "#history" }, "History") : null);
  app.replaceChildren(
    h("header", {}, h("h1", {}, DATA.title), h("p", { class: "muted" }, `generated ${DATA.generated}`), nav),
    ...DATA.graphs.map(graphSection), Board.boardSection(DATA.board), DATA.history ? History.historySection(DATA.history, describe) : null, History.tooltip);
  document.body.setAttribute("data-ready", "true");
})();
