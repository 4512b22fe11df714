// The browser seat: decide whether a model can run in this tab, run it with wllama if so, and
// otherwise let the hub's engine answer through /v1. Every decision is shown with its reasons.
//
// The page's one entry module: it holds the page's state, wires up its controls and starts
// everything; the modules it imports do nothing when imported.

import { detect } from "/seat/capabilities.js";
import { browserUrl, decide, fetchedUrls, label, threadsFor } from "/seat/decide.js";
import { hostAnswer, hostSeat } from "/seat/host.js";
import { MODEL_CHANGED, offerToJoin } from "/seat/join.js";
import { downloadedBytes, downloadModel, isCached, loadModel, newWllama } from "/seat/loading.js";
import { TabModel } from "/seat/model.js";
import { enableChat, fetchedText, showBusy, showChecks, showDecision } from "/seat/page.js";
import { $, humanSize, why } from "/static/lib/dom.js";

const MAX_TOKENS = 48;
// "Fetch a larger model in the background": on by default, and this browser remembers the
// visitor's choice, so that unticking it once keeps later visits to the small model.
const FETCH_LARGER = "council.seat.fetch-larger";

const state = { mode: "checking", hostModel: null, busy: false };
const tab = new TabModel(showBusy);
const urlOf = (model) => browserUrl(model, location.href);

function decided(text, reasons, mode) {
  state.mode = mode;
  showDecision(text, reasons, mode);
}

async function candidates() {
  const response = await fetch("/api/models");
  if (!response.ok) return [];
  const { models } = await response.json();
  return models
    .filter((model) => model.valid)
    .sort((a, b) => a.size_bytes - b.size_bytes || a.path.localeCompare(b.path));
}

// --- The model in this tab --------------------------------------------------------------------

async function runInTab(facts, model) {
  const url = urlOf(model);
  $("model-card").hidden = false;
  $("model-name").textContent = label(model);
  $("download-label").textContent = `Download: ${label(model)}`;
  const status = $("download-status");
  const wllama = newWllama();
  const cached = await isCached(wllama, url);
  status.textContent = cached ? "Reading from this browser's storage…" : "Downloading…";
  try {
    await loadModel(wllama, url, model, {
      threads: threadsFor(facts),
      cached,
      progress: (loaded, total) => {
        $("download").value = total ? loaded / total : 0;
        if (!cached) status.textContent = `Downloading… ${humanSize(loaded)} of ${humanSize(total)}`;
      },
    });
  } catch (error) {
    status.textContent = `Stopped: ${why(error)}.`;
    throw error;
  }
  $("download").value = 1;
  const downloaded = downloadedBytes(fetchedUrls(url, model));
  document.body.dataset.downloadedBytes = String(downloaded);
  document.body.dataset.modelSource = cached ? "storage" : "hub";
  status.textContent = fetchedText(cached, downloaded);
  const threads = wllama.getNumThreads();
  document.body.dataset.threads = String(threads);
  document.body.dataset.multithread = String(wllama.isMultithread());
  $("runtime").textContent = wllama.isMultithread()
    ? `Running on ${threads} WebAssembly threads.`
    : "Running on one WebAssembly thread.";
  tab.start(wllama, model);
}

// The larger model: downloaded into this browser's storage while the small one answers (or read
// back from it on a later visit), loaded into a second wllama, and swapped in between answers.
async function fetchLarger(facts, larger) {
  const url = urlOf(larger);
  $("larger").hidden = false;
  $("larger-label").textContent = `Background download: ${label(larger)}`;
  const status = $("larger-status");
  const bar = $("larger-download");
  document.body.dataset.larger = "fetching";
  const wllama = newWllama();
  const cached = await isCached(wllama, url);
  let downloaded = 0;
  if (cached) {
    status.textContent = "Reading from this browser's storage…";
  } else {
    status.textContent = "Downloading in the background…";
    await downloadModel(wllama, url, larger, (loaded, total) => {
      bar.value = total ? loaded / total : 0;
      status.textContent = `Downloading in the background… ${humanSize(loaded)} of ${humanSize(total)}`;
    });
    downloaded = downloadedBytes(fetchedUrls(url, larger));
  }
  await loadModel(wllama, url, larger, { threads: threadsFor(facts), cached: true });
  bar.value = 1;
  if (!$("fetch-larger").checked) {
    await wllama.exit().catch(() => {});
    document.body.dataset.larger = "declined";
    status.textContent = "Kept in this browser, but not used: the small model keeps answering.";
    return;
  }
  await tab.swap(wllama, larger);
  // A joined seat tells the hub, which counts this tab's tokens with the model's own tokenizer.
  document.dispatchEvent(new CustomEvent(MODEL_CHANGED, { detail: new URL(url).pathname }));
  document.body.dataset.larger = "ready";
  document.body.dataset.largerSource = cached ? "storage" : "hub";
  document.body.dataset.largerDownloadedBytes = String(downloaded);
  document.body.dataset.answeringWith = tab.name;
  status.textContent = fetchedText(cached, downloaded);
  $("model-name").textContent = label(larger);
  $("answered-by").textContent = `Now answering with ${label(larger)}, the larger model, in this tab.`;
}

