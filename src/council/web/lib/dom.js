// DOM helpers and numbers for people, shared by the hub's page (/static/) and the browser seat
// (/seat/, which imports them from /static/lib/: same origin, so cross-origin isolation allows it).

export const $ = (id) => document.getElementById(id);

// A tiny element builder: text is always set as text, never parsed as HTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// wllama rejects with Error objects, strings and worker ErrorEvents alike.
export function why(error) {
  return error?.message || String(error?.type ?? error);
}

export function formatNumber(value, digits = 2) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

// Numbers for people, exactly as the CLI prints them (council/units.py), so one model reads the
// same in the terminal, the Models panel and the seat page.
function scaled(n, units, separator) {
  if (Math.abs(n) < 1000) return `${n}${separator}${units[0]}`;
  let value = n;
  for (const unit of units.slice(1)) {
    value /= 1000;
    if (Math.abs(value) < 999.5 || unit === units.at(-1)) {
      const text = Math.abs(value) < 99.95 ? value.toFixed(1) : value.toFixed(0);
      return `${text.replace(/\.0$/, "")}${separator}${unit}`;
    }
  }
}

// Bytes in decimal units (a kilobyte is 1000 bytes), as disks and model hubs print them: "640 KB",
// "98.4 MB", "1.2 GB". An unknown size (null; a seat without a model file) is a dash.
export function humanSize(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  return scaled(Math.round(bytes), ["B", "KB", "MB", "GB", "TB", "PB"], " ");
}

// A count as model names print it: "412K", "135M", "7.2B".
export const humanCount = (n) => scaled(n, ["", "K", "M", "B", "T"], "");

// The panels' error line: `show(message)` (empty hides it), and `guarded(action)`, which runs
// an async action with the line cleared first and any error shown there, never left unhandled.
export function errorLine(id) {
  const show = (message) => {
    $(id).hidden = !message;
    $(id).textContent = message || "";
  };
  const guarded =
    (action) =>
    async (...args) => {
      try {
        show("");
        await action(...args);
      } catch (error) {
        show(error.message);
      }
    };
  return { show, guarded };
}
