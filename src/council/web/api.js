// The hub's HTTP API, and a council round's server-sent events.

import { serverEvents } from "/static/lib/sse.js";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// On the laptop (the plain-HTTP listener) a 401 means this browser's session ended (the hub
// restarted): log in again. On the phone address a 401 means "pair first", said where it is.
function loggedOut(response) {
  if (response.status === 401 && location.protocol === "http:") location.assign("/login");
}

export async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  loggedOut(response);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.error?.message || `HTTP ${response.status}`);
  }
  return data;
}

// POST a question; calls onEvent(type, data) for each event until the round ends.
// Returns the message id as soon as the hub names it (a header), for the stop button.
// A round's events as they stream. With no conversation id the hub starts a new conversation,
// made only if it accepts the question; onStarted hears the message's and conversation's ids.
export async function streamRound(conversationId, body, onEvent, onStarted, signal) {
  const url = conversationId ? `/api/conversations/${conversationId}/messages` : "/api/messages";
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify(body),
    signal,
  });
  loggedOut(response);
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    throw new ApiError(response.status, data?.error?.message || `HTTP ${response.status}`);
  }
  onStarted(response.headers.get("x-council-message"), response.headers.get("x-council-conversation"));
  for await (const [type, data] of serverEvents(response.body)) onEvent(type, data);
}
