// artlens explorer: one page, hash routes (#/map, #/search, #/painting/TABLE/KEY, #/results, #/result/NAME).
// Every value from the data is inserted as text (el(), textContent): never innerHTML.
"use strict";

const state = { tables: [], table: null, where: "", deck: null, map: null };
const PALETTE = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75],
  [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207], [174, 199, 232], [255, 187, 120],
  [152, 223, 138], [255, 152, 150], [197, 176, 213], [196, 156, 148], [247, 182, 210], [199, 199, 199],
  [219, 219, 141], [158, 218, 229], [57, 59, 121], [99, 121, 57], [140, 109, 49], [132, 60, 57], [90, 90, 90]];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}
const enc = encodeURIComponent;
const view = () => document.getElementById("view");

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(data.error || `${response.status}`);
  return data;
}

function tableInfo(name) { return state.tables.find((t) => t.name === name) || {}; }
function whereParam() { return state.where ? `&where=${enc(state.where)}` : ""; }
function imageURL(table, key, size) { return `/api/tables/${enc(table)}/image/${enc(key)}?size=${size}`; }

// A metadata card: the key and a few fields, for rows without an image.
function card(row, fields) {
  const list = el("dl", { class: "card" });
  const names = fields || Object.keys(row).filter((k) => !["embedding", "score"].includes(k)).slice(0, 5);
  for (const name of names) {
    if (row[name] === undefined) continue;
    list.append(el("dt", {}, name), el("dd", {}, row[name] === null ? "" : String(row[name])));
  }
  return list;
}

// The picture of a row: its thumbnail, the image its URL column names, or a metadata card.
function picture(table, row, size) {
  const info = tableInfo(table);
  if (!info.has_images && !info.image_url_column) return card(row);
  const img = el("img", { src: imageURL(table, row.key, size), alt: String(row.key), loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(card(row)));
  return img;
}

function thumb(table, row) {
  const caption = el("figcaption", {}, String(row.key));
  if (typeof row.score === "number") caption.append(el("br"), `score ${row.score.toFixed(3)}`);
  for (const f of ["label", "predicted", "residual"]) {
    if (row[f] !== undefined && row[f] !== null) caption.append(el("br"), `${f}: ${row[f]}`);
  }
  return el("figure", { class: "thumb", "data-key": String(row.key),
    onclick: () => { location.hash = `#/painting/${enc(table)}/${enc(row.key)}`; } },
  picture(table, row, 160), caption);
}

function grid(table, rows) {
  const g = el("div", { class: "grid" });
  for (const row of rows) g.append(thumb(table, row));
  if (!rows.length) g.append(el("p", { class: "hint" }, "no rows"));
  return g;
}

// ------------------------------------------------------------------------------------------------- map
function colour(map, i) {
  if (map.color_kind === "category") return PALETTE[map.codes[i] % PALETTE.length];
  if (map.color_kind === "number") {
    const v = map.values[i];
    if (Number.isNaN(v) || !map.range) return [190, 190, 190];
    const t = map.range[1] > map.range[0] ? (v - map.range[0]) / (map.range[1] - map.range[0]) : 0.5;
    return [Math.round(68 + t * 185), Math.round(1 + t * 230), Math.round(84 + (t < 0.5 ? t : 1 - t) * 160)];
  }
  return [21, 101, 192];
}

function legend(map) {
  const box = el("div", { class: "legend", id: "legend" });
  if (map.color_kind === "category") {
    map.categories.forEach((c, i) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = `rgb(${PALETTE[i % PALETTE.length].join(",")})`;
      box.append(el("span", {}, swatch, c));
    });
  } else if (map.color_kind === "number" && map.range) {
    box.append(el("span", {}, `${map.color}: ${map.range[0]} (dark) to ${map.range[1]} (light)`));
  }
  return box;
}

const METHODS = { pca: "PCA (fast)", umap: "UMAP (minutes the first time on a large table)" };

