// The dashboard shell: sign in with the admin key, the sidebar, the router, toasts.
//
// Routes: #/data[/<table>], #/functions[/<path>], #/logs[/<execution id>], #/schedules[/crons],
// #/health. Each page module exports mount(container, ctx) and returns its unmount function;
// ctx = {client, route, navigate, toast}. The client is the official ConvexClient signed in
// with the admin key (`setAdminAuth`); pages subscribe to `_system/...` queries with
// `onUpdate`, so everything they show changes the moment data commits.

import { ConvexClient, ConvexHttpClient } from "./convex.js";
import { watchConnection } from "./connection.js";
import { $, $$, errorText, fill, h, problem } from "./dom.js";
import * as data from "./data.js";
import * as functions from "./functions.js";
import * as logs from "./logs.js";
import * as schedules from "./schedules.js";
import * as health from "./health.js";

const PAGES = { data, functions, logs, schedules, health };
const KEY = "reactive-store.adminKey";

const state = { client: null, unmount: null, page: null };

// ---- toasts ---------------------------------------------------------------------------------

export function toast(text, kind = "info") {
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    text, h("button", { class: "toast-close", type: "button", "aria-label": "Dismiss",
      onclick: () => item.remove() }, "×"));
  $("#toasts").append(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 4000);
}

window.addEventListener("error", (event) => toast(`Unexpected error: ${event.message}`, "error"));
window.addEventListener("unhandledrejection", (event) => {
  toast(`Unexpected error: ${errorText(event.reason)}`, "error");
});

// ---- signing in -----------------------------------------------------------------------------

function storedKey() {
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
}

function forgetKey() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

function showSignin(message = "") {
  state.client?.close();
  state.client = null;
  state.unmount?.();
  state.unmount = null;
  $("#shell").hidden = true;
  $("#signin").hidden = false;
  const error = $("#signin-error");
  error.textContent = message;
  error.hidden = !message;
  $("#signin-button").disabled = false;
  $("#signin-button").textContent = "Sign in";
  $("#admin-key").focus();
}

/** Null when the server accepts `key`, else `{refused, message}`: `refused` when the server
 * said no (HTTP 401 with its reason), not when it could not be asked. Checked over HTTP,
 * where a refusal comes back with the server's reason (the socket only closes). */
async function checkKey(key) {
  const http = new ConvexHttpClient(location.origin);
  http.setAdminAuth(key);
  try {
    await http.query("_system/health:figures", {});
    return null;
  } catch (error) {
    try {
      const body = JSON.parse(error.message);
      if (body.code === "Unauthenticated") return { refused: true, message: body.message };
    } catch {
      // not a refusal: the server is unreachable or failed
    }
    return { refused: false, message: errorText(error) };
  }
}

function refusedText(problem) {
  return problem.refused ? `That admin key was refused: ${problem.message}.`
    : `Could not reach the server: ${problem.message}.`;
}

async function signIn(key, remember) {
  $("#signin-button").disabled = true;
  $("#signin-button").textContent = "Signing in…";
  const problem = await checkKey(key);
  if (problem) {
    if (problem.refused) forgetKey();
    showSignin(refusedText(problem));
    return;
  }
  forgetKey();
  (remember ? localStorage : sessionStorage).setItem(KEY, key);
  const client = new ConvexClient(location.origin);
  client.setAdminAuth(key);
  startShell(client, key);
}

$("#signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("#admin-key").value.trim();
  if (!key) {
    showSignin("Enter the admin key.");
    return;
  }
  signIn(key, $("#remember").checked);
});

$("#signout").addEventListener("click", () => {
  forgetKey();
  $("#admin-key").value = "";
  showSignin();
});

// ---- the shell ------------------------------------------------------------------------------

const STATUS_LABEL = { open: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…" };

/** The signed-in shell. After every reconnect the key is checked again: a server restarted
 * with another key (`dev` makes one per run) refuses it, and the page returns to sign-in. */
function startShell(client, key) {
  state.client = client;
  $("#signin").hidden = true;
  $("#shell").hidden = false;
  let lost = false;
  watchConnection(client, async (status) => {
    $("#conn").dataset.status = status;
    $(".conn-label", $("#conn")).textContent = STATUS_LABEL[status] ?? status;
    if (status !== "open") {
      lost = status === "reconnecting";
      return;
    }
    if (!lost) return;
    lost = false;
    const problem = await checkKey(key);
    if (problem?.refused && state.client === client) {
      forgetKey();
      showSignin(refusedText(problem));
    }
  });
  route();
}

function parseRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?");
  const [page, ...rest] = path.split("/");
  return { page: page || "data", rest: rest.map(decodeURIComponent).join("/"),
    params: new URLSearchParams(query) };
}

export function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
  else route();
}

function route() {
  if (!state.client) return;
  const current = parseRoute();
  for (const link of $$("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === current.page);
  }
  const container = $("#page");
  const module = PAGES[current.page];
  if (state.page === current.page && state.unmount && module?.update) {
    module.update(current);  // same page, new detail (a table, a function, an execution)
    return;
  }
  state.unmount?.();
  state.unmount = null;
  state.page = current.page;
  if (!module) {
    fill(container, problem(`There is no page “${current.page}”. Pick one on the left.`,
      "Page not found"));
    return;
  }
  fill(container);
  try {
    state.unmount = module.mount(container, { client: state.client, route: current, navigate,
      toast });
  } catch (error) {
    fill(container, problem(errorText(error), "This page failed to load"));
  }
  container.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);

for (const el of $$(".deployment-url")) el.textContent = location.origin;

const saved = storedKey();
if (saved) {
  signIn(saved, localStorage.getItem(KEY) !== null);
} else {
  showSignin();
}
