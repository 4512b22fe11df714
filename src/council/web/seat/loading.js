// wllama in this tab: making one, finding a model in this browser's storage, and loading or
// downloading one without ever hanging at "Loading…".
//
// wllama and its WebAssembly come from the hub (/seat/vendor/, copied from npm by `make web`),
// the compat build included, so nothing is ever fetched from a CDN. Downloaded models stay in
// the browser's origin-private file system (wllama's cache) until "Clear downloaded models".

import { Wllama } from "/seat/vendor/index.js";

// One slot with the whole context: the tab runs one completion at a time (model.js), and
// wllama's default of 4 slots sharing the cache leaves old prompts in cells a long new prompt
// needs (llama.cpp then logs "failed to restore state" and starts over).
const CONTEXT = { n_ctx: 1024, n_parallel: 1 };

const quiet = { debug() {}, log() {}, warn: console.warn.bind(console), error: console.error.bind(console) };

// wllama's worker starts from a blob URL, where only absolute URLs lead anywhere.
const here = (path) => new URL(path, location.href).href;

export function newWllama() {
  const wllama = new Wllama({ default: here("/seat/vendor/wllama.wasm") }, { logger: quiet, parallelDownloads: 1 });
  // The hub's copy, never the CDN default.
  wllama.setCompat({ wasm: here("/seat/vendor/compat/wllama.wasm"), worker: here("/seat/vendor/compat/wllama.js") });
  return wllama;
}

export async function isCached(wllama, url) {
  return (await wllama.modelManager.getModels()).some((model) => model.url === url);
}

// Bytes the network delivered for the model, from the browser's own resource timing: a model
// read back from the origin-private file system costs none (there is no request at all).
export function downloadedBytes(urls) {
  return performance
    .getEntriesByType("resource")
    .filter((entry) => urls.includes(entry.name))
    .reduce((sum, entry) => sum + entry.transferSize, 0);
}

// --- Loads that stall -------------------------------------------------------------------------

// A download that stops delivering (the hub went away, the network dropped) or a load that never
// ends (a WebAssembly abort can leave wllama's promise unsettled) must not leave the page at
// "Loading…". The watch gives up after STALL_MS without a byte while downloading, or after
// loadMs(size) once every byte is in (or when reading from storage), and the page moves on.
// Tests shorten STALL_MS through `window.councilSeatStallMs`, set before the page loads.
const STALL_MS = window.councilSeatStallMs ?? 60_000;
const loadMs = (size) => STALL_MS + (size / (20 * 1024 ** 2)) * 1000; // 20 MiB/s into memory

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

// --- Loading and downloading ------------------------------------------------------------------

// Loads `model` from `url` into `wllama`: read back from this browser's storage when `cached`,
// else downloaded from the hub, telling `progress(loaded, total)` as bytes arrive. A load that
// fails or stalls lets wllama go (as far as a wedged worker allows) and rejects.
export async function loadModel(wllama, url, model, { threads, cached, progress = () => {} }) {
  const watch = new LoadWatch(model.size_bytes, cached);
  const load = wllama.loadModelFromUrl(url, {
    n_threads: threads,
    ...CONTEXT,
    signal: watch.abort.signal,
    progressCallback: ({ loaded, total }) => {
      watch.progress(loaded, total);
      progress(loaded, total);
    },
  });
  try {
    await watch.run(load);
  } catch (error) {
    wllama.exit().catch(() => {}); // frees what it can; a wedged worker may never answer
    throw error;
  }
}

// Downloads `model` from `url` into this browser's storage only, for a later loadModel.
export async function downloadModel(wllama, url, model, progress) {
  const watch = new LoadWatch(model.size_bytes, false);
  await watch.run(
    wllama.modelManager.downloadModel(url, {
      signal: watch.abort.signal,
      progressCallback: ({ loaded, total }) => {
        watch.progress(loaded, total);
        progress(loaded, total);
      },
    }),
  );
}
