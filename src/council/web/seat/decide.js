// Whether a model runs in this tab, which one, and why: pure functions of the browser's facts
// (capabilities.js) and the hub's catalog (/api/models), so tests can ask for any browser.

import { humanSize } from "/static/lib/dom.js";

// navigator.deviceMemory counts binary gigabytes, so the budget does too (shown in decimal).
const GIB = 1024 ** 3;

// How many bytes of model this tab may hold: half the device's memory (when the browser says),
// at most what 32-bit WebAssembly can address in compat mode, and what storage has left.
export function budget(facts) {
  const memory = facts.deviceMemoryGb ? (facts.deviceMemoryGb * GIB) / 2 : 2 * GIB;
  const address = facts.compat ? 2 * GIB : 16 * GIB;
  return Math.min(memory, address, facts.free || Infinity);
}

export function threadsFor(facts) {
  // wllama's own default (half the cores) is one thread on a two-core laptop; leave one core
  // for the page instead, and never fewer than two threads when threads are possible.
  return Math.max(2, Math.min(8, facts.cores - 1));
}

export function label(model) {
  return `${model.name || model.path} · ${humanSize(model.size_bytes)}`;
}

// /api/models lists each file's content-addressed URL (/models/<digest>/<name>) once the hub
// has hashed it. A split model's `url` is its first shard's, and the hub serves every shard
// under that digest too, so wllama finds the rest by the -0000N-of-0000M.gguf naming.
// Resolved against `base` (the page's address): wllama's worker can't resolve a relative URL,
// and its cache knows a model by this absolute one.
export function browserUrl(model, base) {
  return typeof model.url === "string" ? new URL(model.url, base).href : null;
}

// The shard URLs wllama fetches for a model: one, or a split set's under the first's digest.
export function fetchedUrls(url, model) {
  const base = url.slice(0, url.lastIndexOf("/") + 1);
  return (model.shards?.length ?? 0) > 1 ? model.shards.map((path) => base + path.split("/").pop()) : [url];
}

// `catalog`: the hub's valid models, smallest first. `asked`: the catalog path the address
// names (/seat/?model=<path>), or null. The answer says where the model runs, and why; for the
// tab, also which model answers first and which larger one (or null) takes over later.
export function decide(facts, catalog, asked = null) {
  const reasons = [];
  const models = catalog.filter((model) => typeof model.url === "string");
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
    reasons.push(`no model on the hub fits in this tab's ${humanSize(room)}`);
  }
  if (reasons.length > 0) return { where: "host", reasons };
  // The smallest (ready soonest), unless the address names one.
  const named = fits.find((model) => model.path === asked);
  const model = named ?? fits[0];
  const notes = [
    `this page is cross-origin isolated, so WebAssembly runs on ${threadsFor(facts)} threads`,
    `${named ? "the model asked for" : "the smallest model"}, ${label(model)}, fits in this tab's ${humanSize(room)}`,
  ];
  // Hybrid: the smallest answers at once; the largest that also fits (in memory, and beside the
  // small one in storage) downloads meanwhile and takes over between answers. Not when the
  // address named a model: that is the visitor's choice.
  const stored = (candidate) => !facts.free || model.size_bytes + candidate.size_bytes <= facts.free;
  const larger = named ? null : (fits.filter((m) => m.size_bytes > model.size_bytes && stored(m)).at(-1) ?? null);
  if (named) {
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
  return { where: "tab", reasons: notes, model, larger };
}
