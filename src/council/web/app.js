// The council page: conversations on the left, the current one in the middle, the composer below.
import { ApiError, api, streamRound } from "/static/api.js";
import { closeDevices, openDevices, wireDevices } from "/static/devices.js";
import { closeEvals, openEvals, wireEvals } from "/static/evals.js";
import { $, el, humanSize } from "/static/lib/dom.js";
import { closeModels, openModels, watchPulls, wireModels } from "/static/models.js";
import { registerServiceWorker } from "/static/pwa.js";
import { RoundView } from "/static/round.js";

const state = { conversation: null, seats: [], defaults: null, running: null };
const EMPTY = $("empty");

// ---- conversations ------------------------------------------------------------------------
async function loadConversations() {
  const search = $("search").value.trim();
  const query = search ? `?search=${encodeURIComponent(search)}` : "";
  const { conversations } = await api("GET", `/api/conversations${query}`);
  $("conversations").replaceChildren(
    ...conversations.map((c) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "conversation",
            "aria-current": c.id === state.conversation?.id ? "true" : null,
            onclick: () => openConversation(c.id),
          },
          el("span", { class: "conversation-title", text: c.title || "Untitled" }),
          el("span", { class: "conversation-date", text: c.updated_at.slice(0, 16).replace("T", " ") }),
        ),
      ),
    ),
  );
  if (!conversations.length) {
    $("conversations").append(el("li", { class: "hint", text: search ? "Nothing found." : "No conversations yet." }));
  }
}

async function openConversation(id) {
  const conversation = await api("GET", `/api/conversations/${id}`);
  showConversation(conversation);
  closeSidebar();
}

function showConversation(conversation) {
  state.conversation = conversation;
  $("title").textContent = conversation ? conversation.title || "Untitled" : "New conversation";
  $("conversation-actions").hidden = !conversation;
  $("thread").replaceChildren();
  if (conversation) {
    $("export-md").href = `/api/conversations/${conversation.id}/export?format=md`;
    $("export-json").href = `/api/conversations/${conversation.id}/export?format=json`;
    for (const message of conversation.messages) {
      if (message.mode === "history") continue;
      $("thread").append(RoundView.fromStored(message, seatLabels()).element);
    }
  } else {
    $("thread").append(EMPTY);
  }
  loadConversations();
}

