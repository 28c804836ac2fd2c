// Parameter history from Git: a chart per parameter whose mean changed, a table for the others.
const History = (() => {
  "use strict";
  const { h, s, num } = Dom;

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
  function historySection(history, describe) {
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

  return { tooltip, historySection };
})();
