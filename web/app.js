// The chat app: sessions, live messages, connection state and routing (#/s/<id>[/board]).

import { SyncClient } from "./sync.js";
import { $, clockTime, errorText, h, items, showError, timeAgo } from "./dom.js";
import { Board } from "./board.js";
import { MessageSearch, highlight } from "./search.js";

const USER_KEY = "workbench.userId";
const DEFAULT_USER = "demo-user";
const LIST_LIMIT = 200;  // chatMessages:listBySession returns at most the newest 200

const client = new SyncClient();
const board = new Board(client, $("#board-panel"), {
  userId: () => state.userId,
  onCount: (n) => { $("#count-board").textContent = n ? String(n) : ""; },
});
const search = new MessageSearch(client, {
  render: (m, query) => renderMessage(m, query),
  onActive: (active) => { $("#messages-scroll").hidden = active; },
});
window.workbench = { client };  // handy in the console

const state = {
  userId: localStorage.getItem(USER_KEY) || DEFAULT_USER,
  sessions: null,      // null until the first result
  sessionId: null,
  session: null,
  messages: null,
  pending: [],         // messages sent but not yet confirmed
  missing: null,       // why the open session cannot be shown
  tab: "chat",
  stopSessions: null,
  stopSession: [],
};

// ---- connection status -----------------------------------------------------------------------

let everOpen = false;
client.onStatus((status) => {
  if (status === "open") everOpen = true;
  const conn = $("#conn");
  conn.dataset.status = status;
  $(".conn-label", conn).textContent =
    { open: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…" }[status];
  $("#conn-banner").hidden = status !== "reconnecting";
  $("#conn-banner-text").textContent = everOpen
    ? "Connection lost. Reconnecting… Changes you make are sent once the connection is back."
    : "Can’t reach the server. Retrying…";
  document.body.classList.toggle("offline", status === "reconnecting");
});

// ---- the user id -----------------------------------------------------------------------------

const userInput = $("#user-id");
userInput.value = state.userId;
function commitUser() {
  const value = userInput.value.trim() || DEFAULT_USER;
  userInput.value = value;
  if (value === state.userId) return;
  state.userId = value;
  localStorage.setItem(USER_KEY, value);
  subscribeSessions();
}
userInput.addEventListener("change", commitUser);
userInput.addEventListener("keydown", (e) => { if (e.key === "Enter") userInput.blur(); });

// ---- sessions --------------------------------------------------------------------------------

function subscribeSessions() {
  state.stopSessions?.();
  state.sessions = null;
  renderSessions();
  state.stopSessions = client.subscribe("chatSessions:list", { userId: state.userId },
    (result) => { state.sessions = items(result); renderSessions(); },
    (error) => showError($("#session-error"), `Could not load sessions: ${errorText(error)}`));
}

function renderSessions() {
  const list = $("#session-list");
  const sessions = state.sessions ?? [];
  list.replaceChildren(...sessions.map((s) => h("li", {},
    h("a", {
      class: `session-item${s._id === state.sessionId ? " active" : ""}`,
      href: `#/s/${s._id}`,
      dataset: { sessionId: s._id },
      "aria-current": s._id === state.sessionId ? "page" : null,
    },
    h("span", { class: "session-item-title" }, s.title || "Untitled"),
    h("span", { class: "session-item-time" }, timeAgo(s.updatedAt ?? s._creationTime))))));
  list.classList.toggle("loading", state.sessions === null);
  $("#sessions-empty").hidden = state.sessions === null || sessions.length > 0;
}

$("#new-session").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const title = form.title.value.trim();
  if (!title) return;
  const button = $("button", form);
  button.disabled = true;
  showError($("#session-error"), "");
  try {
    const id = await client.mutation("chatSessions:create", { userId: state.userId, title });
    form.reset();
    location.hash = `#/s/${id}`;
  } catch (error) {
    showError($("#session-error"), `Could not create the session: ${errorText(error)}`);
  } finally {
    button.disabled = false;
  }
});

// ---- routing ---------------------------------------------------------------------------------

function route() {
  const match = /^#\/s\/([^/]+)(?:\/(board|chat))?$/.exec(location.hash);
  const sessionId = match ? decodeURIComponent(match[1]) : null;
  state.tab = match?.[2] ?? "chat";
  if (sessionId !== state.sessionId) openSession(sessionId);
  showTab();
  renderSessions();
}

function showTab() {
  const base = `#/s/${encodeURIComponent(state.sessionId ?? "")}`;
  for (const tab of document.querySelectorAll(".tab")) {
    const selected = tab.dataset.tab === state.tab;
    tab.setAttribute("aria-selected", String(selected));
    tab.classList.toggle("active", selected);
    tab.href = tab.dataset.tab === "chat" ? base : `${base}/board`;
  }
  $("#chat-panel").hidden = state.tab !== "chat" || Boolean(state.missing);
  $("#board-panel").hidden = state.tab !== "board" || Boolean(state.missing);
  if (state.tab === "chat") scrollToEnd(true);
}

