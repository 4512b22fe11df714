// The browser seat: decide whether a model can run in this tab, run it with wllama if so, and
// otherwise let the hub's engine answer through /v1. Every decision is shown with its reasons.
//
// wllama and its WebAssembly come from the hub (/seat/vendor/, copied from npm by `make web`),
// the compat build included, so nothing is ever fetched from a CDN. Downloaded models stay in
// the browser's origin-private file system (wllama's cache) until "Clear downloaded models".

import { Wllama } from "/seat/vendor/index.js";
import { MODEL_CHANGED, offerToJoin } from "/seat/join.js";
import { lines } from "/seat/lines.js";

const here = (path) => new URL(path, location.href).href;
const WASM = { default: here("/seat/vendor/wllama.wasm") };
const COMPAT = { wasm: here("/seat/vendor/compat/wllama.wasm"), worker: here("/seat/vendor/compat/wllama.js") };
const GB = 1024 ** 3;
const MAX_TOKENS = 48;
// One slot with the whole context: the tab runs one completion at a time (withModel), and
// wllama's default of 4 slots sharing the cache leaves old prompts in cells a long new prompt
// needs (llama.cpp then logs "failed to restore state" and starts over).
const CONTEXT = { n_ctx: 1024, n_parallel: 1 };

const $ = (id) => document.getElementById(id);
const state = { mode: "checking", wllama: null, model: null, hostModel: null, busy: false };

// --- One model call at a time ---------------------------------------------------------------

// wllama runs one completion at a time: the Ask box, a council task (join.js) and the benchmark
// hook all go through withModel, which runs `fn(wllama)` after every earlier call has finished.
// Switching to the larger model goes through it too, so a switch never cuts an answer short.
let modelTurn = Promise.resolve();
let waiting = 0;

function showBusy() {
  const busy = waiting > 0;
  document.body.dataset.modelBusy = String(busy);
  $("model-busy").textContent = !busy
    ? ""
    : waiting === 1
      ? "The model is answering."
      : `The model is answering; ${waiting - 1} more waiting their turn.`;
}

export function withModel(fn) {
  waiting += 1;
  showBusy();
  const turn = modelTurn.then(() => fn(state.wllama));
  modelTurn = turn.catch(() => {});
  return turn.finally(() => {
    waiting -= 1;
    showBusy();
  });
}

// --- What this browser can do -------------------------------------------------------------

function hasMemory64() {
  try {
    new WebAssembly.Memory({ address: "i64", initial: 1n });
    return true;
  } catch {
    return false;
  }
}

async function webgpu() {
  if (!navigator.gpu) return { adapter: false, shaderF16: false };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    return { adapter: Boolean(adapter), shaderF16: Boolean(adapter?.features.has("shader-f16")) };
  } catch {
    return { adapter: false, shaderF16: false };
  }
}

async function storage() {
  try {
    const { quota = 0, usage = 0 } = await navigator.storage.estimate();
    return { quota, free: Math.max(0, quota - usage) };
  } catch {
    return { quota: 0, free: 0 };
  }
}

export async function detect() {
  const gpu = await webgpu();
  const { quota, free } = await storage();
  const jspi = typeof WebAssembly.Suspending === "function";
  const memory64 = hasMemory64();
  return {
    secure: window.isSecureContext,
    isolated: window.crossOriginIsolated === true,
    webgpu: gpu.adapter,
    shaderF16: gpu.shaderF16,
    jspi,
    memory64,
    compat: !(jspi && memory64),
    deviceMemoryGb: navigator.deviceMemory ?? null, // Chromium only, rounded and capped at 8
    cores: navigator.hardwareConcurrency || 1,
    quota,
    free,
  };
}

// How many bytes of model this tab may hold: half the device's memory (when the browser says),
// at most what 32-bit WebAssembly can address in compat mode, and what storage has left.
function budget(facts) {
  const memory = facts.deviceMemoryGb ? (facts.deviceMemoryGb * GB) / 2 : 2 * GB;
  const address = facts.compat ? 2 * GB : 16 * GB;
  return Math.min(memory, address, facts.free || Infinity);
}

