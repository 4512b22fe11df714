// council's service worker: keeps the app shell on hand so the page starts even when the
// network (or the hub it came from) is unreachable.
//
// Served at /sw.js so its scope can be the whole origin. Only GET requests for the shell and
// for /static/ files are handled, network-first: a fresh copy wins whenever the hub answers
// (so a change shows on reload) and refreshes the cache; the cached copy is the fallback.
// Everything else (/api/, /v1/, POSTs, event streams) never reaches respondWith.
//
// Bump VERSION to drop every cache an older worker made.

const VERSION = "council-shell-2";

const SHELL = [
  "/",
  "/static/app.js",
  "/static/app.css",
  "/static/api.js",
  "/static/markdown.js",
  "/static/lib/dom.js",
  "/static/lib/sse.js",
  "/static/round.js",
  "/static/devices.js",
  "/static/models.js",
  "/static/evals.js",
  "/static/pwa.js",
  "/static/icon.svg",
  "/static/manifest.webmanifest",
  "/static/icons/icon-192.png",
  "/static/vendor/marked.esm.js",
  "/static/vendor/purify.es.mjs",
];

const SHELL_PATHS = new Set(SHELL);

async function cacheShell() {
  const cache = await caches.open(VERSION);
  // One request at a time rather than cache.addAll, so one missing file never fails the install.
  await Promise.all(
    SHELL.map(async (path) => {
      try {
        const response = await fetch(path, { cache: "reload" });
        if (response.ok) {
          await cache.put(path, response);
        }
      } catch {
        // Unreachable right now: the network-first handler will cache it on a later visit.
      }
    }),
  );
}

async function dropOldCaches() {
  const names = await caches.keys();
  await Promise.all(names.filter((name) => name !== VERSION).map((name) => caches.delete(name)));
}

function handles(request) {
  if (request.method !== "GET") return false;
  if (request.headers.has("range")) return false;
  const accept = request.headers.get("accept") || "";
  if (accept.includes("text/event-stream")) return false;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return false;
  return SHELL_PATHS.has(url.pathname) || url.pathname.startsWith("/static/");
}

async function remember(request, response) {
  try {
    const cache = await caches.open(VERSION);
    await cache.put(request, response);
  } catch {
    // A full or unavailable cache only costs the offline copy, never the page.
  }
}

async function networkFirst(event) {
  const { request } = event;
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") {
      event.waitUntil(remember(request, response.clone()));
    }
    return response;
  } catch {
    const cached =
      (await caches.match(request, { cacheName: VERSION })) ||
      (await caches.match(new URL(request.url).pathname, { cacheName: VERSION }));
    return cached || Response.error();
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(cacheShell().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(dropOldCaches().then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  if (handles(event.request)) {
    event.respondWith(networkFirst(event));
  }
});
