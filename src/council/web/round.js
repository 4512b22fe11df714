// One council round on the page: built live from its events, or replayed from the store.
import { el, formatNumber } from "/static/lib/dom.js";
import { setMarkdown } from "/static/markdown.js";

const STAGE_TITLES = { answer: "Answers", review: "Reviews", chair: "Final answer" };

// The answer's own text (Markdown as the model wrote it), not the page's HTML of it. Without the
// clipboard API (a page on plain HTTP from another machine) or its permission, the old way.
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el("textarea", { class: "visually-hidden", readonly: true, "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    return copied;
  }
}

// "Copy", then "Copied" (or why not) for two seconds, where the person is looking.
function copyButton(what, text) {
  const button = el("button", { type: "button", class: "copy", "aria-label": `Copy ${what}`, text: "Copy" });
  button.addEventListener("click", async () => {
    const copied = await copyText(text());
    button.textContent = copied ? "Copied" : "Copy failed";
    button.setAttribute("aria-label", `${copied ? "Copied" : "Could not copy"} ${what}`);
    setTimeout(() => {
      button.textContent = "Copy";
      button.setAttribute("aria-label", `Copy ${what}`);
    }, 2000);
  });
  return button;
}

// A long answer, once its round is over, shows its first lines and a button for the rest: never
// a box of its own to scroll, which cuts it off mid-sentence. While it is written it is whole.
class Fold {
  constructor(body, noun) {
    this.body = body;
    this.noun = noun;
    this.folded = false;
    this.box = el("div", { class: "fold", id: `fold-${Math.random().toString(36).slice(2)}` }, body);
    this.toggle = el("button", {
      type: "button",
      class: "link fold-toggle",
      "aria-controls": this.box.id,
      hidden: true,
      onclick: () => this.set(!this.folded),
    });
    // The text's height changes with its width too (a turned phone): measured whenever it does.
    new ResizeObserver(() => this.measure()).observe(body);
  }

  set(folded) {
    this.folded = folded;
    this.box.classList.toggle("folded", folded);
    this.toggle.setAttribute("aria-expanded", String(!folded));
    this.toggle.textContent = folded ? `Show the whole ${this.noun}` : "Show less";
    this.measure();
  }

  // Folding hides something only from a text taller than the fold; a short one has no button.
  measure() {
    if (!this.folded) return;
    const hides = this.body.offsetHeight > this.box.clientHeight + 1;
    this.box.classList.toggle("clipped", hides);
    this.toggle.hidden = !hides;
  }
}

export class RoundView {
  // `labels`: how people know a seat beyond its name ("browser (phone)"), where it has one.
  constructor(question, { mode = "", seats = [], chair = "", labels = {} } = {}) {
    this.question = question;
    this.labels = labels;
    this.panes = new Map(); // `${stage}:${layer}:${seat}` → pane
    this.stages = new Map(); // `${stage}:${layer}` → section
    this.pending = new Set();
    this.chairText = "";
    this.meta = el("p", { class: "round-meta" });
    this.status = el("span", { class: "round-status", role: "status" });
    this.body = el("div", { class: "round-body" });
    this.notes = el("ul", { class: "notes" });
    this.chair = el("section", { class: "chair", hidden: true, "aria-label": "Final answer" });
    this.aggregate = el("section", { class: "aggregate", hidden: true });
    this.vote = el("section", { class: "vote", hidden: true });
    this.reviews = el("details", { class: "reviews", hidden: true }, el("summary", { text: "Reviews" }));
    this.error = el("p", { class: "round-error", role: "alert", hidden: true });
    this.element = el(
      "article",
      { class: "round" },
      el("div", { class: "question" }, el("p", { class: "question-text", text: question })),
      this.meta,
      this.body,
      this.reviews,
      this.aggregate,
      this.vote,
      this.chair,
      this.notes,
      this.error,
      el("footer", { class: "round-footer" }, this.status),
    );
    this.setMeta(mode, seats, chair);
    this.setStatus("waiting for the seats…", "running");
  }

  setMeta(mode, seats, chair) {
    this.meta.textContent = [mode, seats.length ? `seats: ${seats.join(", ")}` : "", chair ? `chair: ${chair}` : ""]
      .filter(Boolean)
      .join(" · ");
  }

  setStatus(text, state) {
    this.status.textContent = text;
    this.element.dataset.state = state;
  }

  // ---- events -----------------------------------------------------------------------------
  handle(type, data) {
    const handler = this[`on_${type}`];
    if (handler) handler.call(this, data);
  }

