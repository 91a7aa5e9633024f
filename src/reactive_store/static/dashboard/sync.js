// The dashboard's client for the reactive-store (Convex) sync protocol over one WebSocket,
// signed in with the admin key (the same protocol as the app's own web/sync.js, plus admin
// authentication: the dashboard's `_system/...` functions answer only the admin key).
//
//   const client = new SyncClient({ adminKey, onAuthError: (message) => ... });
//   const stop = client.subscribe("_system/logs:recent", {}, (value) => ..., (error) => ...);
//   await client.mutation("_system/data:insert", {...});  // resolves once queries show it
//   const value = await client.query("_system/data:tables", {});
//   client.onStatus((status) => ...);  // "connecting" | "open" | "reconnecting" | "refused"
//
// A refused admin key gets an AuthError from the server, which then closes the socket: the
// client stops there (no reconnecting with a key that cannot work) and says why.
//
// Protocol notes: every Transition must start where the previous one ended (else the socket is
// dropped and re-opened); a mutation resolves only after a Transition at ts >= its commit ts
// (read-your-writes); unanswered mutations are replayed on reconnect under the same sessionId,
// which the server deduplicates.

// ---- Convex JSON values ----------------------------------------------------------------------

function bytesToBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function base64ToBytes(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function int64ToBase64(value) {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigInt64(0, BigInt.asIntN(64, value), true);
  return bytesToBase64(new Uint8Array(view.buffer));
}

function base64ToInt64(text) {
  const bytes = base64ToBytes(text);
  if (bytes.length !== 8) throw new Error(`$integer must hold 8 bytes, got ${bytes.length}`);
  return new DataView(bytes.buffer).getBigInt64(0, true);
}

function float64ToBase64(value) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value, true);
  return bytesToBase64(new Uint8Array(view.buffer));
}

function base64ToFloat64(text) {
  const bytes = base64ToBytes(text);
  if (bytes.length !== 8) throw new Error(`$float must hold 8 bytes, got ${bytes.length}`);
  return new DataView(bytes.buffer).getFloat64(0, true);
}

/** A JS value -> Convex JSON: bigint -> $integer, bytes -> $bytes, NaN/±Inf/-0 -> $float. */
export function encodeValue(value) {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "bigint") return { $integer: int64ToBase64(value) };
  if (typeof value === "number") {
    return Number.isFinite(value) && !Object.is(value, -0)
      ? value : { $float: float64ToBase64(value) };
  }
  if (value instanceof ArrayBuffer) return { $bytes: bytesToBase64(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) {
    return { $bytes: bytesToBase64(new Uint8Array(value.buffer, value.byteOffset,
      value.byteLength)) };
  }
  if (Array.isArray(value)) return value.map((item) => encodeValue(item === undefined ? null : item));
  if (typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) {
      if (value[key] !== undefined) out[key] = encodeValue(value[key]);
    }
    return out;
  }
  throw new TypeError(`cannot send a ${typeof value} to the server`);
}

/** Convex JSON -> a JS value: $integer -> BigInt, $bytes -> ArrayBuffer, $float -> number. */
export function decodeValue(json) {
  if (json === null || typeof json !== "object") return json;
  if (Array.isArray(json)) return json.map(decodeValue);
  const keys = Object.keys(json);
  if (keys.length === 1) {
    const [key] = keys;
    if (key === "$integer") return base64ToInt64(json.$integer);
    if (key === "$bytes") return base64ToBytes(json.$bytes).buffer;
    if (key === "$float") return base64ToFloat64(json.$float);
  }
  const out = {};
  for (const key of keys) out[key] = decodeValue(json[key]);
  return out;
}

/** A wire timestamp (base64 of a u64, little-endian) -> BigInt. */
export function decodeTs(text) {
  return BigInt.asUintN(64, base64ToInt64(text));
}

/** A function failure; `data` is the ConvexError payload when there is one. */
export class ServerError extends Error {
  constructor(message, data) {
    super(message);
    this.name = "ServerError";
    this.data = data;
  }
}

function failure(message, errorData) {
  return new ServerError(message, errorData === undefined ? undefined : decodeValue(errorData));
}

