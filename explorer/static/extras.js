// artlens explorer: a painting page's deformed versions and saliency maps, where the store holds them
// (GET /api/tables/TABLE/extras?key=K). Loaded after app.js (uses its el(), enc(), getJSON() and fmt());
// every value is inserted as text. Nothing is shown when the store has neither.
"use strict";

const SEVERITIES = [1, 2, 3, 4, 5];

// One deformation table: deformation x severity, each cell "cos C / ssim S", then its contact sheet.
function deformationSection(d) {
  const t = el("table", { class: "metrics deformations", "data-table": d.table },
    el("tr", {}, el("th", {}, "deformation"), ...SEVERITIES.map((s) => el("th", {}, `severity ${s}`))));
  const names = [...new Set(d.rows.map((r) => r.deformation))];
  for (const name of names) {
    const cells = SEVERITIES.map((s) => {
      const r = d.rows.find((x) => x.deformation === name && x.severity === s);
      return el("td", {}, r ? `cos ${fmt(r.cosine)} / ssim ${fmt(r.ssim)}` : "");
    });
    t.append(el("tr", {}, el("th", {}, name), ...cells));
  }
  const parts = [el("h3", {}, `${d.table}${d.suite ? ` (suite ${d.suite})` : ""}: cosine to the clean embedding / SSIM`), t];
  if (d.sheet) parts.push(el("img", { class: "sheet", src: d.sheet, alt: `contact sheet of ${d.table}`, loading: "lazy" }));
  else if (d.sheet_error) parts.push(el("p", { class: "hint" }, `no contact sheet: ${d.sheet_error}`));
  return el("section", { class: "deformation" }, ...parts);
}

function saliencyFigure(m) {
  return el("figure", { class: "saliency" }, el("img", { src: m.url, alt: `${m.method} saliency for ${m.text}`, loading: "lazy" }),
    el("figcaption", {}, `${m.method}: "${m.text}"`, el("br"), `cosine ${fmt(m.score)}`));
}

// The section of the page, filled when the extras arrive (empty and hidden when there are none).
function renderExtras(table, key) {
  const box = el("section", { id: "extras", hidden: "" });
  getJSON(`/api/tables/${enc(table)}/extras?key=${enc(key)}`).then((data) => {
    const parts = [];
    if (data.deformations.length) parts.push(el("h2", {}, "Deformed versions"), ...data.deformations.map(deformationSection));
    if (data.saliency.length) parts.push(el("h2", {}, "Saliency maps"), el("div", { class: "saliency-maps" }, ...data.saliency.map(saliencyFigure)));
    box.replaceChildren(...parts);
    box.hidden = !parts.length;
    box.dataset.ready = "true";
  }).catch(() => { box.dataset.ready = "true"; });
  return box;
}
