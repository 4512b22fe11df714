// The Evaluations panel: the runs `council eval` stored on this stick, one run's figures per
// system (a table, and a chart drawn here as inline SVG: accuracy with its 95% interval, and the
// tokens each system spent), the judges' biases, and the items a chosen system got wrong.
// The page only reads runs (GET /api/evals); the CLI makes them. A paired phone sees none.
import { api } from "/static/api.js";
import { $, el, errorLine, humanCount } from "/static/lib/dom.js";

const state = {
  open: false,
  runs: [], // GET /api/evals, newest first
  chosen: null, // the id of the run on show
  report: null, // GET /api/evals/{id} of that run
  system: "", // the system whose wrong answers are listed ("" for none)
  asked: 0, // counts the report requests: only the latest one's answer is shown
};

const { guarded } = errorLine("evals-error");

function status(text) {
  $("evals-status").textContent = text;
}

// ---- numbers, as `council eval show` prints them (council/evaluation/report.py) ---------------
// Python's format rounds a tie (62.5) to the even neighbour; so does this, so that a run reads
// the same here and in the terminal.
function wholePercent(value) {
  const scaled = 100 * value;
  const floor = Math.floor(scaled);
  const rest = scaled - floor;
  return rest > 0.5 || (rest === 0.5 && floor % 2 !== 0) ? floor + 1 : floor;
}

const percent = (value) => (value === null || value === undefined ? "–" : `${wholePercent(value)}%`);
const interval = (ci) => (ci ? `${wholePercent(ci[0])}–${wholePercent(ci[1])} %` : "–");
const seconds = (value) => `${Number(value).toFixed(1)} s`;
const when = (iso) => (iso ? `${iso.slice(0, 16).replace("T", " ")} UTC` : "");
const plural = (n, what) => `${n} ${what}${n === 1 ? "" : "s"}`;

// ---- the runs -------------------------------------------------------------------------------
const loadRuns = guarded(async () => {
  const { runs } = await api("GET", "/api/evals");
  state.runs = runs;
  renderRuns();
  $("evals-empty").hidden = runs.length > 0;
  if (!runs.length) {
    state.chosen = null;
    state.report = null;
    $("eval-report").hidden = true;
    return;
  }
  const known = runs.some((run) => run.id === state.chosen);
  await showRun(known ? state.chosen : runs[0].id); // the one on show, read again, or the newest
});

function renderRuns() {
  $("eval-runs").replaceChildren(...state.runs.map(runItem));
}

function runItem(run) {
  const answers = run.items * run.systems.length;
  const progress = run.status === "running" ? `, ${run.answers} of ${answers} answers` : "";
  return el(
    "li",
    {},
    el(
      "button",
      {
        type: "button",
        class: "eval-run",
        "data-run": run.id,
        "aria-pressed": String(run.id === state.chosen),
        onclick: () => guarded(showRun)(run.id),
      },
      el("span", { class: "eval-run-task", text: run.task }),
      el("span", { class: `tag eval-status status-${run.status}`, text: run.status }),
      el("span", { class: "eval-run-meta", text: `${plural(run.items, "item")}${progress} · ${when(run.created_at)}` }),
      el("span", { class: "eval-run-id", text: run.id }),
    ),
  );
}

// ---- one run --------------------------------------------------------------------------------
async function showRun(id) {
  const asked = ++state.asked;
  if (id !== state.chosen) state.system = ""; // another run's systems
  state.chosen = id;
  for (const button of $("eval-runs").querySelectorAll(".eval-run")) {
    button.setAttribute("aria-pressed", String(button.dataset.run === id));
  }
  status(`Reading run ${id}…`);
  let report;
  try {
    report = await api("GET", `/api/evals/${encodeURIComponent(id)}`);
  } catch (error) {
    if (asked === state.asked) throw error;
    return; // another run was chosen meanwhile
  } finally {
    if (asked === state.asked) status("");
  }
  if (asked !== state.asked) return;
  state.report = report;
  if (!report.results.some((row) => row.system === state.system)) state.system = "";
  renderReport();
}

