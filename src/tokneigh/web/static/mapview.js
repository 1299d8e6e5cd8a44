// The Map view of `tokneigh serve`: the whole vocabulary as points (map.js draws them), pan
// and zoom, a label on hover, cluster names at their centres, a search that lights up
// matching tokens, and a click that selects a token: its neighbours (the /api/neighbors rows,
// under the page's options) are highlighted, joined to it by lines and listed beside the map.
// Its state (selection, search, colour, camera) is in the URL like every view's; app.js owns
// the URL and calls renderMapView. The layout comes as JSON facts (/api/layout, polled while
// the server computes it) and one binary body of little-endian arrays (/api/layout.bin).
"use strict";

const MAP_DEFAULT_COLOUR = "cluster";
// Categories (clusters): 20 distinct colours (Tableau 20), repeated past 20.
const CATEGORY_COLOURS = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
  "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
].map(hexColour);
// Numbers: viridis at five stops, by the value's percentile (N_k and norms are skewed).
const RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"].map(hexColour);
const MAP_NEIGHBOURS_MAX = 100; // lines drawn at most (k can be 1000)

const mapState = {
  loading: null, // the promise of the data, once asked
  data: null, // { facts, arrays, indexOf, lowered }
  renderer: null,
  shown: { colour: null, find: null, sel: null, options: null }, // what is drawn now
  hover: -1,
  neighbours: [], // indices of the selected token's neighbours
  firstPaint: null, // ms after the HTML arrived
};

function hexColour(hex) {
  return [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
}

/** The map's data: the facts and the typed arrays over the binary body, loaded once. */
function loadMapData(onProgress) {
  if (!mapState.loading) {
    mapState.loading = fetchMapData(onProgress);
    mapState.loading.catch(() => { mapState.loading = null; }); // a later visit asks again
  }
  return mapState.loading;
}

async function fetchMapData(onProgress) {
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
    throw new Error("the map's arrays are little-endian and this machine is not");
  }
  let facts = await fetchJSON("layout");
  while (facts.status === "computing") {
    onProgress(facts);
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
    facts = await fetchJSON("layout");
  }
  let response;
  try {
    response = await fetch("api/layout.bin");
  } catch (err) {
    throw new Error("the server did not answer (is tokneigh serve still running?)");
  }
  if (!response.ok) {
    const answer = await response.json().catch(() => null);
    throw new Error(answer && answer.error ? answer.error : `the server answered ${response.status}`);
  }
  const body = await response.arrayBuffer();
  if (body.byteLength !== facts.bytes) {
    throw new Error(`the map's arrays are ${body.byteLength} bytes, not ${facts.bytes}`);
  }
  const n = facts.count;
  const arrays = {};
  facts.arrays.forEach((spec, i) => {
    const Type = spec.dtype === "float32" ? Float32Array : Int32Array;
    arrays[spec.name] = new Type(body, 4 * n * i, n);
  });
  const largest = n ? Math.max(...arrays.ids.slice(-1), 0) : 0; // ids are ascending
  const indexOf = new Int32Array(largest + 1).fill(-1);
  arrays.ids.forEach((id, i) => { indexOf[id] = i; });
  const lowered = facts.tokens.map((t) => (t === null ? "" : t.toLowerCase()));
  return { facts, arrays, indexOf, lowered };
}

// --- colours ----------------------------------------------------------------------------------

