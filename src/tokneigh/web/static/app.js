// The page of `tokneigh serve`: four views (Neighbours, Compare, Analogy, Map) over the JSON
// API; the Map view is in mapview.js (its renderer in map.js). With --against B, B's column
// and the Drift view are in pair.js.
// Vanilla JS, no build step, nothing loaded from outside: the page must work offline.
// The URL is the whole state: every change pushes it, and rendering reads only from it, so
// links, reloads and back/forward all reproduce a view.
// API strings (tokens can be "<script>") only ever reach the page through textContent and
// DOM attributes, never innerHTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const VIEWS = ["neighbors", "compare", "analogy", "map", "drift"];
const FLAGS = ["dedupe", "words_only", "include_special", "exclude_query"];
// Default values stay out of the URL, so links stay short. The metric's default is the
// server's first metric (set from /api/health), which is also what the API uses without one.
const DEFAULT_OPTIONS = {
  k: 20, metric: "cosine", dedupe: false, words_only: false, include_special: false,
  exclude_query: false, min_sim: "",
};
// What each view's URL holds besides the options.
const FIELDS = {
  neighbors: ["q"], compare: ["a", "b"], analogy: ["a", "b", "c"],
  map: ["sel", "find", "colour", "cam"], // token id, search text, colour field, camera
  drift: ["offset"], // the first rank shown, less one
};
// Which options each view's API call takes (compare ranks b among a's neighbours, so only
// include_special changes it; analogy always leaves its terms out).
const OPTIONS_OF = {
  neighbors: ["k", "metric", ...FLAGS, "min_sim"],
  map: ["metric", "dedupe", "words_only", "include_special", "min_sim"],
  compare: ["metric", "include_special"],
  analogy: ["k", "metric", "dedupe", "words_only", "include_special", "min_sim"],
  drift: [],
};

let health = null; // /api/health's answer
const memory = {
  neighbors: { q: "" }, compare: { a: "", b: "" }, analogy: { a: "", b: "", c: "" },
  map: { sel: "", find: "", colour: "", cam: "" }, drift: { offset: "" },
};
let state = { view: "neighbors", options: { ...DEFAULT_OPTIONS } };
let generation = 0; // bumped by every render: answers to older requests are dropped
let inflight = null; // AbortController of the current render's requests
const hints = {}; // each view's initial summary, shown again when it has no query

// --- small DOM helpers ---------------------------------------------------------------------

const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children (strings become text nodes, never markup). */
function el(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

function svgEl(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    // The server's Content-Security-Policy refuses style attributes but not the CSSOM.
    if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

function fmt(x, digits = 3) {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "—";
}

const int = (n) => Number(n).toLocaleString("en-US");

// --- the API ---------------------------------------------------------------------------------

/** GET an API path; an `{"error": …}` answer (or a non-2xx status) throws an Error with the
 * server's own message, so every failure can be shown as one line of text. */
async function fetchJSON(path, params, signal) {
  const query = params ? params.toString() : "";
  const url = "api/" + path + (query ? "?" + query : "");
  let response;
  try {
    response = await fetch(url, { signal, headers: { Accept: "application/json" } });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new Error("the server did not answer (is tokneigh serve still running?)");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    if (err.name === "AbortError") throw err;
  }
  if (data && typeof data === "object" && !Array.isArray(data) && "error" in data) {
    throw new Error(String(data.error || `error ${response.status}`));
  }
  if (!response.ok) throw new Error(`the server answered ${response.status} to /api/${path}`);
  if (data === null) throw new Error(`the server's answer to /api/${path} is not JSON`);
  return data;
}

/** The API parameters of a view: its fields plus the options it takes (the server refuses
 * any other). k and the metric are always sent; flags only when on. */
function apiParams(fields, which, options = state.options) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) params.set(name, value);
  for (const name of OPTIONS_OF[which]) {
    const value = options[name];
    if (name === "k") params.set("k", String(value));
    else if (FLAGS.includes(name)) { if (value) params.set(name, "1"); }
    else if (name === "metric" || value !== "") params.set(name, String(value));
  }
  return params;
}

// --- the URL ---------------------------------------------------------------------------------

