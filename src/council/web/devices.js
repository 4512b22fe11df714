// The Devices panel: paired phones (rename, revoke), pairing a new one with a QR code, and the
// phones that wait for the owner's approval. Its routes exist on the laptop's own listener only.
import { api } from "/static/api.js";
import { $, el, errorLine } from "/static/lib/dom.js";

const POLL_MS = 2000;
const state = {
  devices: [], // as /api/devices lists them
  shown: "", // the device list last rendered, as JSON: unchanged lists are not re-rendered
  pending: "", // likewise for the claims waiting for approval
  invite: null, // the pairing code on screen: { ...POST /api/pair, known: Set of device ids }
  renaming: false,
  poll: null,
  tick: null,
};

const when = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "never");

// Errors land in the panel, never as an unhandled rejection.
const { guarded } = errorLine("devices-error");

// ---- the list -----------------------------------------------------------------------------
async function loadDevices() {
  const { devices, lan } = await api("GET", "/api/devices");
  state.devices = devices;
  renderLan(lan);
  noticePaired();
  const shown = JSON.stringify(devices);
  if (shown !== state.shown && !state.renaming) {
    state.shown = shown;
    renderDevices();
  }
}

function renderLan(lan) {
  const note = $("lan-note");
  note.className = lan.serving ? "hint" : "banner";
  note.replaceChildren(
    ...(lan.serving
      ? ["Phones reach this hub at ", el("code", { text: lan.url }), "."]
      : ["Phones can't reach this hub yet: start it with ", el("code", { text: "council up --lan" }), "."]),
  );
}

function renderDevices() {
  $("devices-empty").hidden = state.devices.length > 0;
  $("devices-table")
    .querySelector("tbody")
    .replaceChildren(
      ...state.devices.map((device) => {
        const revoked = device.revoked_at !== null;
        return el(
          "tr",
          { "data-device": device.id, "data-state": revoked ? "revoked" : "active" },
          el("th", { scope: "row", class: "device-name", text: device.name }),
          el("td", { text: when(device.last_seen_at) }),
          el("td", { text: device.last_address || "–" }),
          el("td", {
            class: revoked ? "state state-failed" : "state state-healthy",
            text: revoked ? `revoked ${when(device.revoked_at)}` : "active",
          }),
          el(
            "td",
            { class: "row-actions" },
            el("button", {
              type: "button",
              text: "Rename",
              "aria-label": `Rename ${device.name}`,
              onclick: (event) => renameDevice(device, event.target.closest("tr")),
            }),
            revoked
              ? null
              : el("button", {
                  type: "button",
                  class: "danger",
                  text: "Revoke",
                  "aria-label": `Revoke ${device.name}`,
                  onclick: (event) => revokeDevice(device, event.target),
                }),
          ),
        );
      }),
    );
}

