// Readers for streamed response bodies: the hub's server-sent events and OpenAI's `data:` streams.

// The lines of a body as they arrive, without their line ends ("\n" or "\r\n"); a last line
// without one still counts.
export async function* lines(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const complete = buffer.split("\n");
    buffer = complete.pop();
    for (const line of complete) yield line.replace(/\r$/, "");
  }
  if (buffer) yield buffer.replace(/\r$/, "");
}

// `[kind, data]` for each `event:`/`data:` pair, the data parsed as JSON.
export async function* serverEvents(body) {
  let kind = "";
  for await (const line of lines(body)) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:") && kind) {
      yield [kind, JSON.parse(line.slice(5))];
      kind = "";
    }
  }
}

// Each `data:` line's JSON of an OpenAI-style stream, up to its closing `data: [DONE]`.
export async function* dataEvents(body) {
  for await (const line of lines(body)) {
    if (!line.startsWith("data:")) continue;
    const data = line.slice(5).trim();
    if (data === "[DONE]") return;
    if (data) yield JSON.parse(data);
  }
}