  on_run_start(data) {
    this.setMeta(data.mode, data.seats, data.chair);
  }

  on_stage_start(data) {
    if (data.stage === "review") {
      this.reviews.hidden = false;
      this.reviews.open = true;
      this.setStatus("the seats are reviewing each other's answers…", "running");
      return;
    }
    if (data.stage === "chair") {
      this.showChair(`Final answer · chair: ${data.seats[0]}`);
      this.chairText = "";
      this.setStatus(`${data.seats[0]} is writing the final answer…`, "running");
      return;
    }
    this.stageSection(data.stage, data.layer, data.seats);
    this.setStatus("the seats are answering…", "running");
  }

  on_seat_delta(data) {
    if (data.stage === "review") {
      const entry = this.reviewEntry(data.seat);
      entry.text += data.delta;
      entry.tokens = (entry.tokens || 0) + 1;
      this.schedule(entry);
      return;
    }
    const pane = this.pane(data.stage, data.layer, data.seat);
    pane.text += data.delta;
    pane.tokens += 1;
    this.schedule(pane);
  }

  on_chair_delta(data) {
    this.chairText += data.delta;
    this.schedule({ chair: true });
  }

  on_seat_done(data) {
    if (data.stage === "chair") {
      this.chairText = data.content;
      if (this.chairBody) setMarkdown(this.chairBody, this.chairText);
      return;
    }
    if (data.stage === "review") return this.reviewText(data);
    this.finishPane(data);
  }

  on_seat_error(data) {
    if (data.stage === "chair") {
      this.addNote(`The chair ${data.seat} ${data.status}: ${data.error}`);
      return;
    }
    if (data.stage === "review") return this.reviewText(data);
    this.finishPane(data);
  }

  on_review_done(data) {
    const entry = this.reviewEntry(data.seat);
    entry.labels = data.labels || {};
    const legend = Object.entries(entry.labels).map(([label, seat]) => `${label} = ${seat}`);
    entry.legend.textContent = legend.length ? `Labels it saw: ${legend.join(", ")}` : "";
    entry.ranking.replaceChildren(
      data.ranking
        ? el(
            "span",
            {},
            "Extracted ranking: ",
            el(
              "ol",
              { class: "ranking" },
              data.ranking.map((seat) => el("li", { text: seat })),
            ),
          )
        : el("span", { class: "unparsed", text: `Ranking unparsed: ${data.problem || data.status}` }),
    );
    if (data.ranking && data.problem) {
      entry.ranking.append(el("span", { class: "hint", text: ` (${data.problem})` }));
    }
    if (entry.text) this.renderReview(entry);
  }