/** Each point's colour under `field`, and the legend that explains it. */
function colourPoints(data, field) {
  const { arrays, facts } = data;
  const n = facts.count;
  const rgba = new Uint8Array(4 * n);
  const values = arrays[field];
  const spec = facts.colours.find((c) => c.name === field);
  let legend;
  if (spec.kind === "category") {
    for (let i = 0; i < n; i += 1) paint(rgba, i, CATEGORY_COLOURS[values[i] % 20]);
    legend = [`${facts.clusters.length} clusters (colours repeat after 20)`];
  } else if (spec.kind === "flag") {
    let count = 0;
    for (let i = 0; i < n; i += 1) {
      paint(rgba, i, values[i] ? [214, 39, 40] : [200, 205, 210]);
      count += values[i] ? 1 : 0;
    }
    legend = [`red: special tokens (${int(count)}); grey: the rest`];
  } else {
    const sorted = Float64Array.from(values).sort();
    for (let i = 0; i < n; i += 1) {
      paint(rgba, i, ramp(lowerBound(sorted, values[i]) / Math.max(1, n - 1)));
    }
    const at = (q) => sorted[Math.min(n - 1, Math.floor(q * (n - 1)))];
    legend = [`by percentile: dark ${fmt(at(0), 3)} · middle ${fmt(at(0.5), 3)} · `
      + `light ${fmt(at(1), 3)}`];
  }
  return { rgba, legend: `${spec.label}: ${legend[0]}` };
}

function paint(rgba, i, [r, g, b]) {
  rgba[4 * i] = r;
  rgba[4 * i + 1] = g;
  rgba[4 * i + 2] = b;
  rgba[4 * i + 3] = 255;
}

function ramp(t) {
  const at = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(at), RAMP.length - 2);
  const f = at - i;
  return [0, 1, 2].map((c) => Math.round(RAMP[i][c] + f * (RAMP[i + 1][c] - RAMP[i][c])));
}

function lowerBound(sorted, value) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// --- the URL's fields --------------------------------------------------------------------------

/** The camera from the URL's `cam` ("x,y,zoom": the centre in data units, zoom relative to
 * the whole map fitting), or null. */
function parseCamera(text) {
  const parts = (text || "").split(",").map(Number);
  if (parts.length !== 3 || !parts.every(Number.isFinite) || parts[2] <= 0) return null;
  return { cx: parts[0], cy: parts[1], zoom: parts[2] };
}

function cameraText(renderer) {
  const { cx, cy, scale } = renderer.camera;
  const zoom = scale / renderer.fitScale();
  return `${cx.toPrecision(5)},${cy.toPrecision(5)},${zoom.toPrecision(4)}`;
}

/** The camera as it is now, written into the URL in place (panning is not a history step). */
function storeCamera() {
  const fields = { ...memory.map, cam: cameraText(mapState.renderer) };
  memory.map = fields;
  history.replaceState(null, "", searchOf("map", fields, state.options));
}

// --- the view ------------------------------------------------------------------------------------

async function renderMapView(fields, gen, signal) {
  document.title = "map · tokneigh";
  $("#map-find").value = fields.find || "";
  const stage = $("#map-stage");
  if (health && health.map && health.map.points > health.map.max_points) {
    showError(`the map would hold ${int(health.map.points)} points; the page draws at most `
      + `${int(health.map.max_points)}`);
    stage.hidden = true;
    return;
  }
  let data;
  try {
    data = await loadMapData((facts) => {
      if (gen !== generation) return;
      const share = facts.total ? ` (${Math.round((100 * facts.done) / facts.total)}%)` : "";
      $("#map-summary").textContent = `computing the ${facts.method.toUpperCase()} map of `
        + `${int(facts.count)} tokens${share}… ${facts.seconds} s`;
    });
  } catch (err) {
    if (gen !== generation || err.name === "AbortError") return;
    showError(err.message);
    $("#map-summary").textContent = "No map: see the message above.";
    return;
  }
  if (gen !== generation) return;
  stage.hidden = false;
  if (!mapState.renderer) {
    try {
      startRenderer(data);
    } catch (err) {
      showError(err.message);
      return;
    }
  }
  const renderer = mapState.renderer;
  renderer.resize();
  fillColourSelect(data.facts);
  const colour = data.facts.colours.some((c) => c.name === fields.colour && c.available !== false)
    ? fields.colour : MAP_DEFAULT_COLOUR;
  $("#map-colour").value = colour;
  const camera = parseCamera(fields.cam);
  const fit = renderer.fitScale();
  renderer.camera = camera ? { cx: camera.cx, cy: camera.cy, scale: fit * camera.zoom }
    : { cx: (data.facts.bounds.x[0] + data.facts.bounds.x[1]) / 2,
      cy: (data.facts.bounds.y[0] + data.facts.bounds.y[1]) / 2, scale: fit };
  const shown = mapState.shown;
  if (shown.colour !== colour) {
    const { rgba, legend } = colourPoints(data, colour);
    renderer.setColours(rgba);
    $("#map-legend").textContent = legend;
    shown.colour = colour;
  }
  const matches = findMatches(data, fields.find || "");
  const selected = selectedIndex(data, fields.sel);
  summarize(data, fields, matches);
  mapState.neighbours = [];
  applyHighlight(data, matches, selected);
  paintMap();
  if (mapState.firstPaint === null) {
    renderer.finish();
    const navigation = performance.getEntriesByType("navigation")[0];
    mapState.firstPaint = performance.now() - (navigation ? navigation.responseEnd : 0);
    stage.dataset.firstPaint = mapState.firstPaint.toFixed(1);
  }
  stage.dataset.points = String(data.facts.count);
  stage.dataset.matches = String(matches.length);
  await showSelection(data, selected, matches, gen, signal);
}