/** The state a query string stands for. Other views' fields are not in the URL: they keep
 * what the page last showed in them (`memory`). */
function parseSearch(search) {
  const params = new URLSearchParams(search);
  let view = params.get("view") || "neighbors";
  if (!VIEWS.includes(view)) view = "neighbors";
  const options = { ...DEFAULT_OPTIONS };
  const k = Number.parseInt(params.get("k"), 10);
  if (Number.isFinite(k) && k > 0) options.k = k;
  if (params.get("metric")) options.metric = params.get("metric");
  for (const flag of FLAGS) options[flag] = ["1", "true"].includes(params.get(flag));
  if (params.get("min_sim")) options.min_sim = params.get("min_sim");
  const fields = {};
  for (const name of FIELDS[view]) fields[name] = params.get(name) || "";
  return { view, options, fields };
}

function searchOf(view, fields, options) {
  const params = new URLSearchParams();
  if (view !== "neighbors") params.set("view", view);
  for (const name of FIELDS[view]) if (fields[name]) params.set(name, fields[name]);
  for (const [name, value] of Object.entries(options)) {
    if (value === DEFAULT_OPTIONS[name]) continue;
    params.set(name, FLAGS.includes(name) ? "1" : String(value));
  }
  const search = params.toString();
  return search ? "?" + search : location.pathname;
}

/** The link that makes a token (by id, so exactly that token is asked for) the query. */
function tokenHref(id) {
  return searchOf("neighbors", { q: "#" + id }, state.options);
}

/** Go to a state: push it onto the history (unless it is the current one) and render it.
 * `again: false` skips rendering the state already shown. */
function navigate(view, fields, options = state.options, { again = true } = {}) {
  const target = searchOf(view, fields, options);
  const current = location.search || location.pathname;
  if (target !== current) history.pushState(null, "", target);
  else if (!again) return;
  renderFromURL();
}

function renderFromURL() {
  const parsed = parseSearch(location.search);
  state = { view: parsed.view, options: parsed.options };
  memory[parsed.view] = parsed.fields;
  render();
}

// --- rendering ---------------------------------------------------------------------------

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  const box = $("#error");
  box.textContent = "";
  box.hidden = true;
  showUnknown([]);
}

/** The notice for queries the model cannot see: texts whose tokens hold the tokenizer's
 * unknown token (the API's `unknown` / `query_unknown` / `unknown_terms` fields, present only
 * then). Without it "😀" vs "🎉" reads as cosine 1 for no visible reason. `items` are
 * { text, token } pairs; none hides the notice. */
function showUnknown(items) {
  const box = $("#notice");
  box.replaceChildren(...items.map(({ text, token }) => el("p", {},
    `${quoted(text)} holds text this model's vocabulary has no token for: the model sees `
    + (token ? `${token}, ` : "its unknown token, ")
    + "the one vector that stands for any unknown text.")));
  box.hidden = items.length === 0;
}

/** The { text, token } of a query object that has unknown positions (a compare term, a
 * tokenization), or null. */
function unknownOf(text, tokens, unknown) {
  if (!unknown || !unknown.length || text === null || text === undefined) return null;
  return { text, token: tokens ? tokens[unknown[0]] : null };
}

function setSummary(view, ...children) {
  const summary = $(`#${view}-summary`);
  if (children.length) summary.replaceChildren(...children);
  else summary.replaceChildren(...hints[view].cloneNode(true).childNodes);
}

function render() {
  generation += 1;
  if (inflight) inflight.abort();
  inflight = new AbortController();
  clearError();
  const { view, options } = state;
  for (const button of document.querySelectorAll("[data-view]")) {
    button.setAttribute("aria-selected", String(button.dataset.view === view));
  }
  for (const name of VIEWS) $(`#panel-${name}`).hidden = name !== view;
  fillControls(options);
  const fields = memory[view];
  if (view === "neighbors") {
    $("#query").value = fields.q;
    renderNeighbors(fields.q, generation, inflight.signal);
  } else if (view === "compare") {
    $("#compare-a").value = fields.a;
    $("#compare-b").value = fields.b;
    renderCompare(fields.a, fields.b, generation, inflight.signal);
  } else if (view === "map") {
    renderMapView(fields, generation, inflight.signal);
  } else if (view === "drift") {
    renderDriftView(fields, generation, inflight.signal);
  } else {
    $("#analogy-a").value = fields.a;
    $("#analogy-b").value = fields.b;
    $("#analogy-c").value = fields.c;
    renderAnalogy(fields.a, fields.b, fields.c, generation, inflight.signal);
  }
}