function renderReport() {
  const report = state.report;
  $("eval-report").hidden = false;
  $("eval-report").dataset.run = report.run;
  $("eval-title").textContent = `${report.task} · run ${report.run}`;
  const spec = report.spec || {};
  const meta = [plural(report.items.length, "item"), report.status, `started ${when(report.created_at)}`];
  if (spec.seats?.length) meta.push(`seats ${spec.seats.join(", ")}`);
  if (spec.max_tokens) meta.push(`at most ${spec.max_tokens} tokens an answer`);
  $("eval-meta").textContent = meta.join(" · ");
  $("eval-chart").replaceChildren(chart(report));
  $("eval-table")
    .querySelector("tbody")
    .replaceChildren(...report.results.map(resultRow));
  renderBias(report.bias);
  const choice = $("eval-system");
  choice.replaceChildren(
    el("option", { value: "", text: "Choose a system" }),
    ...report.results.map((row) => el("option", { value: row.system, text: row.system })),
  );
  renderMisses();
}

function resultRow(row) {
  const chosen = row.system === state.system;
  return el(
    "tr",
    {
      "data-system": row.system,
      class: chosen ? "chosen" : null,
      title: `Show the items ${row.system} got wrong`,
      onclick: () => choose(row.system),
    },
    el(
      "th",
      { scope: "row" },
      el("button", {
        type: "button",
        class: "link system-button",
        text: row.system,
        "aria-pressed": String(chosen),
        "aria-label": `${row.system}: show the items it got wrong`,
      }),
    ),
    el("td", { class: "number", text: String(row.n) }),
    el("td", { class: "number", text: String(row.correct) }),
    el("td", { class: "number", text: percent(row.accuracy) }),
    el("td", { class: "number", text: interval(row.ci95) }),
    el("td", { class: "number", text: humanCount(row.tokens), title: `${row.tokens} tokens` }),
    el("td", { class: "number", text: seconds(row.wall_s) }),
  );
}

const rate = (figures, what) =>
  `${percent(figures.rate)} of ${figures.n} rankings put ${what} first (chance ${percent(figures.chance)})`;

function renderBias(bias) {
  const position = bias.position;
  $("eval-bias").textContent = position.n
    ? `Position bias: ${rate(position, "the first-shown answer")}.`
    : "Position bias: no rankings in this run (only synthesize's reviewers rank answers).";
  const own = bias.self_preference; // only where reviewers saw their own answers (exclude_self off)
  $("eval-self").hidden = !own;
  if (!own) $("eval-self").textContent = "";
  else if (!own.n) $("eval-self").textContent = "Self-preference: no ranking saw the reviewer's own answer.";
  else $("eval-self").textContent = `Self-preference: ${rate(own, "the reviewer's own answer")}.`;
}

// ---- the chart: inline SVG, no library ------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child) node.append(child); // a string is appended as text
  }
  return node;
}

// Two panels side by side, one row per system: accuracy (0 to 100%) with the 95% interval as a
// whisker, and the tokens the system spent, scaled to the most any system spent.
const LAYOUT = {
  width: 720,
  label: 150, // the systems' names end here
  accX: 162,
  accW: 330,
  tokX: 540,
  tokW: 130,
  top: 30,
  row: 34,
  bottom: 34,
};

