// Signing in, when the app has an auth provider (`auth:config` says so).
//
// A token (a JWT from the provider) comes from the provider's login page, which redirects
// back with `#id_token=<JWT>&state=<ours>` (the OpenID Connect implicit flow's fragment), or
// is pasted. The server checks it first (`auth:whoami` over HTTP with the official
// ConvexHttpClient, so a refusal comes back with its reason); then it is kept in localStorage
// and handed to the official client with `setAuth`, which sends it on the WebSocket and asks
// for it again when the server refuses it. Without a provider the page keeps its demo name.

import { ConvexHttpClient } from "./convex.js";
import { errorText } from "./dom.js";

const TOKEN_KEY = "workbench.token";
const STATE_KEY = "workbench.signinState";
const EXPIRED = "Your sign-in has expired or was refused by the server. Sign in again.";

/** The reason in a refused HTTP call's body (`{"code", "message"}`), else the error's text. */
function refusal(error) {
  try {
    return JSON.parse(error.message).message ?? errorText(error);
  } catch {
    return errorText(error);
  }
}

/** True when the token's `exp` has passed (a token we cannot read is left to the server). */
function expired(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const { exp } = JSON.parse(atob(part));
    return typeof exp === "number" && exp * 1000 <= Date.now();
  } catch {
    return false;
  }
}

function randomState() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class SignIn {
  /** `onSignedIn(identity)` once a token is accepted; `onSignedOut(message)` when none is. */
  constructor(client, config, { onSignedIn, onSignedOut }) {
    this.client = client;
    this.config = config;
    this.onSignedIn = onSignedIn;
    this.onSignedOut = onSignedOut;
    this.token = null;
  }

  /** Sign in with a token the provider just sent back, else the saved one, else ask. */
  async start() {
    const back = this.fromRedirect();
    if (back?.error) return this.onSignedOut(back.error);
    if (back?.token) return this.use(back.token, "The provider's token was refused");
    const saved = localStorage.getItem(TOKEN_KEY);
    if (saved) return this.use(saved, "Your saved sign-in was refused");
    return this.onSignedOut("");
  }

  /** Where the "Sign in with the provider" link goes (null without a login URL). */
  loginHref() {
    if (!this.config.loginUrl) return null;
    const state = sessionStorage.getItem(STATE_KEY) ?? randomState();
    sessionStorage.setItem(STATE_KEY, state);
    const url = new URL(this.config.loginUrl, location.href);
    url.searchParams.set("redirect_uri", `${location.origin}${location.pathname}`);
    url.searchParams.set("state", state);
    return url.href;
  }

  /** `#id_token=...&state=...` (or `#error=...`) from the provider: taken off the URL. */
  fromRedirect() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const token = params.get("id_token") ?? params.get("token");
    const error = params.get("error_description") ?? params.get("error");
    if (!token && !error) return null;
    history.replaceState(null, "", `${location.pathname}${location.search}#/`);
    const expected = sessionStorage.getItem(STATE_KEY);
    sessionStorage.removeItem(STATE_KEY);
    if (error) return { error: `The provider did not sign you in: ${error}` };
    if (!expected || params.get("state") !== expected) {
      return { error: "That sign-in did not start on this page (its state does not match). "
        + "Sign in again." };
    }
    return { token };
  }

  /** Check `token` with the server, then sign in with it; a refusal says why. */
  async use(token, refusedText = "That token was refused") {
    let identity;
    try {
      const http = new ConvexHttpClient(location.origin);
      http.setAuth(token);
      identity = await http.query("auth:whoami", {});
    } catch (error) {
      localStorage.removeItem(TOKEN_KEY);
      return this.onSignedOut(`${refusedText}: ${refusal(error)}`);
    }
    if (!identity) return this.onSignedOut(`${refusedText}: the server saw no identity in it`);
    localStorage.setItem(TOKEN_KEY, token);
    this.token = token;
    this.client.setAuth(
      async () => (this.token === token && !expired(token) ? token : null),
      (accepted) => {
        if (!accepted && this.token === token) this.refused();
      },
    );
    return this.onSignedIn(identity);
  }

  refused() {
    this.token = null;
    localStorage.removeItem(TOKEN_KEY);
    this.onSignedOut(EXPIRED);
  }

  /** Forget the token and start afresh (a new client, no identity). */
  signOut() {
    this.token = null;
    localStorage.removeItem(TOKEN_KEY);
    location.hash = "#/";
    location.reload();
  }
}
