// The phone's side of pairing: the one-time code arrives in the URL's fragment (never sent to a
// server, so never in a log), is exchanged once for a device token, and is then wiped from the
// address bar and history.

// Its own `$`, not /static/lib/dom.js: a phone not yet paired may fetch only the pairing routes
// (server/gate.py's PUBLIC), so this module imports nothing.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
const code = params.get("code");
history.replaceState(null, "", "/pair");

function fail(message) {
  $("pair-status").hidden = true;
  $("pair-error").hidden = false;
  $("pair-error").textContent = message;
}

async function exchange(name) {
  const response = await fetch("/pair/exchange", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code, name }),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 202) {
    $("comparison").hidden = false;
    $("comparison").textContent = `Check that the laptop shows ${data.comparison}, and approve it there.`;
    setTimeout(() => exchange(name), 2000);
    return;
  }
  if (!response.ok) return fail(data?.error?.message || `Pairing failed (HTTP ${response.status}).`);
  $("pair-form").hidden = true;
  $("comparison").hidden = true;
  $("pair-status").textContent = `Paired as ${data.name}.`;
  $("paired").hidden = false;
  $("base-url").textContent = `${location.origin}/v1`;
  $("token").textContent = data.token;
}

if (!code) {
  fail("This page needs the link from a pairing QR code: run `council pair` on the laptop.");
} else {
  $("pair-status").textContent = "Name this device, then pair.";
  $("pair-form").hidden = false;
  $("device-name").value = /iPhone|iPad/.test(navigator.userAgent)
    ? "iPhone"
    : /Android/.test(navigator.userAgent)
      ? "Android phone"
      : "Browser";
  $("pair-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("pair-form").querySelector("button").disabled = true;
    exchange($("device-name").value.trim()).catch((error) => fail(error.message));
  });
}