function chart(report) {
  const { width, label, accX, accW, tokX, tokW, top, row, bottom } = LAYOUT;
  const rows = report.results;
  const height = top + rows.length * row + bottom;
  const most = Math.max(0, ...rows.map((r) => r.tokens));
  const tokenScale = most > 0 ? tokW / most : 0;
  const accAt = (value) => accX + value * accW;
  const tokAt = (value) => tokX + value * tokenScale;
  const plotBottom = top + rows.length * row;
  const id = `chart-${report.run}`;

  const described = rows
    .map((r) =>
      r.accuracy === null
        ? `${r.system}: no answers yet`
        : `${r.system}: ${percent(r.accuracy)} correct (95% CI ${interval(r.ci95)}), ${humanCount(r.tokens)} tokens`,
    )
    .join("; ");

  const accTicks = [0, 0.25, 0.5, 0.75, 1].map((value) =>
    svg(
      "g",
      { class: "tick" },
      svg("line", { class: "grid", x1: accAt(value), x2: accAt(value), y1: top - 4, y2: plotBottom }),
      svg("text", { x: accAt(value), y: plotBottom + 14, "text-anchor": "middle", text: percent(value) }),
    ),
  );
  const tokenTicks = (most > 0 ? [0, most / 2, most] : [0]).map((value) =>
    svg(
      "g",
      { class: "tick" },
      svg("line", { class: "grid", x1: tokAt(value), x2: tokAt(value), y1: top - 4, y2: plotBottom }),
      svg("text", {
        x: tokAt(value),
        y: plotBottom + 14,
        "text-anchor": "middle",
        text: humanCount(Math.round(value)),
      }),
    ),
  );

  const systemRows = rows.map((r, index) => {
    const y = top + index * row;
    const middle = y + row / 2;
    const name = r.system.length > 21 ? `${r.system.slice(0, 20)}…` : r.system; // the table has it whole
    const parts = [
      svg(
        "text",
        { class: "system-name", x: label, y: middle + 4, "text-anchor": "end" },
        svg("title", { text: r.system }),
        name,
      ),
    ];
    if (r.accuracy === null) {
      parts.push(svg("text", { class: "no-answers", x: accX + 4, y: middle + 4, text: "no answers yet" }));
    } else {
      parts.push(
        svg("rect", {
          class: "acc-bar",
          x: accX,
          y: middle - 8,
          width: r.accuracy * accW,
          height: 16,
          "data-system": r.system,
          "data-accuracy": r.accuracy,
        }),
      );
      let end = accAt(r.accuracy);
      if (r.ci95) {
        const [low, high] = r.ci95.map(accAt);
        end = Math.max(end, high);
        parts.push(
          svg(
            "g",
            { class: "ci-whisker", "data-system": r.system, "data-low": r.ci95[0], "data-high": r.ci95[1] },
            svg("line", { class: "ci-span", x1: low, x2: high, y1: middle, y2: middle }),
            svg("line", { x1: low, x2: low, y1: middle - 6, y2: middle + 6 }),
            svg("line", { x1: high, x2: high, y1: middle - 6, y2: middle + 6 }),
          ),
        );
      }
      parts.push(svg("text", { class: "value", x: end + 6, y: middle + 4, text: percent(r.accuracy) }));
    }
    const tokEnd = tokAt(r.tokens);
    parts.push(
      svg("rect", {
        class: "tok-bar",
        x: tokX,
        y: middle - 2,
        width: r.tokens * tokenScale,
        height: 4,
        "data-system": r.system,
        "data-tokens": r.tokens,
      }),
      svg("circle", { class: "tok-dot", cx: tokEnd, cy: middle, r: 4.5 }),
      svg("text", { class: "value", x: tokEnd + 8, y: middle + 4, text: humanCount(r.tokens) }),
    );
    return svg("g", { class: "chart-row", "data-system": r.system }, ...parts);
  });

  return svg(
    "svg",
    {
      class: "eval-svg",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": `${id}-title ${id}-desc`,
      "data-acc-x": accX,
      "data-acc-width": accW,
      "data-tok-x": tokX,
      "data-tok-width": tokW,
    },
    svg("title", { id: `${id}-title`, text: `Accuracy and tokens by system, run ${report.run}` }),
    svg("desc", { id: `${id}-desc`, text: `${described}.` }),
    svg("text", { class: "axis-title", x: accX, y: 14, text: "Accuracy, with its 95% interval" }),
    svg("text", { class: "axis-title", x: tokX, y: 14, text: "Tokens spent" }),
    svg("g", { class: "axis axis-accuracy" }, ...accTicks),
    svg("g", { class: "axis axis-tokens" }, ...tokenTicks),
    svg("line", { class: "axis-line", x1: accX, x2: accX + accW, y1: plotBottom, y2: plotBottom }),
    svg("line", { class: "axis-line", x1: tokX, x2: tokX + tokW, y1: plotBottom, y2: plotBottom }),
    ...systemRows,
  );
}