  on_ranking(data) {
    this.aggregate.hidden = false;
    const rows = data.standings.map((s) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", text: s.seat }),
        el("td", { text: formatNumber(s.mean_rank) }),
        el("td", { text: formatNumber(s.borda) }),
        el("td", { text: String(s.votes) }),
        el("td", { text: formatNumber(s.controversy) }),
      ),
    );
    this.aggregate.replaceChildren(
      el("h3", { text: `Aggregate ranking (${data.valid} of ${data.reviews} rankings read)` }),
      el(
        "table",
        {},
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["Seat", "Mean rank", "Borda", "Votes", "Controversy"].map((h) => el("th", { scope: "col", text: h })),
          ),
        ),
        el("tbody", {}, rows),
      ),
    );
  }

  on_vote(data) {
    this.vote.hidden = false;
    const counts = Object.entries(data.counts);
    this.vote.replaceChildren(
      el("h3", { text: "Vote" }),
      el(
        "table",
        {},
        el(
          "thead",
          {},
          el("tr", {}, el("th", { scope: "col", text: "Answer" }), el("th", { scope: "col", text: "Votes" })),
        ),
        el(
          "tbody",
          {},
          counts.map(([answer, votes]) => el("tr", {}, el("td", { text: answer }), el("td", { text: String(votes) }))),
        ),
      ),
      data.abstained.length
        ? el("p", { class: "hint", text: `No readable answer from: ${data.abstained.join(", ")}` })
        : null,
    );
  }

  on_note(data) {
    this.addNote(data.text);
  }

  on_error(data) {
    this.error.hidden = false;
    this.error.textContent = data.message;
  }

  on_done(data) {
    this.flush();
    if (data.status === "done" && data.answer && !this.chairText) {
      this.showChair("Final answer");
      setMarkdown(this.chairBody, data.answer);
    }
    this.answer = data.answer || this.chairText;
    if (!this.chair.hidden && this.answer) this.chair.append(this.chairActions());
    if (data.result?.tally && data.result.winner) {
      this.vote.append(
        el("p", {
          class: "winner",
          text: `Winner: ${data.result.winner} (${data.result.votes} of ${data.result.voters} votes; decided by ${data.result.decided_by})`,
        }),
      );
    }
    const words = { done: "done", cancelled: "stopped: what was written is kept", failed: "failed" };
    this.setStatus(words[data.status] || data.status, data.status);
    if (data.status === "failed" && data.error && this.error.hidden) {
      this.on_error({ message: data.error });
    }
  }

  // ---- the final answer -------------------------------------------------------------------
  showChair(title) {
    this.chair.hidden = false;
    this.chairBody = el("div", { class: "markdown chair-text" });
    this.chair.replaceChildren(el("h3", { text: title }), this.chairBody);
  }

  // "Ask again" asks the page (app.js) to send this round's question once more, in this
  // conversation, with the options the composer has now.
  chairActions() {
    const again = el("button", { type: "button", class: "ask-again", text: "Ask again" });
    again.addEventListener("click", () =>
      again.dispatchEvent(new CustomEvent("ask-again", { bubbles: true, detail: { question: this.question } })),
    );
    const copy = copyButton("the final answer", () => this.answer);
    return el("div", { class: "answer-actions" }, copy, again);
  }

  // The round is over and the person followed it to its end: the seats' long answers fold to
  // their first lines, and the view lands on the final answer, the one to read.
  land() {
    this.fold();
    if (!this.chair.hidden) this.chair.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  fold() {
    for (const pane of this.panes.values()) pane.fold.set(true);
    for (const entry of this.reviewsBySeat?.values() ?? []) entry.fold.set(true);
  }

  // ---- panes ------------------------------------------------------------------------------
  stageSection(stage, layer, seats) {
    const key = `${stage}:${layer}`;
    if (this.stages.has(key)) return this.stages.get(key);
    const title = STAGE_TITLES[stage] + (layer ? ` · layer ${layer}` : "");
    const tabs = el("div", { class: "tabs", role: "tablist", "aria-label": title });
    const panes = el("div", { class: "panes" });
    const section = el("section", { class: `stage stage-${stage}` }, el("h3", { text: title }), tabs, panes);
    section.tabs = tabs;
    section.panesBox = panes;
    this.stages.set(key, section);
    this.body.append(section);
    for (const seat of seats) this.pane(stage, layer, seat);
    this.selectTab(section, seats[0]);
    return section;
  }

  pane(stage, layer, seat) {
    const key = `${stage}:${layer}:${seat}`;
    if (this.panes.has(key)) return this.panes.get(key);
    const section = this.stageSection(stage, layer, [seat]);
    if (this.panes.has(key)) return this.panes.get(key); // the new section made it
    const id = `pane-${Math.random().toString(36).slice(2)}`;
    const tab = el("button", {
      type: "button",
      role: "tab",
      class: "tab",
      "aria-controls": id,
      text: seat,
      onclick: () => this.selectTab(section, seat),
    });
    const state = el("span", { class: "pane-state", text: "answering…" });
    const text = el("div", { class: "markdown pane-text" });
    const fold = new Fold(text, "answer");
    const copy = copyButton(`${seat}'s answer`, () => pane.text);
    copy.hidden = true; // until the answer is complete
    const error = el("p", { class: "pane-error", role: "alert", hidden: true });
    const element = el(
      "div",
      { class: "pane", id, role: "tabpanel", "data-seat": seat, "data-state": "running" },
      el(
        "header",
        {},
        el(
          "span",
          {},
          el("strong", { text: seat }),
          this.labels[seat] ? el("span", { class: "kind", text: this.labels[seat] }) : null,
        ),
        state,
      ),
      fold.box,
      error,
      el("div", { class: "answer-actions" }, fold.toggle, copy),
    );
    const pane = { key, seat, element, tab, state, text: "", tokens: 0, body: text, error, fold, copy };
    section.tabs.append(tab);
    section.panesBox.append(element);
    this.panes.set(key, pane);
    return pane;
  }

  selectTab(section, seat) {
    for (const pane of section.panesBox.children) {
      const selected = pane.dataset.seat === seat;
      pane.classList.toggle("selected", selected);
    }
    for (const tab of section.tabs.children) {
      tab.setAttribute("aria-selected", String(tab.textContent === seat));
    }
  }

  finishPane(data) {
    const pane = this.pane(data.stage, data.layer, data.seat);
    pane.text = data.content || pane.text;
    pane.element.dataset.state = data.status;
    const seconds = data.wall_ms / 1000;
    const speed = data.generation_ms ? data.completion_tokens / (data.generation_ms / 1000) : 0;
    pane.state.textContent =
      data.status === "done"
        ? `${data.completion_tokens} tokens · ${seconds.toFixed(1)} s${speed ? ` · ${speed.toFixed(0)} tok/s` : ""}`
        : data.status;
    if (data.status !== "done") {
      pane.error.hidden = false;
      pane.error.textContent = `${data.status === "timeout" ? "Timed out" : data.status === "cancelled" ? "Stopped" : "Failed"}: ${data.error}`;
      pane.tab.classList.add("tab-failed");
    }
    this.pending.delete(pane);
    setMarkdown(pane.body, pane.text || "");
    pane.copy.hidden = !pane.text;
  }

  // ---- reviews ----------------------------------------------------------------------------
  reviewEntry(seat) {
    this.reviewsBySeat ??= new Map();
    if (this.reviewsBySeat.has(seat)) return this.reviewsBySeat.get(seat);
    const entry = {
      review: true,
      seat,
      labels: {},
      text: "",
      legend: el("p", { class: "legend" }),
      ranking: el("div", { class: "extracted" }),
      body: el("div", { class: "markdown review-text" }),
      state: el("span", { class: "pane-state" }),
    };
    entry.fold = new Fold(entry.body, "review");
    entry.element = el(
      "div",
      { class: "review", "data-seat": seat },
      el("header", {}, el("strong", { text: `Review by ${seat}` }), entry.state),
      entry.legend,
      entry.fold.box,
      el("div", { class: "answer-actions" }, entry.fold.toggle),
      entry.ranking,
    );
    this.reviews.append(entry.element);
    this.reviewsBySeat.set(seat, entry);
    const count = this.reviewsBySeat.size;
    this.reviews.querySelector("summary").textContent = `Reviews (${count})`;
    return entry;
  }

  reviewText(data) {
    const entry = this.reviewEntry(data.seat);
    this.pending.delete(entry);
    entry.text = data.content || "";
    entry.state.textContent =
      data.status === "done" ? `${data.completion_tokens} tokens` : `${data.status}: ${data.error}`;
    entry.element.dataset.state = data.status;
    if (data.details?.labels) this.on_review_done({ seat: data.seat, ...data.details, status: data.status });
    this.renderReview(entry);
  }

  // "Response B" → "Response B (demo-3)": the labels this reviewer saw, resolved for people.
  renderReview(entry) {
    const resolved = entry.text.replace(/\bResponse ([A-Z])\b/g, (match, label) =>
      entry.labels[label] ? `${match} (${entry.labels[label]})` : match,
    );
    setMarkdown(entry.body, resolved);
  }

  addNote(text) {
    this.notes.append(el("li", { text }));
  }

  // ---- rendering streamed text, once per frame --------------------------------------------
  schedule(target) {
    this.pending.add(target);
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = null;
    for (const target of this.pending) {
      if (target.chair) {
        if (this.chairBody) setMarkdown(this.chairBody, this.chairText);
      } else if (target.review) {
        target.state.textContent = `${target.tokens} tokens…`;
        this.renderReview(target);
      } else {
        target.state.textContent = `${target.tokens} tokens…`;
        setMarkdown(target.body, target.text);
      }
    }
    this.pending.clear();
  }

  // ---- a stored message, replayed -----------------------------------------------------------
  static fromStored(message, labels = {}) {
    const view = new RoundView(message.question, {
      mode: message.mode,
      seats: message.options.seats || [],
      chair: message.result?.chair || message.options.chair,
      labels,
    });
    for (const output of message.outputs) {
      if (output.stage === "review") {
        view.reviews.hidden = false;
        view.reviewText(output);
      } else if (output.stage === "chair") {
        if (output.status === "done") {
          view.on_stage_start({ stage: "chair", seats: [output.seat] });
          view.on_seat_done(output);
        } else view.on_seat_error(output);
      } else {
        view.stageSection(output.stage, output.layer, [output.seat]);
        view.finishPane(output);
      }
    }
    const result = message.result || {};
    if (result.standings?.length) {
      const reviews = message.outputs.filter((o) => o.stage === "review");
      const valid = reviews.filter((o) => o.details?.ranking).length;
      view.on_ranking({ standings: result.standings, valid, reviews: reviews.length });
    }
    if (result.tally) view.on_vote(result.tally);
    for (const note of result.notes || []) view.addNote(note);
    view.on_done({ status: message.status, answer: message.answer, result, error: message.error });
    view.fold();
    return view;
  }
}
