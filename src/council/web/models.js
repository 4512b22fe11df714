// The Models panel: search Hugging Face for GGUF models, see which of a repository's files fit
// this laptop, pull one (watched over server-sent events), cancel it, seat what was pulled.
// Its routes exist on the laptop's own listener only: a paired phone never fills the stick.
import { api } from "/static/api.js";
import { $, el, errorLine, humanCount, humanSize } from "/static/lib/dom.js";

const ACTIVE = new Set(["queued", "running"]);
const ARMED_MS = 6000; // how long "Pull anyway" waits for its second press
const state = {
  open: false,
  stream: null, // the one EventSource on /api/pulls/events, while the panel is open or a pull runs
  jobs: [], // the pulls as the last snapshot listed them, oldest first
  rows: new Map(), // job id -> its <li> in the Pulls list, updated in place
  plan: null, // GET /api/hf/files of the repository on show
  asked: 0, // counts the file-table requests: only the latest one's answer is shown
  seated: new Map(), // job id -> the seat's name, once "Seat it" worked
  watched: false, // whether the page has looked for pulls already running
  seat: null, // app.js's way of adding a seat (posts it, then shows the seats again)
};

// ---- numbers, as the CLI prints them (council/units.py) -----------------------------------
const size = humanSize;
const count = humanCount;

const counted = (n, what) => (n === null || n === undefined ? null : `${count(n)} ${what}${n === 1 ? "" : "s"}`);

function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// ---- errors: in the panel, never as an unhandled rejection --------------------------------
const { show: showError, guarded } = errorLine("models-error");

function status(text) {
  $("hf-status").textContent = text;
}

// ---- searching ----------------------------------------------------------------------------
const search = guarded(async (event) => {
  event.preventDefault();
  const query = $("hf-query").value.trim();
  if (!query) return;
  $("hf-repos").replaceChildren();
  status(`Searching for “${query}”…`);
  let repos;
  try {
    ({ repos } = await api("GET", `/api/hf/search?q=${encodeURIComponent(query)}`));
  } finally {
    status("");
  }
  $("hf-repos").replaceChildren(...repos.map(repoItem));
  if (!repos.length) status(`No repository with GGUF files matches “${query}”.`);
});

function repoItem(repo) {
  const meta = [counted(repo.downloads, "download"), counted(repo.likes, "like")].filter(Boolean);
  return el(
    "li",
    {},
    el(
      "button",
      {
        type: "button",
        class: "repo",
        "data-repo": repo.repo,
        "aria-pressed": String(repo.repo === state.plan?.repo),
        onclick: () => showFiles(repo.repo),
      },
      el("span", { class: "repo-name", text: repo.repo }),
      repo.gated
        ? el("span", { class: "tag gated", text: "gated", title: "Pulling it needs an HF_TOKEN with access" })
        : null,
      el("span", { class: "repo-meta", text: meta.join(" · ") }),
    ),
  );
}

// ---- a repository's files -----------------------------------------------------------------
const showFiles = guarded(async (repo) => {
  const asked = ++state.asked;
  for (const button of $("hf-repos").querySelectorAll(".repo")) {
    button.setAttribute("aria-pressed", String(button.dataset.repo === repo));
  }
  state.plan = null;
  $("hf-files").hidden = true; // the table on show was another repository's
  status(`Reading the files of ${repo}…`);
  let plan;
  try {
    plan = await api("GET", `/api/hf/files?repo=${encodeURIComponent(repo)}`);
  } catch (error) {
    if (asked === state.asked) throw error;
    return; // another repository was chosen meanwhile
  } finally {
    if (asked === state.asked) status("");
  }
  if (asked !== state.asked) return;
  state.plan = plan;
  renderFiles();
});

function renderFiles() {
  const plan = state.plan;
  $("hf-files").hidden = false;
  $("hf-files-title").textContent = `${plan.repo} at ${plan.revision} (${plan.commit.slice(0, 7)})`;
  $("hf-available").replaceChildren(
    `Memory available here: ${size(plan.available)}. `,
    ...(plan.chosen
      ? ["Suggested: ", el("strong", { text: plan.chosen }), ", the largest that fits."]
      : ["Nothing here fits in that: a pull of any of these needs a second press."]),
  );
  $("hf-files-table")
    .querySelector("tbody")
    .replaceChildren(...plan.candidates.map((candidate) => fileRow(plan, candidate)));
  syncPullButtons();
}