function startRenderer(data) {
  const renderer = new PointMap($("#map-canvas"));
  renderer.bounds = data.facts.bounds;
  renderer.setPoints(data.arrays.x, data.arrays.y);
  mapState.renderer = renderer;
  mapState.data = data;
  wireMap(renderer);
}

function fillColourSelect(facts) {
  const select = $("#map-colour");
  if (select.options.length) return;
  select.replaceChildren(...facts.colours.map((c) => el("option", {
    value: c.name, disabled: c.available === false, title: c.why,
  }, c.available === false ? `${c.label} (not available)` : c.label)));
}

/** Indices of the tokens whose text holds `text` (case folded); none for no text. */
function findMatches(data, text) {
  if (!text) return [];
  const needle = text.toLowerCase();
  const found = [];
  data.lowered.forEach((token, i) => { if (token.includes(needle)) found.push(i); });
  return found;
}

function selectedIndex(data, sel) {
  const id = Number.parseInt(sel, 10);
  if (!Number.isInteger(id) || id < 0 || id >= data.indexOf.length) return -1;
  return data.indexOf[id];
}

function summarize(data, fields, matches) {
  const { facts } = data;
  const honesty = facts.honesty.mean === null ? "" : ` · honesty ${fmt(facts.honesty.mean, 3)} `
    + `(the share of each token's ${facts.honesty.k} nearest that stay near on the map)`;
  const parts = [`${int(facts.count)} tokens · ${facts.method.toUpperCase()} map under `
    + `${facts.metric}${honesty}`];
  if (fields.find) {
    parts.push(` · ${int(matches.length)} ${matches.length === 1 ? "token holds" : "tokens hold"} `
      + `${quoted(fields.find)}`);
  }
  $("#map-summary").textContent = parts.join("");
}

function applyHighlight(data, matches, selected) {
  const renderer = mapState.renderer;
  const lit = selected >= 0 ? [...mapState.neighbours, selected] : matches;
  renderer.setHighlight(lit, lit.length > 0);
  if (selected >= 0 && mapState.neighbours.length) renderer.setLines(selected, mapState.neighbours);
  else renderer.setLines(0, []);
}

/** The selected token's neighbour list beside the map, its neighbours lit and joined to it. */
async function showSelection(data, selected, matches, gen, signal) {
  const side = $("#map-neighbors");
  const heading = $("#map-selected");
  if (selected < 0) {
    delete $("#map-stage").dataset.selected;
    $("#map-stage").dataset.lines = "0";
    heading.replaceChildren("Click a point to see its nearest tokens.");
    side.replaceChildren();
    return;
  }
  const id = data.arrays.ids[selected];
  heading.replaceChildren(`#${id} `, el("span", { class: "tok" },
    visibleLabel(data.facts.tokens[selected])), " · ",
  el("a", { href: tokenHref(id), "data-nav": "", id: "map-open" }, "open in Neighbours"));
  let result;
  try {
    result = await fetchJSON("neighbors", apiParams({ q: `#${id}` }, "neighbors"), signal);
  } catch (err) {
    if (gen !== generation || err.name === "AbortError") return;
    showError(err.message);
    side.replaceChildren();
    return;
  }
  if (gen !== generation) return;
  side.replaceChildren(result.neighbors.length ? neighborTable(result.neighbors, result.metric)
    : el("p", { class: "empty" }, "No token passes the filters."));
  mapState.neighbours = result.neighbors.slice(0, MAP_NEIGHBOURS_MAX)
    .map((n) => (n.id < data.indexOf.length ? data.indexOf[n.id] : -1))
    .filter((i) => i >= 0);
  applyHighlight(data, matches, selected);
  paintMap();
  $("#map-stage").dataset.selected = String(id);
  $("#map-stage").dataset.lines = String(mapState.neighbours.length);
}