function bytes(n) {
  if (n >= GB) return `${(n / GB).toFixed(1)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${n} bytes`;
}

function label(model) {
  return `${model.name || model.path} · ${bytes(model.size_bytes)}`;
}

function threadsFor(facts) {
  // wllama's own default (half the cores) is one thread on a two-core laptop; leave one core
  // for the page instead, and never fewer than two threads when threads are possible.
  return Math.max(2, Math.min(8, facts.cores - 1));
}

// --- Which model, and where ----------------------------------------------------------------

// /api/models lists each file's content-addressed URL (/models/<digest>/<name>) once the hub
// has hashed it. A split model's `url` is its first shard's, and the hub serves every shard
// under that digest too, so wllama finds the rest by the -0000N-of-0000M.gguf naming.
function browserUrl(model) {
  return typeof model.url === "string" ? here(model.url) : null;
}

// The shard URLs wllama fetches for a model: one, or a split set's under the first's digest.
function fetchedUrls(url, model) {
  const base = url.slice(0, url.lastIndexOf("/") + 1);
  return (model.shards?.length ?? 0) > 1 ? model.shards.map((path) => base + path.split("/").pop()) : [url];
}

async function candidates() {
  const response = await fetch("/api/models");
  if (!response.ok) return [];
  const { models } = await response.json();
  return models
    .filter((model) => model.valid)
    .sort((a, b) => a.size_bytes - b.size_bytes || a.path.localeCompare(b.path));
}

export function decide(facts, catalog) {
  const reasons = [];
  const models = catalog.filter(browserUrl);
  const hashing = catalog.some((model) => model.url === null);
  if (!facts.secure) {
    reasons.push(
      "this page is not a secure context (it came over plain HTTP from another address), so the " +
        "browser withholds cross-origin isolation and WebGPU",
    );
  } else if (!facts.isolated) {
    reasons.push(
      "this page is not cross-origin isolated (the hub sent it without the COOP/COEP headers), " +
        "so WebAssembly could use only one thread — too slow for a model",
    );
  }
  const room = budget(facts);
  const fits = models.filter((model) => model.size_bytes <= room);
  if (reasons.length === 0 && models.length === 0) {
    reasons.push(
      hashing
        ? "the hub is still preparing its models for download (reload in a moment)"
        : "the hub offers no model that a browser can download",
    );
  } else if (reasons.length === 0 && fits.length === 0) {
    reasons.push(`no model on the hub fits in this tab's ${bytes(room)}`);
  }
  if (reasons.length > 0) return { where: "host", reasons };
  // The smallest (ready soonest), unless the address names one: /seat/?model=<catalog path>.
  const asked = fits.find((model) => model.path === new URLSearchParams(location.search).get("model"));
  const model = asked ?? fits[0];
  const notes = [
    `this page is cross-origin isolated, so WebAssembly runs on ${threadsFor(facts)} threads`,
    `${asked ? "the model asked for" : "the smallest model"}, ${label(model)}, fits in this tab's ${bytes(room)}`,
  ];
  // Hybrid: the smallest answers at once; the largest that also fits (in memory, and beside the
  // small one in storage) downloads meanwhile and takes over between answers. Not when the
  // address named a model: that is the visitor's choice.
  const stored = (candidate) => !facts.free || model.size_bytes + candidate.size_bytes <= facts.free;
  const larger = asked ? null : (fits.filter((m) => m.size_bytes > model.size_bytes && stored(m)).at(-1) ?? null);
  if (asked) {
    notes.push("no larger model is fetched in the background, since the address names this one");
  } else if (larger) {
    notes.push(
      `a larger model, ${label(larger)}, also fits, so it downloads in the background while the ` +
        "smallest answers, and takes over between answers (untick “Fetch a larger model in the " +
        "background” to keep the smallest)",
    );
  } else {
    notes.push("no larger model fits, so this one keeps answering");
  }
  notes.push(
    facts.compat
      ? "this browser lacks JSPI or Memory64, so the slower compatible build runs"
      : "this browser has JSPI and Memory64, so the fast build runs",
  );
  if (facts.webgpu && facts.shaderF16) {
    notes.push("a WebGPU adapter with shader-f16 is available, so layers run on the GPU");
  } else if (facts.webgpu) {
    // llama.cpp's WebGPU backend offers no device without f16 shaders: the CPU answers.
    notes.push("the WebGPU adapter lacks shader-f16, which llama.cpp's WebGPU backend needs, so the CPU does the work");
  } else {
    notes.push("there is no WebGPU adapter, so the CPU does the work");
  }
  return { where: "tab", reasons: notes, model, url: browserUrl(model), larger };
}