function fileRow(plan, candidate) {
  const chosen = candidate.name === plan.chosen;
  const parts = candidate.files.length;
  return el(
    "tr",
    {
      "data-file": candidate.name,
      "data-fit": candidate.fit.replace(" ", "-"),
      "data-chosen": chosen ? "true" : null,
      class: chosen ? "chosen" : null,
    },
    el(
      "th",
      { scope: "row", class: "file-name" },
      candidate.name,
      chosen ? " " : null,
      chosen ? el("span", { class: "tag suggested", text: "suggested" }) : null,
      parts > 1 ? el("span", { class: "reason", text: `${parts} parts, pulled together` }) : null,
    ),
    el("td", { text: candidate.quant || "–" }),
    el("td", { class: "number", text: size(candidate.size) }),
    el("td", {
      class: "number",
      text: size(candidate.memory),
      title: candidate.memory === null ? "the model's header could not be read" : null,
    }),
    el("td", {}, el("span", { class: `fit fit-${candidate.fit.replace(" ", "-")}`, text: candidate.fit })),
    el(
      "td",
      { class: "row-actions" },
      el("button", {
        type: "button",
        class: "pull-button",
        "data-file": candidate.name,
        text: "Pull",
        "aria-label": `Pull ${candidate.name}`,
        onclick: (event) => pullFile(plan, candidate, event.currentTarget),
      }),
    ),
  );
}

// A file that is too big for this laptop is pulled on a second press, "Pull anyway", within a
// few seconds: for a machine with more memory. That pull says force, or the hub refuses it.
const armed = new WeakMap();

function arm(button, candidate) {
  button.textContent = "Pull anyway";
  button.classList.add("danger");
  button.setAttribute("aria-label", `Pull ${candidate.name} anyway: it needs more memory than is available here`);
  armed.set(
    button,
    setTimeout(() => disarm(button, candidate), ARMED_MS),
  );
}

function disarm(button, candidate) {
  clearTimeout(armed.get(button));
  armed.delete(button);
  button.textContent = unavailable(button) ? "Pulling…" : "Pull";
  button.classList.remove("danger");
  button.setAttribute("aria-label", `Pull ${candidate.name}`);
}

// Buttons that cannot be pressed now say so with aria-disabled: a disabled button would drop the
// keyboard's focus to the page.
const unavailable = (button) => button.getAttribute("aria-disabled") === "true";

function setAvailable(button, available) {
  if (available) button.removeAttribute("aria-disabled");
  else button.setAttribute("aria-disabled", "true");
}

const pullFile = guarded(async (plan, candidate, button) => {
  if (unavailable(button)) return;
  const force = candidate.fit === "too big";
  if (force && !armed.has(button)) return arm(button, candidate);
  if (force) disarm(button, candidate);
  const body = { repo: plan.repo, file: candidate.name, revision: plan.revision };
  if (force) body.force = true;
  setAvailable(button, false); // until the job's snapshot says what became of it
  try {
    const job = await api("POST", "/api/pulls", body);
    if (!state.jobs.some((known) => known.id === job.id)) state.jobs = [...state.jobs, job];
  } finally {
    renderPulls();
  }
});

// A file with a pull queued or running has no Pull button to press again (it would be that pull).
function syncPullButtons() {
  if (!state.plan) return;
  for (const button of $("hf-files-table").querySelectorAll(".pull-button")) {
    const file = button.dataset.file;
    const busy = state.jobs.some(
      (job) => ACTIVE.has(job.state) && job.repo === state.plan.repo && (job.file === file || job.name === file),
    );
    setAvailable(button, !busy);
    if (!armed.has(button)) button.textContent = busy ? "Pulling…" : "Pull";
  }
}