function newSessionId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));   // pages served over plain http on a LAN
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/sync`;
}

const INITIAL_VERSION = { querySet: 0, identity: 0, ts: "AAAAAAAAAAA=" };
const INACTIVITY_MS = 60_000;  // the server pings every 15 s of silence
const MAX_BACKOFF_MS = 16_000;

// ---- the client ------------------------------------------------------------------------------

export class SyncClient {
  constructor({ url = defaultUrl(), adminKey = null, onAuthError = () => {} } = {}) {
    this.url = url;
    this.adminKey = adminKey;
    this.onAuthError = onAuthError;
    this.sessionId = newSessionId();
    this.queries = new Map();        // queryId -> {path, args, key, listeners, latest}
    this.queryByKey = new Map();     // path + encoded args -> queryId
    this.requests = new Map();       // requestId -> {message, resolve, reject, ts, result}
    this.nextQueryId = 0;
    this.nextRequestId = 0;
    this.querySet = 0;               // the last query-set version we sent
    this.version = INITIAL_VERSION;  // the server's last endVersion on this socket
    this.connectionCount = 0;
    this.lastCloseReason = "InitialConnect";
    this.maxObservedTs = null;       // BigInt
    this.failures = 0;
    this.statusListeners = new Set();
    this.status = "connecting";
    this.socket = null;
    this.ready = false;              // the socket is open and Connect has been sent
    this.closed = false;
    this.connect();
  }

  // -- public API --

  /** Subscribe to a query; returns an unsubscribe function. */
  subscribe(path, args, onUpdate, onError = () => {}) {
    const encoded = encodeValue(args ?? {});
    const key = `${path}|${JSON.stringify(encoded)}`;
    let queryId = this.queryByKey.get(key);
    let query = this.queries.get(queryId);
    if (query === undefined) {
      queryId = this.nextQueryId++;
      query = { path, args: encoded, key, listeners: new Set(), latest: null };
      this.queries.set(queryId, query);
      this.queryByKey.set(key, queryId);
      this.modify([{ type: "Add", queryId, udfPath: path, args: [encoded] }]);
    }
    const listener = { onUpdate, onError };
    query.listeners.add(listener);
    if (query.latest) {
      queueMicrotask(() => {
        if (query.listeners.has(listener)) this.notify(query.latest, listener);
      });
    }
    return () => {
      query.listeners.delete(listener);
      if (query.listeners.size === 0 && this.queries.get(queryId) === query) {
        this.queries.delete(queryId);
        this.queryByKey.delete(key);
        this.modify([{ type: "Remove", queryId }]);
      }
    };
  }

  /** Run a mutation; resolves with its result once subscriptions reflect it. */
  mutation(path, args) {
    return this.request("Mutation", path, args);
  }

  /** The query's current value, once (subscribe, first result, unsubscribe). */
  query(path, args) {
    return new Promise((resolve, reject) => {
      let stop = null;
      let settled = false;
      const finish = (fn, value) => {
        if (settled) return;
        settled = true;
        queueMicrotask(() => stop?.());
        fn(value);
      };
      stop = this.subscribe(path, args, (value) => finish(resolve, value),
        (error) => finish(reject, error));
      if (settled) stop();
    });
  }

  /** Run an action; fails if the connection drops while it runs (actions are not replayed). */
  action(path, args) {
    return this.request("Action", path, args);
  }

  /** Listen to connection status changes; returns an unsubscribe function. */
  onStatus(listener) {
    this.statusListeners.add(listener);
    listener(this.status);
    return () => this.statusListeners.delete(listener);
  }

  close() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.inactivityTimer);
    this.socket?.close(1000, "ClientClosed");
    for (const request of this.requests.values()) request.reject(new Error("client closed"));
    this.requests.clear();
  }

  // -- internals --

  request(type, path, args) {
    const requestId = this.nextRequestId++;
    const message = { type, requestId, udfPath: path, args: [encodeValue(args ?? {})] };
    return new Promise((resolve, reject) => {
      this.requests.set(requestId, { message, resolve, reject, ts: null, result: undefined });
      if (this.ready) this.send(message);
    });
  }

  modify(modifications) {
    if (!this.ready) return;  // the next Connect re-adds every live query
    this.querySet += 1;
    this.send({ type: "ModifyQuerySet", baseVersion: this.querySet - 1,
      newVersion: this.querySet, modifications });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    for (const listener of this.statusListeners) listener(status);
  }

  connect() {
    if (this.closed) return;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => this.onOpen(socket);
    socket.onmessage = (event) => {
      if (socket !== this.socket) return;
      this.resetInactivity();
      try {
        this.onMessage(JSON.parse(event.data));
      } catch (error) {
        console.error("sync: dropping the connection:", error);
        this.drop(`ClientError: ${error.message}`);
      }
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      this.onClose(event.reason || `closed with code ${event.code}`);
    };
  }

  onOpen(socket) {
    if (socket !== this.socket) return;
    this.version = INITIAL_VERSION;
    const connect = { type: "Connect", sessionId: this.sessionId,
      connectionCount: this.connectionCount, lastCloseReason: this.lastCloseReason,
      clientTs: Date.now() };
    if (this.maxObservedTs !== null) connect.maxObservedTimestamp = int64ToBase64(this.maxObservedTs);
    this.send(connect);
    if (this.adminKey) {
      this.send({ type: "Authenticate", baseVersion: 0, tokenType: "Admin", value: this.adminKey });
    }
    this.connectionCount += 1;
    this.querySet = 1;
    const adds = [...this.queries].map(([queryId, q]) =>
      ({ type: "Add", queryId, udfPath: q.path, args: [q.args] }));
    this.send({ type: "ModifyQuerySet", baseVersion: 0, newVersion: 1, modifications: adds });
    for (const request of this.requests.values()) {
      if (request.message.type === "Mutation") this.send(request.message);
    }
    this.ready = true;
    this.resetInactivity();  // "open" once the first Transition shows the server is there
  }

  onClose(reason) {
    clearTimeout(this.inactivityTimer);
    this.socket = null;
    this.ready = false;
    this.lastCloseReason = reason;
    for (const [requestId, request] of this.requests) {
      if (request.message.type === "Action") {
        this.requests.delete(requestId);
        request.reject(new Error("Connection lost while the action was in flight"));
      }
    }
    if (this.closed) return;
    this.setStatus("reconnecting");
    const cap = Math.min(1000 * 2 ** this.failures, MAX_BACKOFF_MS);
    const delay = this.failures === 0 ? 100 : cap * (0.5 + Math.random() * 0.5);
    this.failures += 1;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Close the current socket and reconnect (on a protocol violation or a silent server). */
  drop(reason) {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.onclose = null;
    socket.onmessage = null;
    try { socket.close(4000, reason.slice(0, 120)); } catch { /* already closing */ }
    this.onClose(reason);
  }

  resetInactivity() {
    clearTimeout(this.inactivityTimer);
    this.inactivityTimer = setTimeout(() => this.drop("InactiveServer"), INACTIVITY_MS);
  }

  observe(ts) {
    if (this.maxObservedTs === null || ts > this.maxObservedTs) this.maxObservedTs = ts;
  }

  onMessage(message) {
    switch (message.type) {
      case "Transition": return this.onTransition(message);
      case "MutationResponse": return this.onMutationResponse(message);
      case "ActionResponse": return this.onActionResponse(message);
      case "Ping": return undefined;
      case "AuthError": return this.onRefused(message.error);
      case "FatalError": throw new Error(`server error: ${message.error}`);
      default: console.warn("sync: ignoring message", message.type); return undefined;
    }
  }

  onTransition(message) {
    const start = message.startVersion;
    const current = this.version;
    if (start.querySet !== current.querySet || start.identity !== current.identity
        || start.ts !== current.ts) {
      throw new Error(`Transition starts at ${JSON.stringify(start)}, `
        + `expected ${JSON.stringify(current)}`);
    }
    this.version = message.endVersion;
    const ts = decodeTs(message.endVersion.ts);
    this.observe(ts);
    this.failures = 0;  // synced again: the next drop starts the backoff afresh
    this.setStatus("open");
    const changed = [];
    for (const mod of message.modifications) {
      const query = this.queries.get(mod.queryId);
      if (query === undefined) continue;
      if (mod.type === "QueryUpdated") {
        query.latest = { ok: true, value: decodeValue(mod.value) };
      } else if (mod.type === "QueryFailed") {
        query.latest = { ok: false, error: failure(mod.errorMessage, mod.errorData) };
      } else {
        continue;
      }
      changed.push(query);
    }
    // Resolve read-your-writes mutations first, then tell the listeners.
    for (const [requestId, request] of this.requests) {
      if (request.ts !== null && request.ts <= ts) {
        this.requests.delete(requestId);
        request.resolve(request.result);
      }
    }
    for (const query of changed) {
      for (const listener of [...query.listeners]) {
        if (query.listeners.has(listener)) this.notify(query.latest, listener);  // may unsubscribe
      }
    }
  }

  /** The server refused the admin key and closes the socket: stop, and say why. */
  onRefused(reason) {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.inactivityTimer);
    this.setStatus("refused");
    const error = new ServerError(reason || "the admin key was refused");
    for (const request of this.requests.values()) request.reject(error);
    this.requests.clear();
    for (const query of this.queries.values()) {
      for (const listener of query.listeners) listener.onError(error);
    }
    this.onAuthError(error.message);
  }

  notify(latest, listener) {
    try {
      if (latest.ok) listener.onUpdate(latest.value);
      else listener.onError(latest.error);
    } catch (error) {
      console.error("sync: a query listener threw:", error);
    }
  }

  onMutationResponse(message) {
    const request = this.requests.get(message.requestId);
    if (request === undefined || request.message.type !== "Mutation") return;
    if (!message.success) {
      this.requests.delete(message.requestId);
      request.reject(failure(message.result, message.errorData));
      return;
    }
    request.ts = decodeTs(message.ts);
    request.result = decodeValue(message.result);
    this.observe(request.ts);
  }

  onActionResponse(message) {
    const request = this.requests.get(message.requestId);
    if (request === undefined || request.message.type !== "Action") return;
    this.requests.delete(message.requestId);
    if (message.success) request.resolve(decodeValue(message.result));
    else request.reject(failure(message.result, message.errorData));
  }
}