// --- The page ------------------------------------------------------------------------------

function showChecks(facts) {
  const rows = [
    ["Secure context", facts.secure ? "yes" : "no"],
    ["Cross-origin isolated", facts.isolated ? "yes" : "no"],
    ["WebGPU adapter", facts.webgpu ? (facts.shaderF16 ? "yes, with shader-f16" : "yes, without shader-f16") : "no"],
    ["JSPI", facts.jspi ? "yes" : "no"],
    ["Memory64", facts.memory64 ? "yes" : "no"],
    ["Build", facts.compat ? "compatible (slower)" : "default"],
    ["Device memory", facts.deviceMemoryGb ? `about ${facts.deviceMemoryGb} GB` : "not told"],
    ["CPU cores", String(facts.cores)],
    ["Storage free", facts.quota ? `${bytes(facts.free)} of ${bytes(facts.quota)}` : "not told"],
  ];
  $("checks").replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

function showDecision(text, reasons, mode) {
  state.mode = mode;
  document.body.dataset.mode = mode;
  $("decision").textContent = text;
  $("reasons").replaceChildren(
    ...reasons.map((reason) => {
      const li = document.createElement("li");
      li.textContent = reason;
      return li;
    }),
  );
}

function enableChat() {
  $("prompt").disabled = false;
  $("send").disabled = false;
}

// Bytes the network delivered for the model, from the browser's own resource timing: a model
// read back from the origin-private file system costs none (there is no request at all).
function downloadedBytes(urls) {
  return performance
    .getEntriesByType("resource")
    .filter((entry) => urls.includes(entry.name))
    .reduce((sum, entry) => sum + entry.transferSize, 0);
}

// wllama rejects with Error objects, strings and worker ErrorEvents alike.
function why(error) {
  return error?.message || String(error?.type ?? error);
}

const quiet = { debug() {}, log() {}, warn: console.warn.bind(console), error: console.error.bind(console) };

function newWllama() {
  const wllama = new Wllama(WASM, { logger: quiet, parallelDownloads: 1 });
  wllama.setCompat(COMPAT); // the hub's copy, never the CDN default
  return wllama;
}

async function isCached(wllama, url) {
  return (await wllama.modelManager.getModels()).some((model) => model.url === url);
}

// --- Loads that stall -------------------------------------------------------------------------

// A download that stops delivering (the hub went away, the network dropped) or a load that never
// ends (a WebAssembly abort can leave wllama's promise unsettled) must not leave the page at
// "Loading…". The watch gives up after STALL_MS without a byte while downloading, or after
// loadMs(size) once every byte is in (or when reading from storage), and the page moves on.
// Tests shorten STALL_MS through `window.councilSeatStallMs`, set before the page loads.
const STALL_MS = window.councilSeatStallMs ?? 60_000;
const loadMs = (size) => STALL_MS + (size / (20 * 1024 ** 2)) * 1000; // 20 MB/s into memory

class LoadWatch {
  constructor(size, cached) {
    this.size = size;
    this.abort = new AbortController(); // stops wllama's download when the watch gives up
    this.gaveUp = new Promise((_, reject) => {
      this.reject = reject;
    });
    this.gaveUp.catch(() => {});
    if (cached) this.loading();
    else this.waiting();
  }

  waiting() {
    this.arm(STALL_MS, `no model bytes arrived for ${STALL_MS / 1000} s`);
  }

  arm(ms, reason) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.abort.abort();
      this.reject(new Error(reason));
    }, ms);
  }

  loading() {
    const ms = loadMs(this.size);
    this.arm(ms, `the model did not finish loading within ${Math.round(ms / 1000)} s`);
  }

  progress(loaded, total) {
    if (total && loaded >= total) this.loading();
    else this.waiting();
  }

  async run(work) {
    try {
      return await Promise.race([work, this.gaveUp]);
    } finally {
      clearTimeout(this.timer);
    }
  }
}

