// Live message search in the open session: chatMessages:search as the user types.

import { $, errorText, h } from "./dom.js";

const DEBOUNCE_MS = 150;
// The server's tokenizer (letters and digits, case folded); used here only to highlight.
const WORD = /[\p{L}\p{N}]+/gu;

function words(text) {
  return (text.normalize("NFKC").toLowerCase().match(WORD) ?? []);
}

/** `content` as text nodes with <mark> around the words the query matches. */
export function highlight(content, query) {
  const terms = words(query);
  const last = terms[terms.length - 1];
  const parts = [];
  let at = 0;
  for (const match of content.matchAll(WORD)) {
    const word = match[0].normalize("NFKC").toLowerCase();
    if (terms.includes(word) || (last && word.startsWith(last))) {
      parts.push(content.slice(at, match.index), h("mark", {}, match[0]));
      at = match.index + match[0].length;
    }
  }
  parts.push(content.slice(at));
  return parts;
}

export class MessageSearch {
  /** `render(message, query)` draws one result; `onActive(bool)` hides the chat list. */
  constructor(client, { render, onActive }) {
    this.client = client;
    this.render = render;
    this.onActive = onActive;
    this.sessionId = null;
    this.text = "";
    this.results = null;
    this.stop = null;
    this.timer = null;
    this.input = $("#message-search-input");
    this.input.addEventListener("input", () => this.schedule());
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { this.input.value = ""; this.schedule(0); }
    });
    $("#message-search").addEventListener("submit", (e) => { e.preventDefault(); this.schedule(0); });
  }

  setSession(sessionId) {
    this.sessionId = sessionId;
    this.input.value = "";
    this.apply();
  }

  schedule(delay = DEBOUNCE_MS) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.apply(), delay);
  }

  apply() {
    const text = this.input.value.trim();
    if (text === this.text && this.stop) return;
    this.stop?.();
    this.stop = null;
    this.text = text;
    this.results = null;
    const active = Boolean(text && this.sessionId && words(text).length);
    $("#search-results").hidden = !active;
    this.onActive(active);
    if (!active) return;
    this.draw();
    this.stop = this.client.onUpdate("chatMessages:search", { sessionId: this.sessionId, text },
      (messages) => { this.results = messages; this.draw(); },
      (error) => { $("#search-summary").textContent = `Search failed: ${errorText(error)}`; });
  }

  draw() {
    const found = this.results;
    const list = $("#search-list");
    list.replaceChildren(...(found ?? []).map((m) => this.render(m, this.text)));
    list.classList.toggle("loading", found === null);
    $("#search-summary").textContent = found === null ? "Searching…"
      : found.length === 0 ? `No messages match “${this.text}”`
      : `${found.length} message${found.length === 1 ? "" : "s"} match “${this.text}”, best first`;
  }
}
