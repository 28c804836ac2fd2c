// funnelcheck dashboard (docs/dashboard.md): building elements. Every string goes into the page
// through createTextNode or setAttribute, never as HTML.
const Dom = (() => {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";

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

  function table(headers, rows, attrs) {
    return h("table", attrs || {}, h("thead", {}, h("tr", {}, ...headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((x) => h("td", {}, x))))));
  }

  return { h, s, clip, pct, num, table };
})();