// --- drawing ---------------------------------------------------------------------------------

/** The points, then the labels on the 2-D canvas above them. */
function paintMap() {
  const renderer = mapState.renderer;
  if (!renderer) return;
  renderer.draw();
  drawLabels();
}

/** While the camera moves: the last drawing moved (map.js says why), the labels anew. */
function paintMoving() {
  mapState.renderer.drawMoving();
  drawLabels();
}

function drawLabels() {
  const renderer = mapState.renderer;
  const data = mapState.data;
  const canvas = $("#map-labels");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = renderer.canvas.width;
  canvas.height = renderer.canvas.height;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.lineJoin = "round";
  const placed = [];
  const selected = selectedIndex(data, memory.map.sel);
  const label = (text, x, y, font, colour) => {
    ctx.font = font;
    const width = ctx.measureText(text).width;
    const box = [x - width / 2 - 2, y - 14, x + width / 2 + 2, y + 4];
    if (placed.some((b) => b[0] < box[2] && box[0] < b[2] && b[1] < box[3] && box[1] < b[3])) {
      return;
    }
    placed.push(box);
    ctx.textAlign = "center";
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(255,255,255,0.9)";
    ctx.strokeText(text, x, y);
    ctx.fillStyle = colour;
    ctx.fillText(text, x, y);
  };
  // The hovered and selected tokens first: they win over cluster names where they overlap.
  if (mapState.hover >= 0 && mapState.hover !== selected) {
    const [x, y] = renderer.toScreen(data.arrays.x[mapState.hover], data.arrays.y[mapState.hover]);
    label(`${visibleLabel(data.facts.tokens[mapState.hover])} #${data.arrays.ids[mapState.hover]}`,
      x, y - 8, "600 13px system-ui, sans-serif", "#000");
  }
  if (selected >= 0) {
    const [x, y] = renderer.toScreen(data.arrays.x[selected], data.arrays.y[selected]);
    label(visibleLabel(data.facts.tokens[selected]), x, y - 8, "700 14px system-ui, sans-serif",
      "#d1242f");
    for (const i of mapState.neighbours.slice(0, 20)) {
      const [nx, ny] = renderer.toScreen(data.arrays.x[i], data.arrays.y[i]);
      label(visibleLabel(data.facts.tokens[i]), nx, ny - 7, "12px system-ui, sans-serif", "#222");
    }
  }
  const clusters = [...data.facts.clusters].sort((a, b) => b.size - a.size);
  for (const c of clusters) {
    const [x, y] = renderer.toScreen(c.x, c.y);
    if (x < 0 || y < 0 || x > renderer.canvas.clientWidth || y > renderer.canvas.clientHeight) {
      continue;
    }
    label(shortened(c.name, 36), x, y, "italic 12px system-ui, sans-serif", "#333");
  }
}

// --- events -------------------------------------------------------------------------------------