function fillControls(options) {
  $("#k").value = String(options.k);
  const metric = $("#metric");
  // A metric the server does not offer stays selectable, so the select shows what the URL
  // asks for (and the API's refusal explains it).
  if (![...metric.options].some((o) => o.value === options.metric)) {
    metric.append(el("option", { value: options.metric }, options.metric));
  }
  metric.value = options.metric;
  for (const flag of FLAGS) $("#" + flag).checked = options[flag];
  $("#min_sim").value = options.min_sim;
  // exclude_query is the neighbour list's own option: analogy leaves its terms out anyway.
  $("#exclude_query").disabled = state.view !== "neighbors";
  const ranked = state.view !== "compare"; // compare takes only the metric and include_special
  for (const id of ["k", "dedupe", "words_only", "min_sim"]) $("#" + id).disabled = !ranked;
}

/** Run a view's requests; on failure show the message (a stale or aborted render shows
 * nothing). Returns the answers, or null when there is nothing more to draw. */
async function settle(gen, busy, requests) {
  busy.setAttribute("aria-busy", "true");
  try {
    const answers = await Promise.all(requests);
    return gen === generation ? answers : null;
  } catch (err) {
    if (gen === generation && err.name !== "AbortError") {
      showError(err.message);
      return "failed";
    }
    return null;
  } finally {
    if (gen === generation) busy.setAttribute("aria-busy", "false");
  }
}

// --- tokens ------------------------------------------------------------------------------------

const VISIBLE = { " ": "␣", "\n": "↵", "\r": "␍", "\t": "⇥" };

/** A token's text with its edges visible: leading/trailing spaces as a dimmed ␣, newlines and
 * tabs anywhere as ↵ ⇥, other control characters escaped. The real text goes in the title. */
function tokenText(text) {
  const span = el("span", { class: "tok" });
  if (text === null || text === undefined) {
    span.append(el("span", { class: "ws" }, "(unnamed)"));
    return span;
  }
  if (text === "") {
    span.append(el("span", { class: "ws" }, "(empty)"));
    return span;
  }
  const chars = [...text];
  let start = 0;
  let end = chars.length;
  while (start < end && /\s/u.test(chars[start])) start += 1;
  while (end > start && /\s/u.test(chars[end - 1])) end -= 1;
  let plain = "";
  const flush = () => { if (plain) span.append(plain); plain = ""; };
  chars.forEach((ch, i) => {
    const edge = i < start || i >= end;
    let shown = null;
    if (ch in VISIBLE && (edge || ch !== " ")) shown = VISIBLE[ch];
    else if (edge) shown = "·"; // other whitespace at an edge (no-break space, ideographic)
    else if (/\p{Cc}/u.test(ch)) shown = "\\x" + ch.codePointAt(0).toString(16).padStart(2, "0");
    if (shown === null) { plain += ch; return; }
    flush();
    span.append(el("span", { class: "ws", "aria-hidden": "true" }, shown));
  });
  flush();
  return span;
}

/** Tokenization chips: alternating colours show the boundaries, the id beneath each. */
function renderChips(container, ids, tokens, labels, unknown = []) {
  const unseen = new Set(unknown || []);
  container.replaceChildren(...ids.map((id, i) => {
    const label = labels ? labels[i] : null;
    const bytes = typeof label === "string" && label.startsWith('b"');
    const text = bytes ? el("span", { class: "tok bytes" }, label) : tokenText(tokens[i]);
    // An unknown token is marked: it stands for text the vocabulary has no token for.
    return el("span", { class: unseen.has(i) ? "chip unknown" : "chip",
      title: (bytes ? label : JSON.stringify(tokens[i]))
        + (unseen.has(i) ? " (unknown text)" : "") },
    text, el("span", { class: "chip-id" }, String(id)));
  }));
}