// ---- what a system got wrong ----------------------------------------------------------------
function choose(system) {
  state.system = system;
  $("eval-system").value = system;
  for (const row of $("eval-table").querySelectorAll("tbody tr")) {
    const chosen = row.dataset.system === system;
    row.classList.toggle("chosen", chosen);
    row.querySelector(".system-button").setAttribute("aria-pressed", String(chosen));
  }
  renderMisses();
}

function renderMisses() {
  const system = state.system;
  $("eval-system").value = system;
  const list = $("eval-missed");
  if (!system) {
    $("eval-misses-summary").textContent = "Choose a system, in the table or here, to see the items it got wrong.";
    list.replaceChildren();
    return;
  }
  const items = state.report.items;
  const answered = items.filter((item) => item.answers[system]);
  const wrong = answered.filter((item) => !item.answers[system].correct);
  const unanswered = items.length - answered.length;
  const summary = [`${system} got ${wrong.length} of ${answered.length} answered items wrong`];
  if (unanswered) summary.push(`${plural(unanswered, "item")} not answered yet`);
  $("eval-misses-summary").textContent = `${summary.join("; ")}.`;
  list.replaceChildren(...wrong.map((item) => missItem(item, item.answers[system])));
}

function missItem(item, answer) {
  const partial = answer.score > 0 && answer.score < 1 ? ` (score ${answer.score})` : "";
  return el(
    "li",
    { class: "miss", "data-item": String(item.id) },
    el(
      "p",
      { class: "miss-question" },
      el("span", { class: "miss-number", text: `Item ${item.id + 1}` }), // ids count from 0
      " ",
      item.question,
    ),
    el(
      "dl",
      { class: "miss-answers" },
      el("dt", { text: "Gold" }),
      el("dd", { class: "miss-gold", text: item.gold }),
      el("dt", { text: "Answered" }),
      answer.extracted === null || answer.extracted === undefined
        ? el("dd", { class: "miss-extracted none", text: `nothing could be read from the answer${partial}` })
        : el("dd", { class: "miss-extracted", text: `${answer.extracted}${partial}` }),
    ),
    el(
      "details",
      { class: "miss-raw" },
      el("summary", { text: "Raw answer" }),
      answer.raw === null || answer.raw === undefined
        ? el("p", { class: "hint", text: "no answer: the call failed" })
        : el("pre", { text: answer.raw }),
    ),
  );
}

// ---- the panel ------------------------------------------------------------------------------
export function openEvals() {
  const panel = $("evals-panel");
  if (!panel.hidden) return;
  panel.hidden = false;
  state.open = true;
  $("show-evals").setAttribute("aria-expanded", "true");
  $("evals-title").focus();
  loadRuns(); // read again each time: the CLI may have made a run meanwhile
}

export function closeEvals({ focus = true } = {}) {
  const panel = $("evals-panel");
  if (panel.hidden) return;
  panel.hidden = true;
  state.open = false;
  $("show-evals").setAttribute("aria-expanded", "false");
  if (focus) $("show-evals").focus();
}

export function wireEvals() {
  $("show-evals").setAttribute("aria-expanded", "false");
  $("close-evals").addEventListener("click", () => closeEvals());
  $("evals-panel").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeEvals();
  });
  $("refresh-evals").addEventListener("click", loadRuns);
  $("eval-system").addEventListener("change", (event) => choose(event.currentTarget.value));
}
