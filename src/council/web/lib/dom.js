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

// Bytes in decimal units (a kilobyte is 1000 bytes), as disks and model hubs print them: "640 KB",
// "1.2 GB". The seat page prints every size with it too, so one model reads the same on both pages.
// An unknown size (null; a seat without a model file) is a dash; nothing at all is "0 B".
export function humanSize(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 && unit ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}