// --- neighbour lists (Neighbours and Analogy) ---------------------------------------------

/** A neighbour table: rank, token (a link making it the query), id and a similarity bar.
 * Bars scale by the largest |score| of the list (CSLS scores leave [-1, 1]); a negative
 * score gets no bar but keeps its number. */
function neighborTable(neighbors, metric) {
  const scale = Math.max(...neighbors.map((n) => Math.abs(n.similarity)), 1e-9);
  const rows = neighbors.map((n) => {
    const width = Math.max(0, n.similarity) / scale * 100;
    const token = el("td", { class: "token" },
      el("a", {
        class: "token-link", href: tokenHref(n.id), "data-nav": "",
        title: n.token === null ? `token #${n.id} (no text)` : n.token,
      }, tokenText(n.token)));
    if (n.variants && n.variants.length) {
      token.append(el("span", { class: "variants" }, " also ", n.variants.map((v, i) => [
        i ? ", " : "",
        el("a", { class: "variant-link", href: tokenHref(v.id), "data-nav": "",
          title: `${JSON.stringify(v.token)} #${v.id} · ${fmt(v.similarity)}` },
        tokenText(v.token)),
      ])));
    }
    return el("tr", { class: "neighbor", "data-id": String(n.id) },
      el("td", { class: "rank num" }, String(n.rank)),
      token,
      el("td", { class: "id num" }, String(n.id)),
      el("td", { class: "sim" }, el("div", { class: "sim-cell" },
        el("span", { class: "bar", "aria-hidden": "true" },
          el("span", { class: "fill", style: { width: `${width.toFixed(1)}%` } })),
        el("span", { class: "num value" }, fmt(n.similarity)))));
  });
  return el("table", { class: "neighbor-table" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", class: "num" }, "rank"),
      el("th", { scope: "col" }, "token"),
      el("th", { scope: "col", class: "num" }, "id"),
      el("th", { scope: "col" }, metric))),
    el("tbody", {}, rows));
}

function quoted(text) {
  return JSON.stringify(text);
}

/** How a query is named in a summary: "king", or #2332 "king" for an id query. */
function queryName(answer) {
  if (answer.query_id !== null && answer.query_id !== undefined) {
    const token = answer.query_tokens && answer.query_tokens[0];
    return `#${answer.query_id}` + (token ? ` ${quoted(token)}` : "");
  }
  return quoted(answer.query);
}

// --- Neighbours view ---------------------------------------------------------------------------