async function renderMap() {
  const table = state.table;
  const info = tableInfo(table);
  const select = el("select", { id: "color" }, el("option", { value: "" }, "(one colour)"));
  for (const c of info.columns || []) if (c !== "key") select.append(el("option", { value: c }, c));
  select.value = state.color && (info.columns || []).includes(state.color) ? state.color : "";
  const method = el("select", { id: "method" });
  for (const [value, label] of Object.entries(METHODS)) method.append(el("option", { value }, label));
  method.value = state.method || "pca";
  const mode = el("select", { id: "select-mode" }, el("option", { value: "box" }, "box"),
    el("option", { value: "lasso" }, "lasso"));
  mode.value = state.selectMode || "box";
  const status = el("span", { class: "hint", id: "map-status" }, "loading the map…");
  const box = el("div", { id: "map" });
  const selection = el("section", { id: "selection" });
  view().replaceChildren(
    el("div", { class: "toolbar" }, el("label", {}, "projection ", method), el("label", {}, "colour by ", select),
      el("label", {}, "shift-drag selects a ", mode), status,
      el("span", { class: "hint" }, "drag to pan, wheel to zoom, click a point to open it")),
    box, el("div", { id: "legend-box" }), selection);
  select.addEventListener("change", () => { state.color = select.value; drawMap(box, status); });
  method.addEventListener("change", () => { state.method = method.value; drawMap(box, status); });
  mode.addEventListener("change", () => { state.selectMode = mode.value; });
  await drawMap(box, status);
  dragSelection(box, selection);
}

// The map's typed arrays arrive as base64 of little-endian bytes (`arrays` names their types).
const ARRAY_TYPES = { float32: Float32Array, uint8: Uint8Array };
function unpackMap(map) {
  for (const [name, type] of Object.entries(map.arrays || {})) {
    const text = atob(map[name]);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    map[name] = new ARRAY_TYPES[type](bytes.buffer);
  }
}

async function drawMap(box, status) {
  const table = state.table;
  const color = state.color ? `&color=${enc(state.color)}` : "";
  const method = state.method || "pca";
  status.textContent = `loading the ${method} map…`;
  delete status.dataset.points;
  let map;
  try {
    map = await getJSON(`/api/tables/${enc(table)}/map?method=${enc(method)}${color}${whereParam()}`);
  } catch (e) { status.textContent = ""; showError(e.message); return; }
  unpackMap(map);
  state.map = map;
  const n = map.keys.length;
  const positions = new Float32Array(2 * n);
  const colours = new Uint8Array(4 * n);
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    const x = map.x[i], y = -map.y[i];
    positions[2 * i] = x; positions[2 * i + 1] = y;
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    const c = colour(map, i);
    colours[4 * i] = c[0]; colours[4 * i + 1] = c[1]; colours[4 * i + 2] = c[2]; colours[4 * i + 3] = 210;
  }
  if (!n) { x0 = y0 = -1; x1 = y1 = 1; }
  const width = box.clientWidth, height = box.clientHeight;
  const span = Math.max(x1 - x0, y1 - y0, 1e-6);
  const zoom = Math.log2(Math.min(width, height) / span * 0.9);
  const radius = Math.max(1.5, Math.min(6, 400 / Math.sqrt(Math.max(n, 1))));
  const layer = new deck.ScatterplotLayer({
    id: `points-${method}`, data: { length: n, attributes: { getPosition: { value: positions, size: 2 },
      getFillColor: { value: colours, size: 4, normalized: true } } },
    radiusUnits: "pixels", getRadius: radius, pickable: true, autoHighlight: true, highlightColor: [0, 0, 0, 255],
  });
  const props = { layers: [layer], onHover: (pick) => hover(pick) };
  const viewState = { target: [(x0 + x1) / 2, (y0 + y1) / 2, 0], zoom };
  if (state.deck && state.deck.props.parent === box) {
    state.deck.setProps(state.deck.method === method ? props : { ...props, initialViewState: viewState });
  } else {
    if (state.deck) state.deck.finalize();
    state.deck = new deck.Deck({ parent: box, width: "100%", height: "100%", views: new deck.OrthographicView({ id: "ortho" }),
      initialViewState: viewState, controller: true,
      getCursor: ({ isHovering }) => (isHovering ? "pointer" : "grab"),
      onClick: (pick) => { if (pick.index >= 0) location.hash = `#/painting/${enc(table)}/${enc(state.map.keys[pick.index])}`; },
      ...props });
  }
  state.deck.method = method;
  status.textContent = `${n.toLocaleString()} points (${method})${state.where ? " (filtered)" : ""}`;
  status.dataset.points = String(n);
  document.getElementById("legend-box").replaceChildren(legend(map));
}