// ---- the pulls ----------------------------------------------------------------------------
// One event stream while the panel is open or a pull is active (the button's badge shows its
// progress); EventSource reconnects by itself after a dropped connection.
function syncStream() {
  const wanted = state.open || state.jobs.some((job) => ACTIVE.has(job.state));
  if (wanted && !state.stream) {
    const stream = new EventSource("/api/pulls/events");
    stream.addEventListener("pulls", (event) => {
      state.jobs = JSON.parse(event.data).pulls;
      renderPulls();
    });
    stream.addEventListener("error", () => {
      if (stream.readyState !== EventSource.CLOSED) return; // reconnecting on its own
      state.stream = null; // refused (the hub restarted, say): opening the panel tries again
      showError("The hub stopped sending the pulls' progress.");
      renderBadge();
    });
    state.stream = stream;
  } else if (!wanted && state.stream) {
    state.stream.close();
    state.stream = null;
  }
}

function renderPulls() {
  const jobs = [...state.jobs].reverse(); // the newest first
  const list = $("pulls");
  const listed = new Set(jobs.map((job) => job.id));
  for (const [id, row] of state.rows) {
    if (listed.has(id)) continue;
    row.remove();
    state.rows.delete(id);
  }
  jobs.forEach((job, index) => {
    let row = state.rows.get(job.id);
    if (!row) {
      row = pullRow();
      state.rows.set(job.id, row);
    }
    updatePullRow(row, job);
    if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
  });
  $("pulls-empty").hidden = jobs.length > 0;
  syncPullButtons();
  renderBadge();
  syncStream();
}

function pullRow() {
  return el(
    "li",
    { class: "pull", tabindex: "-1" },
    el("div", { class: "pull-head" }, el("span", { class: "pull-what" }), el("span", { class: "pull-state" })),
    el("progress", { class: "pull-progress" }),
    el("p", { class: "pull-numbers" }),
    el("p", { class: "pull-error", hidden: true }),
    el("div", { class: "pull-actions" }),
  );
}

// Each pull's row is updated in place, several times a second while it runs, so that a button
// is never swapped for another under the pointer; its buttons change only with its state.
function updatePullRow(row, job) {
  const file = job.name || job.file || "the suggested file";
  row.dataset.pull = job.id;
  row.dataset.state = job.state;
  row.querySelector(".pull-what").replaceChildren(el("strong", { text: file }), ` from ${job.repo}`);
  row.querySelector(".pull-state").textContent = job.state;
  const bar = row.querySelector("progress");
  bar.setAttribute("aria-label", `Pull of ${file}`);
  if (job.total > 0) {
    bar.max = job.total;
    bar.value = job.state === "done" ? job.total : job.done;
  } else if (job.state === "queued" || job.state === "running") {
    bar.removeAttribute("value"); // the size is not known yet: an indeterminate bar
  } else {
    bar.value = 0;
  }
  row.querySelector(".pull-numbers").textContent = numbers(job);
  const error = row.querySelector(".pull-error");
  const shown = job.error && (job.state === "failed" || job.error !== "cancelled") ? job.error : "";
  error.hidden = !shown;
  error.textContent = shown;
  const key = `${job.state}|${state.seated.get(job.id) || ""}`;
  if (row.dataset.actions !== key) {
    row.dataset.actions = key;
    const place = row.querySelector(".pull-actions");
    const focused = place.contains(document.activeElement);
    place.replaceChildren(...actions(job, file));
    if (focused) (place.querySelector("button") || row).focus(); // not lost to the page
  }
}

function numbers(job) {
  if (job.state === "done") {
    const resumed = job.resumed_from > 0 ? `, resumed at ${size(job.resumed_from)}` : "";
    return `${size(job.total)} on the stick: models/${job.model}${resumed}`;
  }
  if (job.state === "queued") return "waiting: one pull at a time";
  if (!job.total) return job.state === "running" ? "reading the repository…" : "";
  const parts = [`${size(job.done)} of ${size(job.total)}`];
  if (job.state === "running" && job.rate > 0) parts.push(`${size(job.rate)}/s`);
  if (job.state === "running" && job.eta !== null) parts.push(`${duration(job.eta)} left`);
  return parts.join(" · ");
}