// As the server reads a query (analyses/queries.py parse_query_text): `#` and digits, nothing
// around them, is a token id; a leading backslash before `#` asks for the literal text.
const isIdQuery = (q) => /^#[0-9]+$/.test(q);
const literalText = (q) => (/^\\+#/.test(q) ? q.slice(1) : q);

async function renderNeighbors(q, gen, signal) {
  const list = $("#neighbors");
  const chips = $("#tokens");
  const figure = $("#map-figure");
  document.title = q ? `${q} · tokneigh` : "tokneigh";
  if (!q) {
    setSummary("neighbors");
    list.replaceChildren();
    chips.replaceChildren();
    $("#tokens-heading").hidden = true;
    figure.hidden = true;
    clearPair();
    return;
  }
  const options = state.options;
  const maxMap = health ? health.limits.max_map_k : 200;
  const mapParams = apiParams({ q, k: String(Math.min(options.k, maxMap)) }, "map");
  // The map is drawn when it comes; its failure (say, nothing passes the filters) is its own.
  const mapRequest = fetchJSON("map", mapParams, signal);
  mapRequest.catch(() => {});
  figure.setAttribute("aria-busy", "true"); // the last query's map, dimmed until the new one
  const paired = Boolean(health && health.against); // A's list and B's, in one answer
  const answers = await settle(gen, $("#neighbors-result"), [
    fetchJSON(paired ? "pair/neighbors" : "neighbors", apiParams({ q }, "neighbors"), signal),
    isIdQuery(q) ? null : fetchJSON("tokenize", new URLSearchParams({ q: literalText(q) }), signal),
  ]);
  if (answers === null) return;
  if (answers === "failed") {
    setSummary("neighbors", "No neighbours: see the message above.");
    list.replaceChildren();
    clearPair();
    chips.replaceChildren();
    $("#tokens-heading").hidden = true;
    figure.hidden = true;
    return;
  }
  const [answer, tokenized] = answers;
  const result = paired ? answer.a : answer;
  const unseen = unknownOf(result.query, result.query_tokens, result.query_unknown);
  showUnknown(unseen ? [unseen] : []);
  const n = result.neighbors.length;
  const pieces = result.query_ids.length;
  setSummary("neighbors",
    `${n} ${n === 1 ? "neighbour" : "neighbours"} of ${queryName(result)}`,
    pieces > 1 ? ` (the mean of its ${pieces} tokens' unit vectors)` : "",
    ` · ${result.metric}`);
  $("#tokens-heading").hidden = false;
  if (tokenized) {
    renderChips(chips, tokenized.ids, tokenized.tokens, tokenized.labels, tokenized.unknown);
  } else renderChips(chips, result.query_ids, result.query_tokens, null, result.query_unknown);
  list.replaceChildren(n ? neighborTable(result.neighbors, result.metric)
    : el("p", { class: "empty" }, "No token passes the filters."));
  if (paired) renderPair(answer, gen);
  try {
    const map = await mapRequest;
    if (gen !== generation) return;
    drawMap(map);
  } catch (err) {
    if (gen !== generation || err.name === "AbortError") return;
    $("#map").replaceChildren();
    $("#map-caption").textContent = `No map: ${err.message}`;
  }
  figure.hidden = false;
  figure.setAttribute("aria-busy", "false");
}

/** A 5-pointed star centred on (x, y): the query's mark on the map. */
function starPath(x, y, outer, inner) {
  const points = [];
  for (let i = 0; i < 10; i += 1) {
    const r = i % 2 ? inner : outer;
    const a = -Math.PI / 2 + (i * Math.PI) / 5;
    points.push(`${(x + r * Math.cos(a)).toFixed(1)},${(y + r * Math.sin(a)).toFixed(1)}`);
  }
  return `M${points.join("L")}Z`;
}

/** The PCA map: equal scales on both axes (distances mean something), the query a red star,
 * each neighbour a circle shaded by similarity, labelled, and a link making it the query. */
function drawMap(map) {
  const svg = $("#map");
  const W = 640, H = 460, pad = 30;
  const xs = [map.query_xy[0], ...map.neighbors.map((n) => n.x)];
  const ys = [map.query_xy[1], ...map.neighbors.map((n) => n.y)];
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  // Labels run to the right of their point: leave the right side room for them.
  const scale = Math.min((W - 2 * pad - 60) / (x1 - x0 || 1), (H - 2 * pad) / (y1 - y0 || 1));
  const sx = (x) => W / 2 - 30 + (x - (x0 + x1) / 2) * scale;
  const sy = (y) => H / 2 - (y - (y0 + y1) / 2) * scale; // SVG's y runs down
  const sims = map.neighbors.map((n) => n.similarity);
  const [lo, hi] = [Math.min(...sims), Math.max(...sims)];
  const dense = map.neighbors.length > 60; // too many labels to show all: show them on hover
  const [ev1, ev2] = map.explained_variance || [null, null];
  const nodes = [
    svgEl("rect", { class: "frame", x: 0.5, y: 0.5, width: W - 1, height: H - 1, rx: 6 }),
    svgEl("text", { class: "axis-label", x: W - 8, y: H - 8, "text-anchor": "end" },
      `PC1 ${pct(ev1)} →`),
    svgEl("text", { class: "axis-label", x: 10, y: 18 }, `↑ PC2 ${pct(ev2)}`),
  ];
  // Farthest first, so the nearest neighbours are drawn on top.
  const order = [...map.neighbors].sort((a, b) => a.similarity - b.similarity);
  for (const n of order) {
    const t = hi > lo ? (n.similarity - lo) / (hi - lo) : 1;
    const [px, py] = [sx(n.x), sy(n.y)];
    nodes.push(svgEl("a", { class: "map-link", href: tokenHref(n.id), "data-nav": "" },
      svgEl("title", {}, `${n.token === null ? "(unnamed)" : quoted(n.token)} · #${n.id} · `
        + `rank ${n.rank} · ${fmt(n.similarity)}`),
      svgEl("circle", { class: "point", cx: px.toFixed(1), cy: py.toFixed(1), r: 5,
        fill: `hsl(214, 70%, ${(78 - 40 * t).toFixed(0)}%)` }),
      svgEl("text", { class: "label", x: (px + 7).toFixed(1), y: (py + 4).toFixed(1) },
        visibleLabel(n.token))));
  }
  const [qx, qy] = [sx(map.query_xy[0]), sy(map.query_xy[1])];
  nodes.push(svgEl("g", { class: "query-mark" },
    svgEl("title", {}, `the query: ${queryName(map)}`),
    svgEl("path", { class: "query-point", d: starPath(qx, qy, 10, 4.2) }),
    svgEl("text", { class: "query-label", x: qx.toFixed(1), y: (qy - 13).toFixed(1),
      "text-anchor": "middle" },
      map.query_id !== null && map.query_id !== undefined
        ? visibleLabel(map.query_tokens[0]) : shortened(map.query, 40))));
  svg.classList.toggle("dense", dense);
  svg.replaceChildren(...nodes);
  $("#map-caption").textContent =
    `PCA of the unit vectors of the query (★) and its ${map.neighbors.length} nearest tokens `
    + `(the query's own tokens left out); the axes explain ${pct(ev1)} and ${pct(ev2)} of `
    + "their variance. Darker is more similar; click a point to make it the query.";
}

/** A long query's start, for the map's label (the summary above names it in full). */
const shortened = (text, most) => ([...text].length > most
  ? [...text].slice(0, most - 1).join("") + "…" : text);

const pct = (share) => (typeof share === "number" ? `${Math.round(share * 100)}%` : "");

/** A token as plain text with its edge spaces visible (SVG text cannot hold styled spans
 * as nicely, and a label only needs to be readable). */
function visibleLabel(token) {
  if (token === null || token === undefined) return "(unnamed)";
  return token.replace(/^\s+|\s+$/gu, (run) => run.replace(/ /g, "␣")).replace(/\n/g, "↵");
}

// --- Compare view -----------------------------------------------------------------------------

async function renderCompare(a, b, gen, signal) {
  const out = $("#compare-result");
  document.title = a && b ? `${a} vs ${b} · tokneigh` : "compare · tokneigh";
  if (!a || !b) {
    setSummary("compare");
    out.replaceChildren();
    return;
  }
  const answers = await settle(gen, out, [
    fetchJSON("compare", apiParams({ a, b }, "compare"), signal),
    fetchJSON("vector", new URLSearchParams({ q: a }), signal),
    fetchJSON("vector", new URLSearchParams({ q: b }), signal),
  ]);
  if (answers === null) return;
  if (answers === "failed") {
    setSummary("compare", "No comparison: see the message above.");
    out.replaceChildren();
    return;
  }
  const [cmp, va, vb] = answers;
  showUnknown([cmp.a, cmp.b].map((t) => unknownOf(t.text, t.tokens, t.unknown)).filter(Boolean));
  const nameA = termName(cmp.a);
  const nameB = termName(cmp.b);
  setSummary("compare", `${nameA} vs ${nameB} · ${cmp.metric}`);
  const cosineLabel = cmp.metric === "cosine" || cmp.metric.startsWith("csls")
    ? "cosine similarity" : `cosine (${cmp.metric} vectors)`;
  const rows = [
    ["pieces of A", "pieces-a", chipsOf(cmp.a)],
    ["pieces of B", "pieces-b", chipsOf(cmp.b)],
    cmp.metric === "cosine" ? null : [`${cmp.metric} score`, "similarity", fmt(cmp.similarity)],
    [cosineLabel, "cosine", fmt(cmp.cosine)],
    ["angle", "angle", `${fmt(cmp.angle_degrees, 1)}°`],
    ["Pearson correlation (raw)", "pearson", fmt(cmp.pearson)],
    ["norm of A (raw)", "norm-a", fmt(cmp.norm_a)],
    ["norm of B (raw)", "norm-b", fmt(cmp.norm_b)],
    ["rank of B among A's neighbours", "rank", int(cmp.rank_of_b)],
  ].filter(Boolean);
  const table = el("table", { class: "measures" }, el("tbody", {}, rows.map(([name, key, value]) =>
    el("tr", {}, el("th", { scope: "row" }, name),
      el("td", { class: typeof value === "string" ? "num" : "", "data-measure": key }, value)))));
  const figure = el("figure", { class: "scatter-figure" },
    scatterPlot(va.values, vb.values, nameA, nameB),
    el("figcaption", {}, `Each point is one of the ${va.values.length} dimensions: x is its raw `
      + `value in ${nameA}, y in ${nameB}. On the diagonal the two agree; Pearson's r over `
      + `these points is ${fmt(cmp.pearson)}.`));
  out.replaceChildren(el("div", { class: "col" }, table), el("div", { class: "col" }, figure));
}

function termName(term) {
  if (term.query_id !== null && term.query_id !== undefined) {
    const token = term.tokens && term.tokens[0];
    return `#${term.query_id}` + (token ? ` ${quoted(token)}` : "");
  }
  return quoted(term.text);
}

function chipsOf(term) {
  const box = el("span", { class: "chips inline" });
  renderChips(box, term.ids, term.tokens, null, term.unknown);
  return box;
}

/** The "dimension scatter": one circle per dimension at (a's value, b's value), both axes on
 * the same symmetric range, axes through 0 and a light y = x diagonal. */
function scatterPlot(xs, ys, nameA, nameB) {
  const S = 420, pad = 34;
  const m = Math.max(...xs.map(Math.abs), ...ys.map(Math.abs), 1e-9) * 1.05;
  const at = (v) => pad + ((v + m) / (2 * m)) * (S - 2 * pad);
  const sx = at;
  const sy = (v) => S - at(v);
  const nodes = [
    svgEl("rect", { class: "frame", x: 0.5, y: 0.5, width: S - 1, height: S - 1, rx: 6 }),
    svgEl("line", { class: "diagonal", x1: sx(-m), y1: sy(-m), x2: sx(m), y2: sy(m) }),
    svgEl("line", { class: "axis", x1: sx(-m), y1: sy(0), x2: sx(m), y2: sy(0) }),
    svgEl("line", { class: "axis", x1: sx(0), y1: sy(-m), x2: sx(0), y2: sy(m) }),
    svgEl("text", { class: "axis-label", x: S - pad, y: sy(0) - 6, "text-anchor": "end" },
      `A ${nameA} →`),
    svgEl("text", { class: "axis-label", x: sx(0) + 6, y: pad - 10 }, `↑ B ${nameB}`),
    svgEl("text", { class: "tick", x: sx(-m), y: sy(0) + 14 }, fmt(-m, 2)),
    svgEl("text", { class: "tick", x: sx(m), y: sy(0) + 14, "text-anchor": "end" }, fmt(m, 2)),
  ];
  xs.forEach((x, i) => {
    nodes.push(svgEl("circle", { class: "dim", cx: sx(x).toFixed(1), cy: sy(ys[i]).toFixed(1),
      r: 2.4 }, svgEl("title", {}, `dimension ${i}: A ${fmt(x)}, B ${fmt(ys[i])}`)));
  });
  return svgEl("svg", { id: "scatter", viewBox: `0 0 ${S} ${S}`, role: "img",
    "aria-label": `dimension scatter of ${nameA} and ${nameB}` }, nodes);
}

// --- Analogy view ------------------------------------------------------------------------------

async function renderAnalogy(a, b, c, gen, signal) {
  const out = $("#analogy-result");
  document.title = a && b && c ? `${a} : ${b} :: ${c} : ? · tokneigh` : "analogy · tokneigh";
  if (!a || !b || !c) {
    setSummary("analogy");
    out.replaceChildren();
    return;
  }
  const answers = await settle(gen, out, [
    fetchJSON("analogy", apiParams({ a, b, c }, "analogy"), signal),
  ]);
  if (answers === null) return;
  if (answers === "failed") {
    setSummary("analogy", "No answer: see the message above.");
    out.replaceChildren();
    return;
  }
  const [result] = answers;
  showUnknown((result.unknown_terms || []).map((text) => ({ text, token: null })));
  setSummary("analogy", `${quoted(a)} is to ${quoted(b)} as ${quoted(c)} is to ? `
    + `· ${quoted(b)} − ${quoted(a)} + ${quoted(c)} · ${result.metric}`);
  out.replaceChildren(result.neighbors.length
    ? neighborTable(result.neighbors, result.metric)
    : el("p", { class: "empty" }, "No token passes the filters."));
}

// --- events ------------------------------------------------------------------------------------

function readOptions() {
  const options = { ...state.options };
  const k = Number.parseInt($("#k").value, 10);
  const maxK = health ? health.limits.max_k : 1000;
  options.k = Number.isFinite(k) && k > 0 ? Math.min(k, maxK) : DEFAULT_OPTIONS.k;
  options.metric = $("#metric").value;
  for (const flag of FLAGS) options[flag] = $("#" + flag).checked;
  options.min_sim = $("#min_sim").value.trim();
  return options;
}

function wire() {
  $("#search").addEventListener("submit", (event) => {
    event.preventDefault();
    // Not trimmed: a leading space is part of a GPT-2 token (" Mike" is not "Mike").
    const q = $("#query").value;
    if (!q.trim()) {
      showError("type a word or #id");
      return;
    }
    navigate("neighbors", { q }, readOptions());
  });
  $("#compare-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const a = $("#compare-a").value;
    const b = $("#compare-b").value;
    if (!a.trim() || !b.trim()) {
      showError("type two words (or #ids) to compare");
      return;
    }
    navigate("compare", { a, b }, readOptions());
  });
  $("#analogy-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const fields = { a: $("#analogy-a").value, b: $("#analogy-b").value, c: $("#analogy-c").value };
    if (!fields.a.trim() || !fields.b.trim() || !fields.c.trim()) {
      showError("type three words (or #ids): a is to b as c is to ?");
      return;
    }
    navigate("analogy", fields, readOptions());
  });
  const applyControls = () =>
    navigate(state.view, memory[state.view], readOptions(), { again: false });
  $("#controls").addEventListener("change", applyControls);
  // Enter in k or min similarity submits the form, and may fire change as well.
  $("#controls").addEventListener("submit", (event) => {
    event.preventDefault();
    applyControls();
  });
  for (const button of document.querySelectorAll("[data-view]")) {
    const view = button.dataset.view;
    button.addEventListener("click", () => navigate(view, memory[view]));
  }
  // Token links are real links (a new tab or a copied link works); a plain click stays in
  // the page: push the link's state and render it without a reload.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-nav]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
      || event.altKey) return;
    event.preventDefault();
    const url = new URL(link.getAttribute("href"), location.href);
    const parsed = parseSearch(url.search);
    navigate(parsed.view, parsed.fields, parsed.options);
  });
  wireMapControls();
  window.addEventListener("popstate", renderFromURL);
}