async function runInTab(facts, decision) {
  $("model-card").hidden = false;
  $("model-name").textContent = label(decision.model);
  $("download-label").textContent = `Download: ${label(decision.model)}`;
  const wllama = newWllama();
  const cached = await isCached(wllama, decision.url);
  $("download-status").textContent = cached ? "Reading from this browser's storage…" : "Downloading…";
  const watch = new LoadWatch(decision.model.size_bytes, cached);
  const load = wllama.loadModelFromUrl(decision.url, {
    n_threads: threadsFor(facts),
    ...CONTEXT,
    signal: watch.abort.signal,
    progressCallback: ({ loaded, total }) => {
      watch.progress(loaded, total);
      $("download").value = total ? loaded / total : 0;
      if (!cached) $("download-status").textContent = `Downloading… ${bytes(loaded)} of ${bytes(total)}`;
    },
  });
  try {
    await watch.run(load);
  } catch (error) {
    wllama.exit().catch(() => {}); // frees what it can; a wedged worker may never answer
    $("download-status").textContent = `Stopped: ${why(error)}.`;
    throw error;
  }
  $("download").value = 1;
  const downloaded = downloadedBytes(fetchedUrls(decision.url, decision.model));
  document.body.dataset.downloadedBytes = String(downloaded);
  document.body.dataset.modelSource = cached ? "storage" : "hub";
  $("download-status").textContent = cached
    ? `Loaded from this browser's storage: ${bytes(downloaded)} downloaded.`
    : `Downloaded ${bytes(downloaded)} from the hub; kept in this browser for next time.`;
  const threads = wllama.getNumThreads();
  document.body.dataset.threads = String(threads);
  document.body.dataset.multithread = String(wllama.isMultithread());
  $("runtime").textContent = wllama.isMultithread()
    ? `Running on ${threads} WebAssembly threads.`
    : "Running on one WebAssembly thread.";
  state.wllama = wllama;
  state.model = decision.model;
}

// The larger model: downloaded into this browser's storage while the small one answers (or read
// back from it on a later visit), loaded into a second wllama, and swapped in between answers.
async function fetchLarger(facts, decision) {
  const { larger } = decision;
  const url = browserUrl(larger);
  const name = larger.name || larger.path;
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
    const watch = new LoadWatch(larger.size_bytes, false);
    await watch.run(
      wllama.modelManager.downloadModel(url, {
        signal: watch.abort.signal,
        progressCallback: ({ loaded, total }) => {
          watch.progress(loaded, total);
          bar.value = total ? loaded / total : 0;
          status.textContent = `Downloading in the background… ${bytes(loaded)} of ${bytes(total)}`;
        },
      }),
    );
    downloaded = downloadedBytes(fetchedUrls(url, larger));
  }
  const watch = new LoadWatch(larger.size_bytes, true);
  await watch
    .run(wllama.loadModelFromUrl(url, { n_threads: threadsFor(facts), ...CONTEXT }))
    .catch((error) => {
      wllama.exit().catch(() => {});
      throw error;
    });
  bar.value = 1;
  if (!$("fetch-larger").checked) {
    await wllama.exit().catch(() => {});
    document.body.dataset.larger = "declined";
    status.textContent = "Kept in this browser, but not used: the small model keeps answering.";
    return;
  }
  await withModel(async (old) => {
    state.wllama = wllama;
    state.model = larger;
    await old.exit().catch(() => {});
  });
  // A joined seat tells the hub, which counts this tab's tokens with the model's own tokenizer.
  document.dispatchEvent(new CustomEvent(MODEL_CHANGED, { detail: new URL(url).pathname }));
  document.body.dataset.larger = "ready";
  document.body.dataset.largerSource = cached ? "storage" : "hub";
  document.body.dataset.largerDownloadedBytes = String(downloaded);
  document.body.dataset.answeringWith = name;
  status.textContent = cached
    ? "Loaded from this browser's storage: 0 bytes downloaded."
    : `Downloaded ${bytes(downloaded)} from the hub; kept in this browser for next time.`;
  $("model-name").textContent = label(larger);
  $("answered-by").textContent = `Now answering with ${label(larger)}, the larger model, in this tab.`;
}