const rowCache = new Map();
async function rowOf(table, key) {
  const id = `${table}\u0000${key}`;
  if (!rowCache.has(id)) rowCache.set(id, getJSON(`/api/tables/${enc(table)}/rows/${enc(key)}`).catch(() => ({ key })));
  return rowCache.get(id);
}

async function hover(pick) {
  const tip = document.getElementById("tooltip");
  if (!pick || pick.index < 0 || !state.map) { tip.hidden = true; return; }
  const key = state.map.keys[pick.index];
  const table = state.table;
  tip.style.left = `${pick.pageX + 14 - window.scrollX}px`;
  tip.style.top = `${pick.pageY + 14 - window.scrollY}px`;
  tip.dataset.key = key;
  const row = await rowOf(table, key);
  if (tip.dataset.key !== key) return;
  const fields = Object.keys(row).filter((k) => !["shard", "rows"].includes(k)).slice(0, 6);
  tip.replaceChildren(tableInfo(table).has_images ? picture(table, row, 160) : el("span"), card(row, fields));
  tip.hidden = false;
}

// Is (x, y) inside the polygon (even-odd rule)?
function inside(poly, x, y) {
  let hit = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

// Shift-drag draws a box or a lasso (the toolbar's choice); the paintings inside it are listed as a grid.
function dragSelection(box, out) {
  const SVG = "http://www.w3.org/2000/svg";
  let path = null, shape = null;
  const local = (e) => { const r = box.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  const stop = (e) => { e.stopPropagation(); e.preventDefault(); };
  const lasso = () => (state.selectMode || "box") === "lasso";
  box.addEventListener("pointerdown", (e) => {
    if (!e.shiftKey) return;
    stop(e);
    path = [local(e)];
    if (lasso()) {
      shape = document.createElementNS(SVG, "svg");
      shape.setAttribute("class", "lasso");
      shape.append(document.createElementNS(SVG, "polygon"));
    } else shape = el("div", { class: "box" });
    box.append(shape);
  }, true);
  box.addEventListener("pointermove", (e) => {
    if (!path) return;
    stop(e);
    const [x, y] = local(e);
    if (lasso()) {
      path.push([x, y]);
      shape.firstChild.setAttribute("points", path.map((p) => p.join(",")).join(" "));
    } else {
      const [sx, sy] = path[0];
      Object.assign(shape.style, { left: `${Math.min(x, sx)}px`, top: `${Math.min(y, sy)}px`,
        width: `${Math.abs(x - sx)}px`, height: `${Math.abs(y - sy)}px` });
    }
  }, true);
  box.addEventListener("pointerup", (e) => {
    if (!path) return;
    stop(e);
    const end = local(e);
    shape.remove();
    const viewport = state.deck.getViewports()[0];
    let poly;
    const free = lasso();
    if (free) poly = path.concat([end]).map((p) => viewport.unproject(p));
    else {
      const [[ax, ay], [bx, by]] = [viewport.unproject(path[0]), viewport.unproject(end)];
      poly = [[ax, ay], [bx, ay], [bx, by], [ax, by]];
    }
    path = null;
    const map = state.map, keys = [];
    const xs = poly.map((p) => p[0]), ys = poly.map((p) => p[1]);
    const [lx, hx, ly, hy] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    for (let i = 0; i < map.keys.length; i++) {
      const px = map.x[i], py = -map.y[i];
      if (px >= lx && px <= hx && py >= ly && py <= hy && (!free || inside(poly, px, py))) keys.push(map.keys[i]);
    }
    showSelection(out, keys);
  }, true);
  for (const name of ["mousedown", "mousemove", "mouseup"]) box.addEventListener(name, (e) => { if (e.shiftKey) stop(e); }, true);
}

async function showSelection(out, keys) {
  const shown = keys.slice(0, 120);
  const rows = await Promise.all(shown.map((k) => rowOf(state.table, k)));
  out.replaceChildren(el("h2", {}, `Selection: ${keys.length} painting${keys.length === 1 ? "" : "s"}` +
    (keys.length > shown.length ? ` (first ${shown.length} shown)` : "")), grid(state.table, rows));
}

// ---------------------------------------------------------------------------------------------- search
function renderSearch() {
  const table = state.table;
  const results = el("section", { id: "search-results" });
  const text = el("input", { id: "search-text", type: "text", placeholder: "words, e.g. a stormy sea", size: 30 });
  const key = el("input", { id: "search-key", type: "text", placeholder: "a row's key", size: 20 });
  const file = el("input", { id: "search-image", type: "file", accept: "image/*" });
  const k = el("input", { id: "search-k", type: "number", value: "12", min: "1", max: "500" });
  async function run(kind) {
    showError("");
    results.replaceChildren(el("p", { class: "hint" }, "searching…"));
    const base = `/api/tables/${enc(table)}/neighbors?k=${enc(k.value || 12)}${whereParam()}`;
    try {
      let rows;
      if (kind === "image") {
        if (!file.files.length) throw new Error("choose an image first");
        const body = new FormData();
        body.append("image", file.files[0]);
        rows = await getJSON(base, { method: "POST", body });
      } else if (kind === "key") rows = await getJSON(`${base}&key=${enc(key.value.trim())}`);
      else rows = await getJSON(`${base}&text=${enc(text.value)}`);
      results.replaceChildren(el("h2", {}, `${rows.length} nearest in ${table}`), grid(table, rows));
    } catch (e) { results.replaceChildren(); showError(e.message); }
  }
  const form = (input, kind, label) => el("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); run(kind); } },
    input, el("button", { type: "submit", id: `search-${kind}-go` }, label));
  view().replaceChildren(el("h2", {}, `Search ${table}`), el("label", {}, "k ", k),
    form(text, "text", "Search words"), form(key, "key", "Search by key"), form(file, "image", "Search by image"),
    results);
}

// -------------------------------------------------------------------------------------------- painting
async function renderPainting(table, key) {
  const out = view();
  out.replaceChildren(el("p", { class: "hint" }, "loading…"));
  let row;
  try { row = await getJSON(`/api/tables/${enc(table)}/rows/${enc(key)}`); } catch (e) {
    out.replaceChildren(); showError(e.message); return;
  }
  const meta = el("table", { class: "meta", id: "metadata" });
  for (const [name, value] of Object.entries(row)) {
    if (name === "rows") continue;
    meta.append(el("tr", {}, el("th", {}, name), el("td", {}, value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value))));
  }
  const neighbours = el("section", { id: "neighbours" }, el("p", { class: "hint" }, "finding neighbours…"));
  out.replaceChildren(el("h2", {}, String(key)), el("div", { class: "painting" }, picture(table, row, 480), meta), neighbours);
  out.append(renderExtras(table, key));  // deformed versions and saliency maps (extras.js)
  try {
    const rows = await getJSON(`/api/tables/${enc(table)}/neighbors?key=${enc(key)}&k=12${whereParam()}`);
    neighbours.replaceChildren(el("h2", {}, "Neighbours"), grid(table, rows));
  } catch (e) { neighbours.replaceChildren(el("p", { class: "hint" }, `no neighbours: ${e.message}`)); }
}

// --------------------------------------------------------------------------------------------- results
const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v === null || v === undefined ? "" : String(v));

