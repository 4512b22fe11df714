// The lines of a streamed response body as they arrive (server-sent events are line-based).
export async function* lines(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const complete = buffer.split("\n");
    buffer = complete.pop();
    yield* complete;
  }
}