function actions(job, file) {
  if (ACTIVE.has(job.state)) {
    return [
      el("button", {
        type: "button",
        class: "danger",
        text: "Cancel",
        "aria-label": `Cancel the pull of ${file}`,
        onclick: (event) => cancel(job, event.currentTarget),
      }),
    ];
  }
  const wanted = job.file || job.name;
  if (job.state === "failed" && wanted && job.needs_force) {
    // Too big for this laptop after all (the table said otherwise when it was read, or the pull
    // came from elsewhere): the CLI's --force is this button.
    return [
      el("button", {
        type: "button",
        class: "danger",
        text: "Pull anyway",
        "aria-label": `Pull ${file} anyway`,
        onclick: (event) => pullAnyway(job, wanted, event.currentTarget),
      }),
    ];
  }
  if (job.state !== "done") return [];
  const seat = state.seated.get(job.id);
  return [
    el("button", {
      type: "button",
      class: seat ? "seated" : "primary",
      text: seat ? `Seated as ${seat}` : "Seat it",
      "aria-disabled": seat ? "true" : null,
      "aria-label": seat ? null : `Seat ${file}`,
      onclick: (event) => seatIt(job, event.currentTarget),
    }),
  ];
}

const pullAnyway = guarded(async (job, file, button) => {
  if (unavailable(button)) return;
  setAvailable(button, false);
  try {
    const again = await api("POST", "/api/pulls", { repo: job.repo, file, revision: job.revision, force: true });
    if (!state.jobs.some((known) => known.id === again.id)) state.jobs = [...state.jobs, again];
  } catch (error) {
    setAvailable(button, true);
    throw error;
  }
  renderPulls();
});

const cancel = guarded(async (job, button) => {
  if (unavailable(button)) return;
  setAvailable(button, false); // the snapshot that says "cancelled" takes the button away
  try {
    await api("DELETE", `/api/pulls/${encodeURIComponent(job.id)}`);
  } catch (error) {
    setAvailable(button, true);
    throw error;
  }
});

// The Seats panel's own way of adding a seat: its engine starts at once, the seats show it.
const seatIt = guarded(async (job, button) => {
  if (unavailable(button)) return;
  setAvailable(button, false);
  button.textContent = "Seating…";
  try {
    const added = await state.seat({ kind: "local", model: job.model });
    state.seated.set(job.id, added.name);
  } catch (error) {
    setAvailable(button, true);
    button.textContent = "Seat it";
    throw error;
  }
  const row = state.rows.get(job.id);
  const latest = state.jobs.find((known) => known.id === job.id);
  if (row && latest) updatePullRow(row, latest);
});

// The header button carries the running pull's progress while the panel is closed.
function renderBadge() {
  const running = state.jobs.find((job) => job.state === "running");
  const active = running || state.jobs.find((job) => job.state === "queued");
  const badge = $("models-badge");
  badge.hidden = !active || !state.stream;
  badge.textContent = running?.total ? `${Math.floor((100 * running.done) / running.total)}%` : "…";
}

// ---- the panel ----------------------------------------------------------------------------
export function openModels() {
  const panel = $("models-panel");
  if (!panel.hidden) return;
  panel.hidden = false;
  state.open = true;
  $("show-models").setAttribute("aria-expanded", "true");
  $("hf-query").focus();
  syncStream();
}

export function closeModels({ focus = true } = {}) {
  const panel = $("models-panel");
  if (panel.hidden) return;
  panel.hidden = true;
  state.open = false;
  $("show-models").setAttribute("aria-expanded", "false");
  syncStream(); // goes on only while a pull is active
  if (focus) $("show-models").focus();
}

// Once the page knows it is the owner's: a pull the hub resumed at its start, or one another
// tab began, is followed from the start (the button's badge).
export function watchPulls() {
  if (state.watched) return;
  state.watched = true;
  loadPulls();
}

const loadPulls = guarded(async () => {
  const { pulls } = await api("GET", "/api/pulls");
  if (!state.stream) state.jobs = pulls; // else its snapshots are as new or newer
  renderPulls();
});

export function wireModels({ seat }) {
  state.seat = seat;
  $("show-models").setAttribute("aria-expanded", "false");
  $("close-models").addEventListener("click", () => closeModels());
  $("models-panel").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeModels();
  });
  $("hf-search").addEventListener("submit", search);
}