function metricsTable(r) {
  const t = el("table", { class: "metrics" }, el("tr", {}, el("th", {}, "metric"), el("th", {}, "value"),
    el("th", {}, "95% interval"), el("th", {}, "baseline")));
  for (const [name, m] of Object.entries(r.metrics || {})) {
    const ci = m && Array.isArray(m.ci) ? `${fmt(m.ci[0])} – ${fmt(m.ci[1])}` : "";
    t.append(el("tr", {}, el("td", {}, name), el("td", {}, fmt(m && m.value)), el("td", {}, ci),
      el("td", {}, fmt((r.baseline || {})[name]))));
  }
  return t;
}

async function renderResults() {
  let list;
  try { list = await getJSON("/api/results"); } catch (e) { showError(e.message); return; }
  const ul = el("ul", { class: "results", id: "results-list" });
  for (const r of list) {
    const main = Object.entries(r.metrics || {})[0];
    ul.append(el("li", {}, el("a", { href: `#/result/${enc(r.name)}` }, r.name), ` — ${r.probe} on ${(r.tables || []).join(", ")}, n ${fmt(r.n)}`,
      main ? `, ${main[0]} ${fmt(main[1] && main[1].value)}` : ""));
  }
  if (!list.length) ul.append(el("li", {}, "no probe results in this store"));
  view().replaceChildren(el("h2", {}, "Probe results"), ul);
}