function wireMap(renderer) {
  const canvas = renderer.canvas;
  let drag = null; // { x, y, moved } of a pointer held down
  // What the next animation frame draws: 0 nothing, 1 the labels (hover), 2 the moving
  // picture, 3 everything. Asking for less than what is asked already changes nothing.
  let asked = 0;
  const PAINTS = [null, drawLabels, paintMoving, paintMap];
  const redraw = (what) => {
    if (asked === 0) {
      requestAnimationFrame(() => {
        const paint = PAINTS[asked];
        asked = 0;
        paint();
      });
    }
    asked = Math.max(asked, what);
  };
  let resting = null;
  const cameraMoved = () => {
    redraw(2);
    clearTimeout(resting);
    resting = setTimeout(() => { // the motion has stopped: the points again, the URL
      redraw(3);
      storeCamera();
    }, 150);
  };
  const offset = (event) => {
    const box = canvas.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  };
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [left, top] = offset(event);
    renderer.zoomAt(left, top, Math.exp(-event.deltaY * 0.002));
    cameraMoved();
  }, { passive: false });
  canvas.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, moved: false };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (drag) {
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (drag.moved || Math.abs(dx) + Math.abs(dy) > 3) {
        drag.moved = true;
        renderer.panBy(dx, dy);
        drag.x = event.clientX;
        drag.y = event.clientY;
        cameraMoved();
      }
      return;
    }
    const [left, top] = offset(event);
    const hover = renderer.nearest(left, top, 8);
    if (hover !== mapState.hover) {
      mapState.hover = hover;
      canvas.style.cursor = hover >= 0 ? "pointer" : "grab";
      const stage = $("#map-stage");
      if (hover >= 0) stage.dataset.hover = String(mapState.data.arrays.ids[hover]);
      else delete stage.dataset.hover;
      redraw(1);
    }
  });
  canvas.addEventListener("pointerup", (event) => {
    const click = drag && !drag.moved;
    drag = null;
    if (!click) return;
    const [left, top] = offset(event);
    const hit = renderer.nearest(left, top, 8);
    const sel = hit >= 0 ? String(mapState.data.arrays.ids[hit]) : "";
    navigate("map", { ...memory.map, sel, cam: cameraText(renderer) });
  });
  canvas.addEventListener("pointerleave", () => {
    if (mapState.hover >= 0) {
      mapState.hover = -1;
      delete $("#map-stage").dataset.hover;
      redraw(1);
    }
  });
  window.addEventListener("resize", () => {
    if (state.view === "map" && renderer.resize()) redraw(3);
  });
}

function wireMapControls() {
  $("#map-form").addEventListener("submit", (event) => {
    event.preventDefault();
    navigate("map", { ...memory.map, find: $("#map-find").value });
  });
  $("#map-colour").addEventListener("change", () => {
    const colour = $("#map-colour").value;
    navigate("map", { ...memory.map, colour: colour === MAP_DEFAULT_COLOUR ? "" : colour });
  });
  $("#map-reset").addEventListener("click", () => navigate("map", { ...memory.map, cam: "" }));
}

// For tests and benchmarks: where a token is drawn (page pixels), and timed redraws.
window.tokneighMap = {
  screenOf(id) {
    const { renderer, data } = mapState;
    const i = data.indexOf[id];
    const [x, y] = renderer.toScreen(data.arrays.x[i], data.arrays.y[i]);
    const box = renderer.canvas.getBoundingClientRect();
    return [box.left + x, box.top + y];
  },
  firstPaint: () => mapState.firstPaint,
  /** How many of the map's pixels are not the white background. */
  painted() {
    const { gl, canvas } = mapState.renderer;
    const pixels = new Uint8Array(4 * canvas.width * canvas.height);
    gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
    let count = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i] < 250 || pixels[i + 1] < 250 || pixels[i + 2] < 250) count += 1;
    }
    return count;
  },
  /** Milliseconds of each of `times` frames after a pan and a zoom, GPU work included:
   * what a drag or the wheel draws (`moving`), or the full drawing once they stop. */
  timeRedraws(times, moving = true) {
    const renderer = mapState.renderer;
    paintMap();
    const took = [];
    for (let i = 0; i < times; i += 1) {
      const start = performance.now();
      renderer.panBy(7, -5);
      renderer.zoomAt(renderer.canvas.clientWidth / 2, renderer.canvas.clientHeight / 2,
        i % 2 ? 1.1 : 1 / 1.1);
      if (moving) paintMoving();
      else paintMap();
      renderer.finish();
      took.push(performance.now() - start);
    }
    return took;
  },
};
