// Two models (`tokneigh serve --against B`): B's neighbour column beside A's, the tokens both
// lists hold linked across (hover one: its counterpart lights up), the query's drift, and the
// Drift view (the most-moved tokens, a page at a time). Uses app.js's helpers; every state is
// in the URL as app.js keeps it (the Drift view's page is `offset`).
"use strict";

const DRIFT_PAGE = 50;

/** Show the Drift tab and the column headings when the server serves two models. */
function startPair() {
  if (!health || !health.against) return;
  $("#tab-drift").hidden = false;
  $("#neighbors-a-heading").textContent = `A · ${modelLabel(health.model)}`;
  $("#neighbors-a-heading").hidden = false;
  $("#neighbors-b-heading").textContent = `B · ${modelLabel(health.against.model)}`;
  $("#model-info").textContent += ` · against ${modelLabel(health.against.model)} `
    + `(${int(health.against.vocab_size)} tokens, ${int(health.against.matched)} matched)`;
}

function clearPair() {
  $("#pair-col").hidden = true;
  $("#neighbors-b").replaceChildren();
}

/** A link that asks A for a token of B by its text: B's ids are not A's, and the text is what
 * both models share (a leading `#` is escaped, so "#" is the text, not an id). */
function textHref(text) {
  return searchOf("neighbors", { q: /^\\*#/.test(text) ? "\\" + text : text }, state.options);
}

/** B's column for a /api/pair/neighbors answer, and the links between the two lists. */
function renderPair(answer, gen) {
  const column = $("#neighbors-b");
  $("#pair-col").hidden = false;
  if (!answer.b) {
    column.replaceChildren(el("p", { class: "empty" }, `No list in B: ${answer.b_error}.`));
  } else if (!answer.b.neighbors.length) {
    column.replaceChildren(el("p", { class: "empty" }, "No token of B passes the filters."));
  } else {
    const table = neighborTable(answer.b.neighbors, answer.b.metric);
    for (const row of table.querySelectorAll("tr.neighbor")) {
      const n = answer.b.neighbors.find((m) => String(m.id) === row.dataset.id);
      for (const link of row.querySelectorAll("a.token-link")) {
        if (n && n.token !== null) link.setAttribute("href", textHref(n.token));
        else link.removeAttribute("href");
      }
      for (const link of row.querySelectorAll("a.variant-link")) link.remove();
    }
    column.replaceChildren(table);
  }
  for (const { a, b } of answer.shared) linkShared(a, b);
  const shared = answer.shared.length;
  const pieces = [`${shared} of A's ${answer.a.neighbors.length} neighbours are in B's list`];
  const drift = answer.drift;
  if (drift && drift.status === "ready") {
    pieces.push(` · the query moved ${fmt(drift.drift)} (1 − cos), rank ${int(drift.rank)} `
      + `of ${int(drift.of)}`);
  } else if (drift && drift.status === "computing") {
    pieces.push(" · the drift is being computed…");
    waitForAlignment(gen);
  } else if (drift && drift.status === "failed") {
    pieces.push(` · no drift: ${drift.error}`);
  }
  $("#pair-drift").textContent = pieces.join("");
}

/** Mark a token of A's list and its counterpart in B's: hovering or focusing either lights
 * both. */
function linkShared(a, b) {
  const rowA = $(`#neighbors tr.neighbor[data-id="${a}"]`);
  const rowB = $(`#neighbors-b tr.neighbor[data-id="${b}"]`);
  if (!rowA || !rowB) return;
  for (const [row, other] of [[rowA, rowB], [rowB, rowA]]) {
    row.classList.add("shared");
    row.dataset.partner = other.dataset.id;
    const on = () => { row.classList.add("linked"); other.classList.add("linked"); };
    const off = () => { row.classList.remove("linked"); other.classList.remove("linked"); };
    row.addEventListener("mouseenter", on);
    row.addEventListener("mouseleave", off);
    row.addEventListener("focusin", on);
    row.addEventListener("focusout", off);
  }
}

/** Poll until the alignment is done, then draw the current view again (if it still is). */
async function waitForAlignment(gen) {
  for (;;) {
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
    if (gen !== generation) return;
    try {
      const answer = await fetchJSON("drift", new URLSearchParams({ top: "0" }));
      if (answer.status !== "computing") break;
    } catch (err) {
      break; // the view shows the failure when drawn again
    }
  }
  if (gen === generation) render();
}

async function renderDriftView(fields, gen, signal) {
  const result = $("#drift-result");
  document.title = "drift · tokneigh";
  if (!health || !health.against) {
    result.replaceChildren();
    setSummary("drift", "This server serves one model: start it with --against B.");
    return;
  }
  const offset = Math.max(0, Number.parseInt(fields.offset, 10) || 0);
  const params = new URLSearchParams({ top: String(DRIFT_PAGE), offset: String(offset) });
  let answer = null;
  for (;;) {
    const answers = await settle(gen, result, [fetchJSON("drift", params, signal)]);
    if (answers === null) return;
    if (answers === "failed") { result.replaceChildren(); return; }
    answer = answers[0];
    if (answer.status !== "computing") break;
    setSummary("drift", `aligning A to B (${fmt(answer.seconds, 1)} s so far)…`);
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
    if (gen !== generation) return;
  }
  const shown = answer.rows.length;
  setSummary("drift", `Tokens ${int(offset + 1)}–${int(offset + shown)} of ${int(answer.total)} `
    + "matched tokens, most moved first (1 − cos of A's vector mapped to B's space and B's) · "
    + `held-out P@1 ${fmt(answer.retrieval.nn["p@1"])}`);
  const rows = answer.rows.map((r) => el("tr", { class: "drift-row", "data-id": String(r.id_a) },
    el("td", { class: "rank num" }, String(r.rank)),
    el("td", { class: "token" }, el("a", {
      class: "token-link", href: tokenHref(r.id_a), "data-nav": "", title: r.label_a,
    }, tokenText(r.token))),
    el("td", { class: "id num" }, String(r.id_a)),
    el("td", { class: "id num" }, String(r.id_b)),
    el("td", { class: "num value" }, fmt(r.drift))));
  result.replaceChildren(el("table", { class: "neighbor-table drift-table" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", class: "num" }, "rank"),
      el("th", { scope: "col" }, "token"),
      el("th", { scope: "col", class: "num" }, "id A"),
      el("th", { scope: "col", class: "num" }, "id B"),
      el("th", { scope: "col", class: "num" }, "1 − cos"))),
    el("tbody", {}, rows)));
  const pageLink = (id, to, show) => {
    const a = $(id);
    a.hidden = !show;
    a.setAttribute("href", searchOf("drift", { offset: to ? String(to) : "" }, state.options));
  };
  pageLink("#drift-prev", Math.max(0, offset - DRIFT_PAGE), offset > 0);
  pageLink("#drift-next", offset + DRIFT_PAGE, offset + shown < answer.total);
}