async function renderResult(name) {
  let r;
  try { r = await getJSON(`/api/results/${enc(name)}`); } catch (e) { showError(e.message); return; }
  const table = (r.tables || [])[0];
  const gallery = el("section", { id: "cell-gallery" });
  const parts = [el("h2", {}, `${r.name}: ${r.probe} on ${(r.tables || []).join(", ")}`), el("p", {}, `n = ${fmt(r.n)}`), metricsTable(r)];
  const rows = r.rows;
  if (rows && rows.kind === "classification") {
    const m = el("table", { class: "confusion", id: "confusion" });
    m.append(el("tr", {}, el("th", {}, "label \\ predicted"), ...rows.labels.map((l) => el("th", {}, l))));
    rows.labels.forEach((label, i) => {
      const tr = el("tr", {}, el("th", {}, label));
      rows.labels.forEach((predicted, j) => {
        const td = el("td", { class: i === j ? "diag" : "", "data-label": label, "data-predicted": predicted }, String(rows.confusion[i][j]));
        td.addEventListener("click", async () => {
          m.querySelectorAll("td.selected").forEach((c) => c.classList.remove("selected"));
          td.classList.add("selected");
          try {
            const cell = await getJSON(`/api/results/${enc(name)}/rows?label=${enc(label)}&predicted=${enc(predicted)}`);
            gallery.replaceChildren(el("h3", {}, `label ${label}, predicted ${predicted}: ${cell.n} painting${cell.n === 1 ? "" : "s"}`), grid(table, cell.rows));
          } catch (e) { showError(e.message); }
        });
        tr.append(td);
      });
      m.append(tr);
    });
    parts.push(el("h3", {}, "Confusion matrix (click a cell for its paintings)"), m, gallery);
    for (const [label, t] of Object.entries(rows.typical || {})) {
      parts.push(el("section", { class: "typical" }, el("h3", {}, `${label}: most typical (highest ${t.score})`), grid(table, t.most),
        el("h3", {}, `${label}: least typical`), grid(table, t.least)));
    }
  } else if (rows && rows.kind === "regression") {
    parts.push(el("h3", {}, "Largest residuals"), grid(table, rows.largest_residuals));
  } else if (!rows) parts.push(el("p", { class: "hint" }, "this result was saved without its rows"));
  view().replaceChildren(...parts);
}

// ------------------------------------------------------------------------------------------------ router
async function route() {
  showError("");
  document.getElementById("tooltip").hidden = true;
  const [, page, ...rest] = (location.hash || "#/map").split("/");
  const args = rest.map(decodeURIComponent);
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === page));
  if (page !== "map" && state.deck) { state.deck.finalize(); state.deck = null; }
  if (page === "search") renderSearch();
  else if (page === "painting") {
    if (args[0] && args[0] !== state.table && tableInfo(args[0]).name) { state.table = args[0]; document.getElementById("table").value = args[0]; }
    await renderPainting(args[0], args.slice(1).join("/"));
  } else if (page === "results") await renderResults();
  else if (page === "result") await renderResult(args.join("/"));
  else await renderMap();
}

async function start() {
  try { state.tables = await getJSON("/api/tables"); } catch (e) { showError(e.message); return; }
  const select = document.getElementById("table");
  const usable = state.tables.filter((t) => t.dim > 0);
  for (const t of usable) select.append(el("option", { value: t.name }, `${t.name} (${t.rows})`));
  state.table = (usable.find((t) => t.has_images) || usable[0] || {}).name || null;
  select.value = state.table;
  select.addEventListener("change", () => { state.table = select.value; state.color = ""; if (location.hash.startsWith("#/painting")) location.hash = "#/map"; else route(); });
  const filter = document.getElementById("filter");
  document.getElementById("filter-form").addEventListener("submit", (e) => { e.preventDefault(); state.where = filter.value.trim(); route(); });
  document.getElementById("filter-clear").addEventListener("click", () => { filter.value = ""; state.where = ""; route(); });
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "true";
}

start();