function renameDevice(device, row) {
  const cell = row.querySelector(".device-name");
  const input = el("input", {
    class: "name-input",
    value: device.name,
    maxlength: "60",
    "aria-label": `New name for ${device.name}`,
  });
  state.renaming = true;
  cell.replaceChildren(input);
  input.focus();
  input.select();
  const finish = guarded(async (save) => {
    if (!input.isConnected || !state.renaming) return;
    state.renaming = false;
    const name = input.value.trim();
    if (save && name && name !== device.name) {
      await api("PATCH", `/api/devices/${device.id}`, { name });
      await refresh();
    } else {
      cell.textContent = device.name;
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") finish(true);
    if (event.key === "Escape") {
      event.stopPropagation(); // Escape here cancels the rename, not the panel
      finish(false);
    }
  });
  input.addEventListener("blur", () => finish(true));
}

// The first press arms the button; a second within four seconds revokes.
const armed = new WeakMap();
const revokeDevice = guarded(async (device, button) => {
  if (!armed.has(button)) {
    button.textContent = "Confirm revoke";
    button.setAttribute("aria-label", `Confirm: revoke ${device.name}`);
    armed.set(
      button,
      setTimeout(() => {
        armed.delete(button);
        button.textContent = "Revoke";
        button.setAttribute("aria-label", `Revoke ${device.name}`);
      }, 4000),
    );
    return;
  }
  clearTimeout(armed.get(button));
  armed.delete(button);
  await api("DELETE", `/api/devices/${device.id}`);
  await refresh();
});

async function loadAudit() {
  if (!$("devices-audit").open) return;
  const { events } = await api("GET", "/api/devices/audit?limit=20");
  $("audit-list").replaceChildren(
    ...events.map((event) =>
      el(
        "li",
        {},
        el("span", { class: "audit-at", text: when(event.at) }),
        " ",
        el("span", { class: "audit-event", text: event.event.replace("_", " ") }),
        event.detail ? ` · ${event.detail}` : "",
        event.address ? ` · ${event.address}` : "",
      ),
    ),
  );
  if (!events.length) $("audit-list").append(el("li", { class: "hint", text: "Nothing yet." }));
}

async function refresh() {
  await Promise.all([loadDevices(), loadPending(), loadAudit()]);
}

// ---- pairing a phone ----------------------------------------------------------------------
const pair = guarded(async (event) => {
  event.preventDefault();
  const form = $("pair-options");
  const body = { confirm: form.elements.confirm.checked }; // the hub's default lifetime
  const name = form.elements.name.value.trim();
  if (name) body.name = name;
  const known = new Set(state.devices.map((device) => device.id));
  const asked = Date.now(); // the countdown runs on this clock, whatever the hub's says
  const invite = await api("POST", "/api/pair", body);
  state.invite = { ...invite, known, done: false, deadline: asked + invite.ttl * 1000 };
  $("pair-qr").src = invite.qr;
  $("pair-qr").hidden = false;
  $("pair-url").value = invite.url;
  $("pair-fingerprint").textContent = invite.fingerprint;
  $("pair-comparison").hidden = !invite.comparison;
  $("pair-comparison").replaceChildren(
    ...(invite.comparison
      ? [
          "The phone will show ",
          el("strong", { class: "comparison", text: invite.comparison }),
          ". Approve it below only if it does.",
        ]
      : []),
  );
  setResult("");
  $("pairing-live").hidden = false;
  $("pairing").hidden = false;
  countdown();
  clearInterval(state.tick);
  state.tick = setInterval(countdown, 1000);
  $("pairing").scrollIntoView({ block: "nearest" });
});

function countdown() {
  const invite = state.invite;
  if (!invite || invite.done) return;
  const left = Math.max(0, Math.ceil((invite.deadline - Date.now()) / 1000));
  const minutes = Math.floor(left / 60);
  const seconds = String(left % 60).padStart(2, "0");
  $("pair-expiry").textContent = `Expires in ${minutes}:${seconds}`;
  if (!left) {
    endInvite();
    setResult("This code has expired.", "bad");
  }
}

function setResult(text, tone = "good") {
  $("pair-result").textContent = text;
  $("pair-result").dataset.tone = tone;
}

// A device the list did not have when the code was minted is the phone that used it.
function noticePaired() {
  const invite = state.invite;
  if (!invite || invite.done) return;
  const fresh = state.devices.find((device) => !invite.known.has(device.id));
  if (!fresh) return;
  endInvite();
  setResult(`Paired ${fresh.name}.`);
}

function endInvite() {
  state.invite.done = true;
  clearInterval(state.tick);
  $("pair-qr").hidden = true;
  $("pair-qr").removeAttribute("src");
  $("pair-url").value = "";
  $("pairing-live").hidden = true; // the code is spent or dead: nothing left to scan or copy
}

function closeInvite() {
  if (state.invite && !state.invite.done) endInvite();
  state.invite = null;
  $("pairing").hidden = true;
}

async function copyUrl() {
  const button = $("copy-url");
  const url = $("pair-url").value;
  if (!url) return;
  try {
    await navigator.clipboard.writeText(url);
    button.textContent = "Copied";
  } catch {
    $("pair-url").select(); // no clipboard permission: leave it selected for Ctrl+C
    button.textContent = document.execCommand("copy") ? "Copied" : "Press Ctrl+C";
  }
  setTimeout(() => {
    button.textContent = "Copy";
  }, 2000);
}

// ---- phones waiting for approval ----------------------------------------------------------
async function loadPending() {
  const { pending } = await api("GET", "/api/pairings");
  const key = JSON.stringify(pending);
  if (key === state.pending) return;
  state.pending = key;
  $("pending-section").hidden = !pending.length;
  $("pending").replaceChildren(
    ...pending.map((claim) =>
      el(
        "li",
        { class: "pending-claim", "data-comparison": claim.comparison },
        el("span", { class: "pending-who", text: `${claim.name} at ${claim.address}` }),
        " shows ",
        el("strong", { class: "comparison", text: claim.comparison }),
        el(
          "span",
          { class: "pending-actions" },
          el("button", {
            type: "button",
            class: "primary",
            text: "Approve",
            "aria-label": `Approve ${claim.name} showing ${claim.comparison}`,
            onclick: () => decide(claim, "confirm"),
          }),
          el("button", {
            type: "button",
            class: "danger",
            text: "Reject",
            "aria-label": `Reject ${claim.name} showing ${claim.comparison}`,
            onclick: () => decide(claim, "reject"),
          }),
        ),
      ),
    ),
  );
}

const decide = guarded(async (claim, verdict) => {
  await api("POST", `/api/pairings/${encodeURIComponent(claim.comparison)}/${verdict}`);
  if (state.invite?.comparison === claim.comparison) {
    if (verdict === "reject") endInvite();
    setResult(
      verdict === "confirm" ? `Approved ${claim.name}: it pairs on its next try.` : `Rejected ${claim.name}.`,
      verdict === "confirm" ? "good" : "bad",
    );
  }
  await refresh();
});

// ---- the panel ----------------------------------------------------------------------------
const poll = guarded(async () => {
  await loadPending();
  if (state.invite && !state.invite.done) await loadDevices(); // notices the phone that paired
});

export function openDevices() {
  const panel = $("devices-panel");
  if (!panel.hidden) return;
  panel.hidden = false;
  $("show-devices").setAttribute("aria-expanded", "true");
  panel.querySelector("#pair-options button[type=submit]").focus();
  guarded(refresh)();
  state.poll = setInterval(poll, POLL_MS);
}

export function closeDevices() {
  const panel = $("devices-panel");
  if (panel.hidden) return;
  panel.hidden = true;
  $("show-devices").setAttribute("aria-expanded", "false");
  clearInterval(state.poll);
  closeInvite();
  $("show-devices").focus();
}

export function wireDevices() {
  $("show-devices").setAttribute("aria-expanded", "false");
  $("close-devices").addEventListener("click", closeDevices);
  $("devices-panel").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDevices();
  });
  $("pair-options").addEventListener("submit", pair);
  $("new-code").addEventListener("click", () => $("pair-options").requestSubmit());
  $("done-pairing").addEventListener("click", closeInvite);
  $("copy-url").addEventListener("click", copyUrl);
  $("devices-audit").addEventListener("toggle", guarded(loadAudit));
}
