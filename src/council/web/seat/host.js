// The host's engine, for a tab that cannot run the model itself: one of the hub's seats answers
// through its OpenAI-compatible /v1.

import { dataEvents } from "/static/lib/sse.js";

// The id of a seat the hub can answer with, or null. A seat, not the whole council ("council",
// "council:<mode>"): one model answers, as it would in the tab.
export async function hostSeat() {
  const response = await fetch("/v1/models");
  if (!response.ok) return null;
  const { data } = await response.json();
  return data.map((model) => model.id).find((id) => !/^council(:|$)/.test(id)) ?? null;
}

// The text of the seat `model`'s answer to `messages`, piece by piece as it streams.
export async function* hostAnswer(model, messages, maxTokens) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages, stream: true, max_tokens: maxTokens }),
  });
  if (!response.ok || !response.body) throw new Error(`the host answered ${response.status}`);
  for await (const chunk of dataEvents(response.body)) {
    const text = chunk.choices?.[0]?.delta?.content;
    if (text) yield text;
  }
}