async function useHost(reasons) {
  showDecision("The host's engine answers, not this tab, because:", reasons, "host");
  const response = await fetch("/v1/models");
  if (response.ok) {
    const { data } = await response.json();
    // A seat, not the whole council ("council", "council:<mode>"): one model answers, as here.
    state.hostModel = data.map((model) => model.id).find((id) => !/^council(:|$)/.test(id)) ?? null;
  }
  if (!state.hostModel) {
    $("answered-by").textContent = "The hub has no seat ready to answer.";
    return;
  }
  $("answered-by").textContent = `Answers come from the host's seat ${state.hostModel}.`;
  enableChat();
}

async function* hostStream(messages) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: state.hostModel, messages, stream: true, max_tokens: MAX_TOKENS }),
  });
  if (!response.ok || !response.body) throw new Error(`the host answered ${response.status}`);
  for await (const line of lines(response.body)) {
    const data = line.startsWith("data:") ? line.slice(5).trim() : "";
    if (!data || data === "[DONE]") continue;
    const text = JSON.parse(data).choices?.[0]?.delta?.content;
    if (text) yield text;
  }
}

// The tab's model writes into `write` while it holds its turn (see withModel).
function tabAnswer(messages, write) {
  return withModel(async (wllama) => {
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
    return state.model.name || state.model.path;
  });
}

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
      for await (const text of hostStream(messages)) reply.textContent += text;
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
    const manager = state.wllama?.modelManager ?? new Wllama(WASM, { logger: quiet }).modelManager;
    await manager.clear();
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
  const decision = decide(facts, await candidates());
  if (decision.where === "host") {
    await useHost(decision.reasons);
    return;
  }
  showDecision("Loading the model into this tab…", decision.reasons, "loading");
  const startLarger = decision.larger ? offerLarger(decision) : null;
  try {
    await runInTab(facts, decision);
  } catch (error) {
    await useHost([`the model could not load in this tab (${why(error)})`]);
    return;
  }
  // A hook for benchmarks/browser_seat.py: one greedy chat completion of up to `maxTokens`
  // tokens (end of text ignored) and llama.cpp's own timings, to compare with llama-server's.
  window.councilSeat = {
    async generate(prompt, maxTokens) {
      return withModel(async (wllama) => {
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
          model: state.model?.path ?? null,
          usage: answer.usage ?? null,
          timings: answer.timings ?? null,
        };
      });
    },
  };
  showDecision("Runs in this tab.", decision.reasons, "tab");
  $("answered-by").textContent = "Answers come from the model in this tab; nothing leaves this device.";
  document.body.dataset.answeringWith = decision.model.name || decision.model.path;
  enableChat();
  offerToJoin(withModel, state.wllama.getLoadedContextInfo().n_ctx, () => new URL(browserUrl(state.model)).pathname);
  startLarger?.(facts);
}

// "Fetch a larger model in the background": on by default, and this browser remembers the
// visitor's choice, so that unticking it once keeps later visits to the small model.
const FETCH_LARGER = "council.seat.fetch-larger";

function offerLarger(decision) {
  const toggle = $("fetch-larger");
  $("larger-choice").hidden = false;
  toggle.checked = localStorage.getItem(FETCH_LARGER) !== "off";
  toggle.disabled = false;
  let started = false;
  let loaded = null; // the facts, once the small model answers
  const begin = () => {
    if (started || !toggle.checked || !loaded) return;
    started = true;
    fetchLarger(loaded, decision).catch((error) => {
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

start();
