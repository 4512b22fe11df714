// What the page shows of the seat: the browser's checks, the decision and its reasons, and
// whether the model is busy. Rendering only; seat.js decides when.

import { $, el, humanSize } from "/static/lib/dom.js";

export function showChecks(facts) {
  const rows = [
    ["Secure context", facts.secure ? "yes" : "no"],
    ["Cross-origin isolated", facts.isolated ? "yes" : "no"],
    ["WebGPU adapter", facts.webgpu ? (facts.shaderF16 ? "yes, with shader-f16" : "yes, without shader-f16") : "no"],
    ["JSPI", facts.jspi ? "yes" : "no"],
    ["Memory64", facts.memory64 ? "yes" : "no"],
    ["Build", facts.compat ? "compatible (slower)" : "default"],
    // As the browser tells it: a rounded figure, not a size to convert.
    ["Device memory", facts.deviceMemoryGb ? `about ${facts.deviceMemoryGb} GB` : "not told"],
    ["CPU cores", String(facts.cores)],
    ["Storage free", facts.quota ? `${humanSize(facts.free)} of ${humanSize(facts.quota)}` : "not told"],
  ];
  $("checks").replaceChildren(
    ...rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]),
  );
}

// `mode`: "loading", "tab" or "host", for the page's style and for tests (body[data-mode]).
export function showDecision(text, reasons, mode) {
  document.body.dataset.mode = mode;
  $("decision").textContent = text;
  $("reasons").replaceChildren(...reasons.map((reason) => el("li", { text: reason })));
}

// `waiting`: the calls that hold the model or wait for it (model.js).
export function showBusy(waiting) {
  const busy = waiting > 0;
  document.body.dataset.modelBusy = String(busy);
  $("model-busy").textContent = !busy
    ? ""
    : waiting === 1
      ? "The model is answering."
      : `The model is answering; ${waiting - 1} more waiting their turn.`;
}

export function enableChat() {
  $("prompt").disabled = false;
  $("send").disabled = false;
}

// Where the model came from, and what that cost the network.
export function fetchedText(cached, downloaded) {
  return cached
    ? `Loaded from this browser's storage: ${humanSize(downloaded)} downloaded.`
    : `Downloaded ${humanSize(downloaded)} from the hub; kept in this browser for next time.`;
}
