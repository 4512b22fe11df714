// Joining the council: this tab registers with the hub as a seat, receives its stage prompts
// over an event stream (GET /api/browser-seats/{id}/tasks) and posts each answer back in small
// batches as wllama writes it, so the council page streams it like any engine's. Closing the
// tab (or unticking "Join the council") closes the stream, and the hub takes the seat out.

import { $, why } from "/static/lib/dom.js";
import { serverEvents } from "/static/lib/sse.js";

const SECRET = "x-council-seat-secret";
// Sent on `document` by the page when another model takes over (detail: its /models/… path).
export const MODEL_CHANGED = "council-seat:model";
const BATCH_MS = 150; // how often written text goes to the hub while a task runs

function say(text) {
  $("council-status").textContent = text;
}

function doing(text) {
  $("council-task").textContent = text;
}

class CouncilSeat {
  constructor(withModel, ctxSize, modelPath) {
    this.withModel = withModel; // one model call at a time, the page's Ask box included
    this.ctxSize = ctxSize;
    this.modelPath = modelPath; // the /models/… path of the model answering now
    this.leaving = new AbortController();
    this.queue = [];
    this.current = null; // { id, abort }
    this.working = false;
  }

  async join() {
    const registered = this.modelPath();
    const response = await fetch("/api/browser-seats", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ctx_size: this.ctxSize, model: registered }),
    });
    if (!response.ok) throw new Error(`the hub answered ${response.status}`);
    this.seat = await response.json();
    // The hub counts this seat's tokens with the model's tokenizer, to fit prompts to n_ctx.
    const changed = (event) => this.tellModel(event.detail);
    document.addEventListener(MODEL_CHANGED, changed);
    if (this.modelPath() !== registered) this.tellModel(this.modelPath()); // swapped meanwhile
    try {
      await this.listen();
    } finally {
      document.removeEventListener(MODEL_CHANGED, changed);
    }
  }

  // The task stream: tasks queue up and are answered one at a time; cancels drop or stop them.
  async listen() {
    const stream = await fetch(`/api/browser-seats/${this.seat.id}/tasks`, {
      headers: { [SECRET]: this.seat.secret },
      signal: this.leaving.signal,
    });
    if (!stream.ok || !stream.body) throw new Error(`the hub answered ${stream.status}`);
    for await (const [kind, data] of serverEvents(stream.body)) {
      if (kind === "ready") {
        document.body.dataset.councilSeat = data.name;
        say(`Joined the council as ${data.name}, shown as “${data.label}”.`);
        doing("Waiting for a question.");
      } else if (kind === "task") {
        this.queue.push(data);
        this.work();
      } else if (kind === "cancel") {
        this.queue = this.queue.filter((task) => task.task !== data.task);
        if (this.current?.id === data.task) this.current.abort.abort();
      }
    }
  }

  tellModel(path) {
    return fetch(`/api/browser-seats/${this.seat.id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json", [SECRET]: this.seat.secret },
      body: JSON.stringify({ model: path }),
    }).catch(() => {}); // a seat that has left needs no counts
  }

  leave() {
    this.leaving.abort();
    this.current?.abort.abort();
  }

  async work() {
    if (this.working) return;
    this.working = true;
    try {
      while (this.queue.length) await this.answer(this.queue.shift());
    } finally {
      this.working = false;
    }
  }

  post(id, update) {
    return fetch(`/api/browser-seats/${this.seat.id}/tasks/${id}`, {
      method: "POST",
      headers: { "content-type": "application/json", [SECRET]: this.seat.secret },
      body: JSON.stringify(update),
    });
  }

  async answer(task) {
    const abort = new AbortController();
    this.current = { id: task.task, abort };
    const question = task.messages.at(-1)?.content ?? "";
    doing("Waiting for the model: it is busy with another answer.");
    let pending = [];
    let tokens = 0;
    let sending = Promise.resolve();
    // Batches go one after another, in order; a refused batch means the hub no longer wants
    // this answer (the round was stopped or timed out), so generation stops.
    const send = (update) => {
      const deltas = pending;
      pending = [];
      sending = sending.then(async () => {
        if (abort.signal.aborted && !update.error) return;
        const response = await this.post(task.task, { deltas, ...update });
        if (!response.ok) abort.abort();
      });
      return sending;
    };
    const timer = setInterval(() => pending.length && send({}), BATCH_MS);
    try {
      // Behind an answer of the Ask box, the task waits its turn (the round's stage timeout
      // still applies); a task cancelled meanwhile never starts.
      const finish = await this.withModel(async (wllama) => {
        if (abort.signal.aborted) return null;
        doing(`Answering: “${question.slice(0, 80)}${question.length > 80 ? "…" : ""}”`);
        const chunks = await wllama.createChatCompletion({
          messages: task.messages,
          stream: true,
          max_tokens: task.max_tokens,
          temperature: task.temperature,
          abortSignal: abort.signal,
        });
        let reason = null;
        for await (const chunk of chunks) {
          if (abort.signal.aborted) break;
          const choice = chunk.choices?.[0];
          if (choice?.delta?.content) {
            pending.push(choice.delta.content);
            tokens += 1;
          }
          reason = choice?.finish_reason ?? reason;
        }
        return reason;
      });
      clearInterval(timer);
      if (abort.signal.aborted) {
        doing("Stopped: the council no longer needs that answer.");
      } else {
        await send({ done: true, finish_reason: finish, usage: { completion_tokens: tokens } });
        doing(`Answered (${tokens} tokens). Waiting for a question.`);
      }
    } catch (error) {
      clearInterval(timer);
      if (abort.signal.aborted) doing("Stopped: the council no longer needs that answer.");
      else {
        await send({ error: why(error) }).catch(() => {});
        doing(`Could not answer: ${why(error)}`);
      }
    } finally {
      this.current = null;
    }
  }
}

// The "Join the council" switch: on by default, since the model already runs in this tab.
export function offerToJoin(withModel, ctxSize, modelPath) {
  const toggle = $("join");
  toggle.disabled = false;
  toggle.checked = true;
  let seat = null;
  const join = async () => {
    seat = new CouncilSeat(withModel, ctxSize, modelPath);
    const mine = seat;
    say("Joining the council…");
    try {
      await mine.join();
      if (mine === seat) say("The hub closed this seat's connection; untick and tick to join again.");
    } catch (error) {
      if (mine === seat && !mine.leaving.signal.aborted) say(`Could not join the council: ${why(error)}`);
    } finally {
      if (mine === seat) delete document.body.dataset.councilSeat;
    }
  };
  toggle.addEventListener("change", () => {
    if (toggle.checked) {
      join();
    } else {
      seat?.leave();
      seat = null;
      delete document.body.dataset.councilSeat;
      say("Not in the council.");
      doing("");
    }
  });
  join();
}
