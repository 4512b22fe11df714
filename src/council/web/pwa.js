// Installs council's service worker, which keeps the app shell cached for offline starts.
//
// The worker is served at /sw.js (not /static/sw.js) so that it may control the whole origin.
// Service workers need a secure context: http://127.0.0.1 and http://localhost qualify, a plain
// http:// LAN address does not, and there the page simply runs without one.

export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) {
    return null;
  }
  try {
    return await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  } catch (error) {
    console.warn("council: offline support is unavailable:", error);
    return null;
  }
}