async function renameConversation() {
  const heading = $("title");
  const input = el("input", { class: "title-input", value: heading.textContent, "aria-label": "Conversation title" });
  heading.replaceChildren(input);
  input.focus();
  input.select();
  const finish = async (save) => {
    if (!input.isConnected) return;
    const title = input.value.trim();
    if (save && title && title !== state.conversation.title) {
      state.conversation = await api("PATCH", `/api/conversations/${state.conversation.id}`, { title });
      loadConversations();
    }
    heading.textContent = state.conversation.title;
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") finish(true);
    if (event.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
}

let deleteArmed = null;
async function deleteConversation() {
  const button = $("delete");
  if (!deleteArmed) {
    button.textContent = "Confirm delete";
    deleteArmed = setTimeout(() => {
      button.textContent = "Delete";
      deleteArmed = null;
    }, 4000);
    return;
  }
  clearTimeout(deleteArmed);
  deleteArmed = null;
  button.textContent = "Delete";
  await api("DELETE", `/api/conversations/${state.conversation.id}`);
  showConversation(null);
}

// ---- asking -------------------------------------------------------------------------------
function chosenSeats() {
  return [...$("seat-choice").querySelectorAll("input:checked")].map((box) => box.value);
}

function showComposerError(message) {
  $("composer-error").hidden = !message;
  $("composer-error").textContent = message || "";
}

function ask(event) {
  event.preventDefault();
  send($("question").value.trim(), { typed: true });
}

// A round's "Ask again": its question once more, in this conversation, with the options chosen
// now. Whatever is typed in the composer meanwhile stays there.
function askAgain(event) {
  send(event.detail.question, { typed: false });
}

async function send(question, { typed }) {
  if (!question || state.running) return;
  showComposerError("");
  const seats = chosenSeats();
  if (!seats.length) return showComposerError("Choose at least one seat.");
  const body = { question, mode: $("mode").value, seats, chair: $("chair").value || undefined };
  try {
    if (!state.conversation) $("thread").replaceChildren();
    const view = new RoundView(question, { mode: body.mode, seats, chair: body.chair, labels: seatLabels() });
    $("thread").append(view.element);
    follow(view);
    if (typed) $("question").value = "";
    setRunning({ view, controller: new AbortController(), messageId: null });
    await streamRound(
      state.conversation?.id,
      body,
      (type, data) => view.handle(type, data),
      (messageId, conversationId) => {
        state.running.messageId = messageId;
        state.conversation = state.conversation || { id: conversationId };
      },
      state.running.controller.signal,
    );
    if (unfollow()) view.land();
  } catch (error) {
    if (error.name !== "AbortError") showComposerError(error.message);
    if (state.running?.view && error instanceof ApiError) state.running.view.element.remove();
  } finally {
    unfollow();
    setRunning(null);
    const id = state.conversation?.id;
    if (id) {
      state.conversation = await api("GET", `/api/conversations/${id}`).catch(() => state.conversation);
      $("title").textContent = state.conversation.title;
      $("conversation-actions").hidden = false;
      $("export-md").href = `/api/conversations/${id}/export?format=md`;
      $("export-json").href = `/api/conversations/${id}/export?format=json`;
      loadConversations();
    }
  }
}

function setRunning(running) {
  state.running = running;
  $("send").hidden = Boolean(running);
  $("stop").hidden = !running;
  $("question").disabled = Boolean(running);
  for (const button of $("thread").querySelectorAll(".ask-again")) button.disabled = Boolean(running);
  if (!running) $("question").focus();
}

// ---- following a running round ------------------------------------------------------------
// A real round on a CPU takes minutes. While it is written the thread keeps its newest text in
// view, unless the person scrolls up to read something: then it stays where they put it until
// they scroll back to the bottom.
const following = { on: false, top: 0, observer: null };

function follow(view) {
  following.on = true;
  following.observer?.disconnect();
  // Called after each layout in which the round grew, before it is painted.
  following.observer = new ResizeObserver(() => {
    if (following.on && view.element.isConnected) scrollToEnd();
  });
  following.observer.observe(view.element);
  scrollToEnd();
}

// Whether the person was still following when the round ended.
function unfollow() {
  const was = Boolean(following.observer) && following.on;
  following.observer?.disconnect();
  following.observer = null;
  return was;
}

function scrollToEnd() {
  const thread = $("thread");
  thread.scrollTop = thread.scrollHeight;
  following.top = thread.scrollTop;
}

// Growing text never moves scrollTop, so a smaller one is the person scrolling up. At the bottom
// (also where a shrinking thread clamps it) the page follows again, and on the way down near
// it: a smooth scroll to the bottom ends short of it when text came in meanwhile.
const NEAR_BOTTOM = 48;

function onThreadScroll() {
  const thread = $("thread");
  const gap = thread.scrollHeight - thread.scrollTop - thread.clientHeight;
  const down = thread.scrollTop > following.top;
  if (gap <= 2 || (down && gap < NEAR_BOTTOM)) following.on = true;
  else if (thread.scrollTop < following.top - 1) following.on = false;
  following.top = thread.scrollTop;
}

async function stop() {
  const running = state.running;
  if (!running) return;
  $("stop").disabled = true;
  try {
    if (running.messageId) await api("POST", `/api/messages/${running.messageId}/stop`);
    else running.controller.abort();
  } catch {
    running.controller.abort();
  } finally {
    $("stop").disabled = false;
  }
}

// ---- seats and defaults -------------------------------------------------------------------
async function loadSeats() {
  const [{ seats }, defaults] = await Promise.all([api("GET", "/api/seats"), api("GET", "/api/council/defaults")]);
  state.seats = seats;
  state.defaults = state.defaults || defaults;
  renderComposerOptions();
  renderSeatsTable();
}

function renderComposerOptions() {
  const defaults = state.defaults;
  const shown = new Set([...$("seat-choice").querySelectorAll("input")].map((box) => box.value));
  const previous = new Set(chosenSeats());
  // A seat the page has not shown before is picked as the defaults say (none listed: all but
  // a paired device's tabs, which answer the laptop's rounds only when they are picked).
  const byDefault = (seat) => (defaults.seats.length ? defaults.seats.includes(seat.name) : !seat.from_device);
  const picked = (seat) => (shown.has(seat.name) ? previous.has(seat.name) : byDefault(seat));
  $("seat-choice").replaceChildren(
    el("legend", { text: "Seats" }),
    ...state.seats.map((seat) =>
      el(
        "label",
        { class: "chip" },
        el("input", { type: "checkbox", value: seat.name, checked: picked(seat) }),
        seat.name,
        seat.kind === "browser" ? el("span", { class: "kind", text: seat.label }) : null,
      ),
    ),
  );
  const chair = $("chair").value || defaults.chair;
  $("chair").replaceChildren(
    el("option", { value: "", text: "first seat" }),
    ...state.seats.map((seat) => el("option", { value: seat.name, text: seat.name, selected: seat.name === chair })),
  );
  if (!$("mode").dataset.touched) $("mode").value = defaults.mode;
}

// Browser seats by name → "browser (this tab)" / "browser (phone)", for the round panes.
function seatLabels() {
  return Object.fromEntries(
    state.seats.filter((seat) => seat.kind === "browser").map((seat) => [seat.name, seat.label]),
  );
}

function renderSeatsTable() {
  $("seats-table")
    .querySelector("tbody")
    .replaceChildren(
      ...state.seats.map((seat) =>
        el(
          "tr",
          { "data-seat": seat.name, "data-state": seat.state },
          el(
            "th",
            { scope: "row" },
            seat.name,
            seat.demo ? el("span", { class: "tag", text: "demo model: noise" }) : null,
            seat.base_model ? el("span", { class: "tag", text: "base model: not for chat" }) : null,
            el("span", { class: "kind", text: seat.label || seat.kind }),
          ),
          el(
            "td",
            { class: "seat-model" },
            seat.model,
            seatStyle(seat) ? el("span", { class: "reason", text: seatStyle(seat) }) : null,
          ),
          // data-label: a phone shows the seats as cards (app.css), each fact named by its column.
          el("td", { class: "seat-fact", "data-label": "Size", text: humanSize(seat.size_bytes) }),
          el("td", { class: "seat-fact", "data-label": "Quant", text: seat.quantization || "–" }),
          el("td", {
            class: "seat-fact",
            "data-label": "Context",
            text: seat.ctx_size ? String(seat.ctx_size) : "–",
          }),
          el(
            "td",
            { class: `state state-${seat.state}` },
            seat.state,
            seat.reason ? el("span", { class: "reason", text: seat.reason }) : null,
          ),
          el("td", {
            class: "seat-fact",
            "data-label": "Last answer",
            text: seat.tokens_per_second ? `${seat.tokens_per_second.toFixed(0)} tok/s` : "–",
          }),
          el(
            "td",
            { class: "seat-actions" },
            // A browser seat leaves when its tab closes, a peer's when the peer is forgotten.
            seat.kind === "browser" || seat.kind === "peer"
              ? null
              : el("button", {
                  type: "button",
                  class: "danger owner-only",
                  "aria-label": `Remove ${seat.name}`,
                  text: "Remove",
                  onclick: () => removeSeat(seat.name),
                }),
          ),
        ),
      ),
    );
  renderLocalModels();
}

async function renderLocalModels() {
  const { models } = await api("GET", "/api/models");
  // A model may be seated again (another name, other sampling): one model's seats share one engine.
  const usable = models.filter((model) => model.valid);
  $("local-model").replaceChildren(
    ...usable.map((model) =>
      el("option", {
        value: model.path,
        text: [
          model.path,
          model.demo ? " (demo)" : "",
          !model.demo && !model.has_chat_template ? " (base model: not for chat)" : "",
          ` · ${humanSize(model.size_bytes)}`,
          model.seats.length ? ` · seated ${model.seats.length}×` : "",
        ].join(""),
      }),
    ),
  );
  $("local-form").querySelector("button").disabled = !usable.length;
  $("seats-hint").textContent = usable.length
    ? ""
    : "No model on the stick can be seated. Copy GGUF files into the data folder's models/ folder.";
}

// What a local seat does differently from the round: its own sampling and instructions.
function seatStyle(seat) {
  const parts = [];
  if (seat.temperature !== null && seat.temperature !== undefined) parts.push(`temperature ${seat.temperature}`);
  if (seat.seed !== null && seat.seed !== undefined) parts.push(`seed ${seat.seed}`);
  if (seat.has_system_prompt) parts.push("own system prompt");
  return parts.join(" · ");
}

// Other hubs: pairing with one from its link, and forgetting one; their seats follow.
async function loadPeers() {
  const { peers } = await api("GET", "/api/peers");
  $("peer-list").replaceChildren(
    ...peers.map((peer) =>
      el(
        "li",
        { "data-peer": peer.name, "data-state": peer.state },
        el("strong", { text: peer.name }),
        ` ${peer.url} · `,
        peer.state === "reachable"
          ? `${peer.seats.length} seat${peer.seats.length === 1 ? "" : "s"}`
          : el("span", { class: "reason", text: peer.reason }),
        el("button", {
          type: "button",
          class: "danger",
          "aria-label": `Forget ${peer.name}`,
          text: "Forget",
          onclick: () => forgetPeer(peer.name),
        }),
      ),
    ),
  );
}

async function addPeer(event) {
  event.preventDefault();
  const form = event.target;
  const data = Object.fromEntries(new FormData(form));
  try {
    await api("POST", "/api/peers", { url: data.url, ...(data.name ? { name: data.name } : {}) });
    form.reset();
    $("peer-error").hidden = true;
  } catch (error) {
    $("peer-error").hidden = false;
    $("peer-error").textContent = error.message;
  }
  await Promise.all([loadPeers(), loadSeats()]);
}

// The other hub's QR code through this laptop's camera, where the browser can read one
// (BarcodeDetector: Chromium on macOS, Windows and Android; not on Linux): the link it holds
// fills the form, which the owner then submits.
function wirePeerScan() {
  const button = $("scan-peer");
  const view = $("scan-view");
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return;
  button.hidden = false;
  let stream = null;
  const stop = () => {
    for (const track of stream?.getTracks() || []) track.stop();
    stream = null;
    view.hidden = true;
    button.textContent = "Scan its QR code";
  };
  button.addEventListener("click", async () => {
    if (stream) return stop();
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (error) {
      $("peer-error").hidden = false;
      $("peer-error").textContent = `The camera is not available: ${error.message}`;
      return;
    }
    view.srcObject = stream;
    view.hidden = false;
    button.textContent = "Stop scanning";
    await view.play();
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    while (stream) {
      const codes = await detector.detect(view).catch(() => []);
      const link = codes.map((code) => code.rawValue).find((value) => value.includes("/pair#code="));
      if (link) {
        $("peer-form").querySelector('input[name="url"]').value = link;
        stop();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });
}

async function forgetPeer(name) {
  await api("DELETE", `/api/peers/${encodeURIComponent(name)}`);
  await Promise.all([loadPeers(), loadSeats()]);
}

async function removeSeat(name) {
  await api("DELETE", `/api/seats/${encodeURIComponent(name)}`);
  await loadSeats();
}

// Adding a seat, from either seat form or the Models panel's "Seat it": post it, then show the
// seats again (the table, the composer's choices). Returns what the hub added ({ name, … }).
async function postSeat(body) {
  const added = await api("POST", "/api/seats", body);
  await loadSeats();
  return added;
}

// Both seat forms: post what the form says, then show the seats again or the error.
async function addSeat(event, errorId, toBody) {
  event.preventDefault();
  const form = event.target;
  try {
    await postSeat(toBody(Object.fromEntries(new FormData(form))));
    form.reset();
    $(errorId).hidden = true;
  } catch (error) {
    $(errorId).hidden = false;
    $(errorId).textContent = error.message;
  }
}

const addRemote = (event) =>
  addSeat(event, "remote-error", (data) => ({
    ...data,
    ctx_size: Number(data.ctx_size || 0),
    allow_private: data.allow_private === "on",
  }));

const addLocal = (event) =>
  addSeat(event, "local-error", (data) => ({
    kind: "local",
    model: data.model,
    ctx_size: Number(data.ctx_size || 0),
    ...(data.name ? { name: data.name } : {}),
    ...(data.temperature !== "" ? { temperature: Number(data.temperature) } : {}),
    ...(data.seed !== "" ? { seed: Number(data.seed) } : {}),
    ...(data.system_prompt ? { system_prompt: data.system_prompt } : {}),
  }));

async function saveDefaults() {
  const body = { mode: $("mode").value, seats: chosenSeats(), chair: $("chair").value };
  try {
    state.defaults = await api("PUT", "/api/council/defaults", body);
    showComposerError("");
    $("save-defaults").textContent = "Saved as the defaults";
    setTimeout(() => {
      $("save-defaults").textContent = "Make these the defaults";
    }, 2000);
  } catch (error) {
    showComposerError(error.message);
  }
}

// ---- the hub's health ---------------------------------------------------------------------
const STATUS_WORDS = { ok: "all seats ready", starting: "seats starting…", degraded: "some seats are not answering" };

async function refreshHealth() {
  try {
    const health = await api("GET", "/api/health");
    // A failing stick says what is wrong with it: answers may not be kept meanwhile.
    $("hub-status").textContent = health.stick || STATUS_WORDS[health.status] || health.status;
    $("hub-status").dataset.status = health.status;
    $("demo-banner").hidden = !health.demo_hint;
    $("demo-banner").textContent = health.demo_hint || "";
    $("show-devices").hidden = !health.owner; // pairing and revoking are the laptop's business
    $("show-models").hidden = !health.owner; // so is filling the stick (the LAN has no such routes)
    $("show-evals").hidden = !health.owner; // and the evaluations (not among a guest's routes)
    if (health.owner) watchPulls();
    // A paired device is a guest: seats and defaults are the owner's (the hub refuses it too).
    document.body.classList.toggle("guest", !health.owner);
    const changed = health.seats.some((s) => state.seats.find((t) => t.name === s.name)?.state !== s.state);
    if (changed) await loadSeats();
  } catch {
    $("hub-status").textContent = "the hub is not answering";
    $("hub-status").dataset.status = "degraded";
  }
}

// ---- layout -------------------------------------------------------------------------------
function openSidebar() {
  document.body.classList.add("sidebar-open");
  $("menu").setAttribute("aria-expanded", "true");
}

function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("menu").setAttribute("aria-expanded", "false");
}

function wire() {
  $("composer").addEventListener("submit", ask);
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", stop);
  $("thread").addEventListener("scroll", onThreadScroll, { passive: true });
  $("thread").addEventListener("ask-again", askAgain);
  $("new-conversation").addEventListener("click", () => {
    showConversation(null);
    closeSidebar();
    $("question").focus();
  });
  $("search").addEventListener("input", () => loadConversations());
  $("rename").addEventListener("click", renameConversation);
  $("delete").addEventListener("click", deleteConversation);
  $("mode").addEventListener("change", () => {
    $("mode").dataset.touched = "1";
  });
  $("save-defaults").addEventListener("click", saveDefaults);
  $("show-seats").addEventListener("click", () => {
    closeDevices();
    closeModels({ focus: false });
    closeEvals({ focus: false });
    $("seats-panel").hidden = false;
    closeSidebar();
    loadSeats();
    if (!document.body.classList.contains("guest")) loadPeers(); // a phone has no peers to see
  });
  $("show-devices").addEventListener("click", () => {
    $("seats-panel").hidden = true;
    closeModels({ focus: false });
    closeEvals({ focus: false });
    closeSidebar();
    openDevices();
  });
  $("show-models").addEventListener("click", () => {
    $("seats-panel").hidden = true;
    closeDevices();
    closeEvals({ focus: false });
    closeSidebar();
    openModels();
  });
  $("show-evals").addEventListener("click", () => {
    $("seats-panel").hidden = true;
    closeDevices();
    closeModels({ focus: false });
    closeSidebar();
    openEvals();
  });
  $("close-seats").addEventListener("click", () => {
    $("seats-panel").hidden = true;
  });
  $("remote-form").addEventListener("submit", addRemote);
  $("peer-form").addEventListener("submit", addPeer);
  wirePeerScan();
  $("local-form").addEventListener("submit", addLocal);
  wireDevices();
  wireModels({ seat: postSeat });
  wireEvals();
  $("menu").addEventListener("click", () =>
    document.body.classList.contains("sidebar-open") ? closeSidebar() : openSidebar(),
  );
}

wire();
showConversation(null);
loadSeats().catch((error) => showComposerError(error.message));
refreshHealth();
setInterval(refreshHealth, 2000);
registerServiceWorker();
