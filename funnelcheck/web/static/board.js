// The Red/Amber/Green board of the latest monitor run: filter by status, sort, σ sparklines.
const Board = (() => {
  "use strict";
  const { h, s, pct } = Dom;
  const STATUSES = ["red", "amber", "error", "insufficient", "green"];

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
      h("td", { class: "num", title: r.window ? `window ${r.window}` : null }, pct(r.observed)), h("td", { class: "num" }, r.n === null ? "–" : r.n.toLocaleString("en")),
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

  return { STATUSES, boardSection };
})();