function openSession(sessionId) {
  for (const stop of state.stopSession) stop();
  state.stopSession = [];
  state.sessionId = sessionId;
  state.session = null;
  state.messages = null;
  document.body.classList.toggle("has-session", sessionId !== null);
  $("#welcome").hidden = sessionId !== null;
  $("#session").hidden = sessionId === null;
  board.setSession(sessionId);
  search.setSession(sessionId);
  showError($("#chat-error"), "");
  showMissing(null);
  if (sessionId === null) return;
  renderSessionHead();
  renderMessages();
  state.stopSession.push(
    client.subscribe("chatSessions:get", { sessionId },
      (session) => { state.session = session; showMissing(null); renderSessionHead(); },
      (error) => showMissing(errorText(error))),
    client.subscribe("chatMessages:listBySession", { sessionId },
      (result) => { state.messages = items(result); renderMessages(); },
      (error) => {
        if (!state.missing) showError($("#chat-error"), `Could not load messages: ${errorText(error)}`);
      }),
  );
  if (matchMedia("(hover: hover)").matches) $("#composer-input").focus({ preventScroll: true });
}

/** A session that does not exist (or is not ours): an error state instead of chat and board. */
function showMissing(text) {
  state.missing = text;
  $("#session-missing").hidden = !text;
  $("#session-missing-text").textContent = text ?? "";
  $(".tabs").hidden = Boolean(text);
  if (text) {
    $("#chat-panel").hidden = true;
    $("#board-panel").hidden = true;
    $("#session-title").textContent = "Session unavailable";
    $("#session-meta").textContent = "";
  } else {
    showTab();
  }
}

function renderSessionHead() {
  if (state.missing) return;
  const s = state.session;
  $("#session-title").textContent = s ? (s.title || "Untitled") : "Loading…";
  $("#session-meta").textContent = s ? `${s.userId} · started ${timeAgo(s.createdAt)}` : "";
  document.title = s ? `${s.title} · Workbench` : "Workbench · reactive-store";
}

// ---- messages --------------------------------------------------------------------------------

const ROLE_NAMES = { user: "User", assistant: "Assistant", system: "System" };

/** One message; with `query`, the words it matches are highlighted (search results). */
function renderMessage(m, query = "") {
  if (m.pending) {
    return h("li", { class: `message ${m.role} pending` },
      m.role === "system" ? null : h("span", { class: "avatar", "aria-hidden": "true" },
        m.role === "user" ? "U" : "AI"),
      h("div", { class: "message-main" },
        h("div", { class: "message-head" }, h("span", { class: "message-role" }, "Sending…")),
        h("div", { class: "message-body" }, m.content)));
  }
  const time = m.createdAt ?? m._creationTime;
  const body = query ? highlight(m.content, query) : m.content;
  if (m.role === "system") {
    return h("li", { class: "message system", dataset: { id: m._id } },
      h("div", { class: "message-body" }, body),
      h("time", { title: new Date(time).toLocaleString() }, clockTime(time)));
  }
  return h("li", { class: `message ${m.role}`, dataset: { id: m._id } },
    h("span", { class: "avatar", "aria-hidden": "true" }, m.role === "user" ? "U" : "AI"),
    h("div", { class: "message-main" },
      h("div", { class: "message-head" },
        h("span", { class: "message-role" }, ROLE_NAMES[m.role] ?? m.role),
        h("time", { title: new Date(time).toLocaleString() }, clockTime(time))),
      h("div", { class: "message-body" }, body)));
}

function renderMessages() {
  const scroller = $("#messages-scroll");
  const nearEnd = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const messages = state.messages ?? [];
  const pending = state.pending.filter((p) => p.sessionId === state.sessionId);
  const list = $("#messages");
  const rows = [...messages, ...pending].map((m) => renderMessage(m));
  if (messages.length >= LIST_LIMIT) {
    rows.unshift(h("li", { class: "history-note" }, `Showing the latest ${LIST_LIMIT} messages`));
  }
  list.replaceChildren(...rows);
  list.classList.toggle("loading", state.messages === null);
  $("#messages-empty").hidden = state.messages === null || messages.length + pending.length > 0;
  $("#count-chat").textContent = messages.length ? String(messages.length) : "";
  scrollToEnd(nearEnd);
}

function scrollToEnd(force) {
  if (!force) return;
  const scroller = $("#messages-scroll");
  requestAnimationFrame(() => { scroller.scrollTop = scroller.scrollHeight; });
}

const composer = $("#composer");
const input = $("#composer-input");

function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}
input.addEventListener("input", autosize);
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});

// A sent message shows as "Sending…" until the server has it (queued while offline).
composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = input.value.trim();
  const sessionId = state.sessionId;
  if (!content || !sessionId) return;
  const message = { pending: true, sessionId, role: composer.role.value, content };
  state.pending.push(message);
  input.value = "";
  autosize();
  showError($("#chat-error"), "");
  renderMessages();
  scrollToEnd(true);
  try {
    await client.mutation("chatMessages:append", { sessionId, role: message.role, content });
  } catch (error) {
    showError($("#chat-error"), `Message not sent: ${errorText(error)}`);
    if (state.sessionId === sessionId && !input.value) input.value = content;
  } finally {
    state.pending = state.pending.filter((p) => p !== message);
    renderMessages();
  }
});

// ---- start -----------------------------------------------------------------------------------

subscribeSessions();
window.addEventListener("hashchange", route);
route();
setInterval(() => { renderSessions(); renderSessionHead(); }, 60_000);
