// Model output is untrusted. Raw HTML in it is shown as text, never parsed (parsing alone makes
// the browser consider its event handlers); the Markdown → HTML from marked then goes through
// DOMPurify, which keeps only inert markup: no images (they would load from wherever a model
// points), links open in a new tab without an opener, and javascript:/data: URLs never survive.
import { marked } from "/static/vendor/marked.esm.js";
import DOMPurify from "/static/vendor/purify.es.mjs";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (char) => ESCAPES[char]);

marked.setOptions({ gfm: true, breaks: true });
marked.use({ renderer: { html: (token) => escapeHtml(token.text) } });

const FORBID_TAGS = [
  "img",
  "svg",
  "math",
  "style",
  "form",
  "input",
  "button",
  "iframe",
  "object",
  "embed",
  "video",
  "audio",
  "source",
  "picture",
  "link",
  "meta",
  "base",
];

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

export function renderMarkdown(text) {
  const html = marked.parse(text || "", { async: false });
  return DOMPurify.sanitize(html, {
    FORBID_TAGS,
    FORBID_ATTR: ["style", "srcset"],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#|\/(?!\/))/i,
  });
}

// Sets an element's content to rendered Markdown; the only place the UI writes HTML.
export function setMarkdown(element, text) {
  element.innerHTML = renderMarkdown(text);
}