/** A model as the CLI's titles name it: a hub id as is, a folder by its last two parts. */
function modelLabel(model) {
  if (!model.startsWith("/")) return model;
  const parts = model.split("/").filter(Boolean);
  return parts.length ? parts.slice(-2).join("/") : model;
}

async function start() {
  for (const view of VIEWS) hints[view] = $(`#${view}-summary`).cloneNode(true);
  wire();
  try {
    health = await fetchJSON("health");
  } catch (err) {
    $("#model-info").textContent = "no server";
    showError(err.message);
    return;
  }
  const info = $("#model-info");
  info.textContent = `${modelLabel(health.model)} · ${int(health.vocab_size)} tokens × `
    + `${health.dim} dims · ${health.embeddings} embeddings`
    + (health.quantization ? ` · ${health.quantization}` : "");
  info.title = health.model;
  $("#metric").replaceChildren(...health.metrics.map((m) => el("option", { value: m }, m)));
  if (health.metrics.length) DEFAULT_OPTIONS.metric = health.metrics[0];
  $("#k").max = String(health.limits.max_k);
  for (const id of ["query", "compare-a", "compare-b", "analogy-a", "analogy-b", "analogy-c"]) {
    $("#" + id).maxLength = health.limits.max_query_chars;
  }
  startPair();
  renderFromURL();
}

start();
