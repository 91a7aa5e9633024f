// The chat app: sessions, live messages, connection state and routing (#/s/<id>[/board]).
// It runs on the official Convex client (convex.js): `onUpdate` for every live query,
// `mutation` for every change; signing in (auth.js) when the app has an auth provider.

import { ConvexClient } from "./convex.js";
import { SignIn } from "./auth.js";
import { watchConnection } from "./connection.js";
import { $, errorText, h, items, showError, timeAgo } from "./dom.js";
import { Board } from "./board.js";
import { FILE_ICON, formatSize, renderMessage } from "./messages.js";
import { MessageSearch } from "./search.js";

const USER_KEY = "workbench.userId";
const DEFAULT_USER = "demo-user";
const LIST_LIMIT = 200;  // chatMessages:listBySession returns at most the newest 200
const MAX_FILE_BYTES = 25 * 1024 * 1024;  // chatMessages:generateUploadUrl's limit
const MAX_FILES = 10;

const client = new ConvexClient(location.origin);
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
  files: [],           // File objects chosen for the next message
  missing: null,       // why the open session cannot be shown
  tab: "chat",
  stopSessions: null,
  stopSession: [],
};

// ---- connection status -----------------------------------------------------------------------

watchConnection(client, (status, everOpen) => {
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

// ---- who the user is: a demo name, or the identity of a token ----------------------------------

const userInput = $("#user-id");
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
  state.stopSessions = client.onUpdate("chatSessions:list", { userId: state.userId },
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
  state.files = [];
  renderTray();
  if (sessionId === null) return;
  renderSessionHead();
  renderMessages();
  state.stopSession.push(
    client.onUpdate("chatSessions:get", { sessionId },
      (session) => { state.session = session; showMissing(null); renderSessionHead(); },
      (error) => showMissing(errorText(error))),
    client.onUpdate("chatMessages:listBySession", { sessionId },
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

// ---- attachments ----------------------------------------------------------------------------

const fileInput = $("#composer-file");
const tray = $("#attach-tray");

function addFiles(list) {
  const problems = [];
  for (const file of list) {
    if (file.size > MAX_FILE_BYTES) problems.push(`${file.name} is larger than 25 MB`);
    else if (state.files.length >= MAX_FILES) problems.push(`at most ${MAX_FILES} files per message`);
    else state.files.push(file);
  }
  showError($("#chat-error"), problems.length ? `Not attached: ${problems.join("; ")}` : "");
  renderTray();
}

function renderTray() {
  tray.replaceChildren(...state.files.map((file, i) => h("li", { class: "attach-chip" },
    FILE_ICON(), h("span", { class: "attach-name", title: file.name }, file.name),
    h("span", { class: "attachment-size" }, formatSize(file.size)),
    h("button", { type: "button", class: "icon-btn attach-remove", "aria-label": `Remove ${file.name}`,
      onclick: () => { state.files.splice(i, 1); renderTray(); } }, "×"))));
  tray.hidden = state.files.length === 0;
}

fileInput.addEventListener("change", () => { addFiles([...fileInput.files]); fileInput.value = ""; });
const chatPanel = $("#chat-panel");
chatPanel.addEventListener("dragover", (event) => {
  if (!event.dataTransfer?.types.includes("Files")) return;
  event.preventDefault();
  chatPanel.classList.add("dragging");
});
chatPanel.addEventListener("dragleave", (event) => {
  if (!chatPanel.contains(event.relatedTarget)) chatPanel.classList.remove("dragging");
});
chatPanel.addEventListener("drop", (event) => {
  chatPanel.classList.remove("dragging");
  if (!event.dataTransfer?.files.length) return;
  event.preventDefault();
  addFiles([...event.dataTransfer.files]);
});

/** Upload one file through a fresh upload URL; its `{storageId, name}`. */
async function upload(sessionId, file) {
  const url = await client.mutation("chatMessages:generateUploadUrl", { sessionId });
  let response;
  try {
    response = await fetch(url, {
      method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
  } catch {
    throw new Error(`${file.name} could not be uploaded: the server is unreachable`);
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${file.name}: ${answer.message ?? response.statusText}`);
  return { storageId: answer.storageId, name: file.name };
}

// A sent message shows as "Sending…" (or "Uploading…") until the server has it (queued while
// offline); on failure its text and files go back into the composer.
composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = input.value.trim();
  const sessionId = state.sessionId;
  const files = state.files;
  if ((!content && !files.length) || !sessionId) return;
  const message = { pending: true, sessionId, role: composer.role.value, content, files };
  state.pending.push(message);
  state.files = [];
  renderTray();
  input.value = "";
  autosize();
  showError($("#chat-error"), "");
  renderMessages();
  scrollToEnd(true);
  try {
    const attachments = [];
    for (const file of files) attachments.push(await upload(sessionId, file));
    const args = { sessionId, role: message.role, content };
    if (attachments.length) args.attachments = attachments;
    await client.mutation("chatMessages:append", args);
  } catch (error) {
    showError($("#chat-error"), `Message not sent: ${errorText(error)}`);
    if (state.sessionId === sessionId) {
      if (!input.value) input.value = content;
      if (!state.files.length) { state.files = files; renderTray(); }
    }
  } finally {
    state.pending = state.pending.filter((p) => p !== message);
    renderMessages();
  }
});

// ---- start -----------------------------------------------------------------------------------

/** Show the app for `userId` (subscribing to its sessions), or hide it (null: signed out). */
function start(userId) {
  state.stopSessions?.();
  state.stopSessions = null;
  openSession(null);
  $("#layout").hidden = userId === null;
  $("#signin").hidden = userId !== null;
  if (userId === null) return;
  state.userId = userId;
  subscribeSessions();
  route();
}

function signedOut(signIn, message) {
  start(null);
  $("#signed-in").hidden = true;
  $("#signin-issuer").textContent = signIn.config.issuer;
  const href = signIn.loginHref();
  $("#signin-provider").hidden = !href;
  if (href) $("#signin-provider").href = href;
  $("#signin-token-label").textContent = href ? "Or paste a token from the provider"
    : "Paste a token from the provider";
  showError($("#signin-error"), message);
}

function signedIn(identity) {
  $("#signin-token").value = "";
  $("#signed-in").hidden = false;
  $("#signed-in-name").textContent = identity.name ?? identity.subject;
  $("#signed-in-name").title = identity.tokenIdentifier;
  start(identity.subject);
}

async function startSignIn(config) {
  const signIn = new SignIn(client, config, {
    onSignedIn: signedIn, onSignedOut: (message) => signedOut(signIn, message) });
  window.workbench.signIn = signIn;
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("#signin-token").value.trim();
    if (!token) return;
    $("#signin-submit").disabled = true;
    try {
      await signIn.use(token);
    } finally {
      $("#signin-submit").disabled = false;
    }
  });
  $("#sign-out").addEventListener("click", () => signIn.signOut());
  await signIn.start();
}

window.addEventListener("hashchange", () => { if (!$("#layout").hidden) route(); });
setInterval(() => { renderSessions(); renderSessionHead(); }, 60_000);
client.query("auth:config", {}).then((config) => {
  if (config.required) return startSignIn(config);
  $("#user-field").hidden = false;
  userInput.value = state.userId;
  return start(state.userId);
}, (error) => {
  $("#layout").hidden = false;
  showError($("#session-error"), `Could not load the app: ${errorText(error)}`);
});