function offerLarger(larger) {
  const toggle = $("fetch-larger");
  $("larger-choice").hidden = false;
  toggle.checked = localStorage.getItem(FETCH_LARGER) !== "off";
  toggle.disabled = false;
  let started = false;
  let loaded = null; // the facts, once the small model answers
  const begin = () => {
    if (started || !toggle.checked || !loaded) return;
    started = true;
    fetchLarger(loaded, larger).catch((error) => {
      document.body.dataset.larger = "failed";
      $("larger-status").textContent =
        `The larger model could not load (${why(error)}); the small one keeps answering.`;
    });
  };
  toggle.addEventListener("change", () => {
    localStorage.setItem(FETCH_LARGER, toggle.checked ? "on" : "off");
    begin();
  });
  return (facts) => {
    loaded = facts;
    begin();
  };
}

// The tab's model writes into `write` while it holds its turn (see model.js).
function tabAnswer(messages, write) {
  return tab.use(async (wllama) => {
    const chunks = await wllama.createChatCompletion({
      messages,
      stream: true,
      max_tokens: MAX_TOKENS,
      temperature: 0.7,
    });
    for await (const chunk of chunks) {
      const text = chunk.choices?.[0]?.delta?.content;
      if (text) write(text);
    }
    return tab.name;
  });
}

// A hook for benchmarks/browser_seat.py: one greedy chat completion of up to `maxTokens`
// tokens (end of text ignored) and llama.cpp's own timings, to compare with llama-server's.
const benchmarkHook = {
  async generate(prompt, maxTokens) {
    return tab.use(async (wllama) => {
      const started = performance.now();
      const answer = await wllama.createChatCompletion({
        messages: [{ role: "user", content: prompt }],
        max_tokens: maxTokens,
        temperature: 0,
        ignore_eos: true,
      });
      return {
        ms: performance.now() - started,
        text: answer.choices?.[0]?.message?.content ?? "",
        model: tab.model?.path ?? null,
        usage: answer.usage ?? null,
        timings: answer.timings ?? null,
      };
    });
  },
};

// --- The host's engine ------------------------------------------------------------------------

async function useHost(reasons) {
  decided("The host's engine answers, not this tab, because:", reasons, "host");
  state.hostModel = await hostSeat();
  if (!state.hostModel) {
    $("answered-by").textContent = "The hub has no seat ready to answer.";
    return;
  }
  $("answered-by").textContent = `Answers come from the host's seat ${state.hostModel}.`;
  enableChat();
}

// --- The page's controls ----------------------------------------------------------------------

async function send(event) {
  event.preventDefault();
  const question = $("prompt").value.trim();
  if (!question || state.busy) return;
  state.busy = true;
  $("send").disabled = true;
  const reply = $("reply");
  reply.textContent = "";
  reply.dataset.state = "streaming";
  delete reply.dataset.model;
  const messages = [{ role: "user", content: question }];
  try {
    if (state.mode === "tab") {
      reply.dataset.model = await tabAnswer(messages, (text) => {
        reply.textContent += text;
      });
    } else {
      for await (const text of hostAnswer(state.hostModel, messages, MAX_TOKENS)) reply.textContent += text;
    }
    reply.dataset.state = "done";
  } catch (error) {
    reply.dataset.state = "failed";
    reply.textContent = `No answer: ${why(error)}`;
  } finally {
    state.busy = false;
    $("send").disabled = false;
  }
}

async function clearCache() {
  const button = $("clear-cache");
  button.disabled = true;
  try {
    await (tab.wllama ?? newWllama()).modelManager.clear();
    $("download-status").textContent = "Downloaded models cleared from this browser.";
    $("download").value = 0;
  } finally {
    button.disabled = false;
  }
}

async function start() {
  $("chat").addEventListener("submit", send);
  $("clear-cache").addEventListener("click", clearCache);
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("chat").requestSubmit();
    }
  });
  const facts = await detect();
  showChecks(facts);
  // The smallest model that fits, unless the address names one: /seat/?model=<catalog path>.
  const asked = new URLSearchParams(location.search).get("model");
  const decision = decide(facts, await candidates(), asked);
  if (decision.where === "host") {
    await useHost(decision.reasons);
    return;
  }
  decided("Loading the model into this tab…", decision.reasons, "loading");
  const startLarger = decision.larger ? offerLarger(decision.larger) : null;
  try {
    await runInTab(facts, decision.model);
  } catch (error) {
    await useHost([`the model could not load in this tab (${why(error)})`]);
    return;
  }
  window.councilSeat = benchmarkHook;
  decided("Runs in this tab.", decision.reasons, "tab");
  $("answered-by").textContent = "Answers come from the model in this tab; nothing leaves this device.";
  document.body.dataset.answeringWith = tab.name;
  enableChat();
  offerToJoin(
    (fn) => tab.use(fn),
    tab.wllama.getLoadedContextInfo().n_ctx,
    () => new URL(urlOf(tab.model)).pathname,
  );
  startLarger?.(facts);
}

start();
