#!/usr/bin/env node
// Drive the official npm `ConvexClient` (convex/browser, WebSocket sync protocol) for the
// pytest end-to-end tests.
//
//   node sync_client.mjs URL
//
// One ConvexClient for the whole run; under Node the `convex/browser` export bundles its own
// WebSocket implementation. Commands are read from stdin, one JSON object per line, and start
// at once (a mutation does not hold up the commands after it):
//   {"op": "subscribe", "id": "s1", "path": "notes:list", "args": {...}}   client.onUpdate
//   {"op": "paginate", "id": "p1", "path": ..., "args": {...}, "initialNumItems": n}
//                                     client.onPaginatedUpdate_experimental (the paginated
//                                     query machinery usePaginatedQuery shares: pages,
//                                     loadMore, page splits)
//   {"op": "loadMore", "id": "p1", "numItems": n}      loadMore on its current result
//   {"op": "unsubscribe", "id": "s1"}
//   {"op": "mutation" | "action" | "query", "id": "m1", "path": ..., "args": {...}}
//   {"op": "state", "id": "x"}                         print the connection state
//   {"op": "close"}                                    await client.close(), then exit
// End of stdin means close too. `args` is Convex-encoded JSON (decoded with `jsonToConvex`).
//
// Prints one JSON line per event on stdout, values as `convexToJson`:
//   {"event": "ready"}
//   {"event": "update", "id": "s1", "value": ...}            onUpdate callback
//   {"event": "error", "id": "s1", "name", "message", "data"?} onUpdate error callback
//   {"event": "pages", "id": "p1", "results": [...], "status", "pages": [[n, journal]...]}
//       a paginated update: every page's items in order, the status, and for each active
//       page its item count and the journal the server last sent for it
//   {"event": "loadMore", "id": "p1", "started": bool}
//   {"event": "result", "id": "m1", "ok": true, "value": ..., "current": {"s1": ...}}
//   {"event": "result", "id": "m1", "ok": false, "name", "message", "data"?, "current": {...}}
//       "current" holds every live subscription's getCurrentValue() when the promise settled
//       ({"error": {"name", "message", "data"?}} for a query whose result is an error)
//   {"event": "transition", "ts": "<decimal u64>", "reflected": [requestId...]}
//       every client-side transition (BaseConvexClient.addOnTransitionHandler); ts is the
//       server timestamp the client's query results are at
//   {"event": "connection", "connected": bool, "connectionCount": n, "retries": n,
//    "inflightMutations": n}                                 on every change
//   {"event": "state", "id": "x", ...the same fields}
//   {"event": "closed"}
// "data" is present only for a ConvexError. The client's own logging goes to stderr. An
// exception the client throws inside its socket handler (e.g. a bad Transition start version)
// is left uncaught on purpose: Node then exits with code 1 and the test sees it.

import { createInterface } from "node:readline";
import { ConvexClient } from "convex/browser";
import { ConvexError, convexToJson, jsonToConvex } from "convex/values";

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function encode(value) {
  return convexToJson(value === undefined ? null : value);
}

function describeError(err) {
  const out = { name: err?.name ?? typeof err, message: String(err?.message ?? err) };
  if (err instanceof ConvexError) {
    out.data = encode(err.data);
  }
  return out;
}

const url = process.argv[2];
if (!url) {
  process.stderr.write("usage: node sync_client.mjs URL\n");
  process.exit(2);
}

// Keep stdout for our event lines only.
console.log = console.info = console.debug = (...parts) => console.error(...parts);

const client = new ConvexClient(url);
const subscriptions = new Map(); // id -> Unsubscribe
const paginated = new Set(); // ids of paginated subscriptions
let closing = null;

function connectionFields() {
  const state = client.client.connectionState();
  return {
    connected: state.isWebSocketConnected,
    connectionCount: state.connectionCount,
    retries: state.connectionRetries,
    inflightMutations: state.inflightMutations,
  };
}

let lastConnection = "";
client.client.subscribeToConnectionState(() => {
  const fields = connectionFields();
  const text = JSON.stringify(fields);
  if (text !== lastConnection) {
    lastConnection = text;
    emit({ event: "connection", ...fields });
  }
});

client.client.addOnTransitionHandler((transition) => {
  emit({
    event: "transition",
    ts: u64(transition.timestamp),
    reflected: transition.reflectedMutations.map((m) => m.requestId),
  });
});

// The client's vendored Long keeps `low` as a signed int32 and its toString() adds it as is,
// so any timestamp whose low word is >= 2^31 prints 2^32 too small. Read the words unsigned.
function u64(long) {
  return ((BigInt(long.high >>> 0) << 32n) | BigInt(long.low >>> 0)).toString();
}

// Each active page of every paginated query: its item count and journal. Read from the
// client's own bookkeeping (PaginatedQueryClient and its local query set), for diagnostics.
function pageInfo() {
  const paginated = client.paginatedClient.paginatedQuerySet;
  const base = client.client;
  const out = [];
  for (const query of paginated?.values() ?? []) {
    for (const key of query.pageKeys) {
      const token = query.pageKeyToQuery.get(key).queryToken;
      const result = base.localQueryResultByToken(token);
      const journal = base.state.queryJournal(token) ?? null;
      out.push([result === undefined ? null : result.page.length, journal]);
    }
  }
  return out;
}

function paginatedValue(result) {
  return { results: encode(result.results), status: result.status };
}

function currentValues() {
  const current = {};
  for (const [id, sub] of subscriptions) {
    try {
      const value = sub.getCurrentValue();
      current[id] = paginated.has(id) ? paginatedValue(value) : encode(value);
    } catch (err) {
      current[id] = { error: describeError(err) }; // the query's result is an error
    }
  }
  return current;
}

async function call(command) {
  const args = jsonToConvex(command.args ?? {});
  const run = {
    mutation: () => client.mutation(command.path, args),
    action: () => client.action(command.path, args),
    query: () => client.query(command.path, args),
  }[command.op];
  let line;
  try {
    const value = await run();
    line = { event: "result", id: command.id, ok: true, value: encode(value) };
  } catch (err) {
    line = { event: "result", id: command.id, ok: false, ...describeError(err) };
  }
  line.current = currentValues();
  emit(line);
}

function close() {
  if (closing === null) {
    closing = (async () => {
      await null; // `closing` is set before anything below can call close() again
      lines.close();
      process.stdin.destroy();
      for (const unsubscribe of subscriptions.values()) unsubscribe();
      subscriptions.clear();
      await client.close();
      emit({ event: "closed" });
    })();
  }
  return closing;
}

function handle(command) {
  switch (command.op) {
    case "subscribe": {
      const { id } = command;
      const unsubscribe = client.onUpdate(
        command.path,
        jsonToConvex(command.args ?? {}),
        (value) => emit({ event: "update", id, value: encode(value) }),
        (err) => emit({ event: "error", id, ...describeError(err) }),
      );
      subscriptions.set(id, unsubscribe);
      return;
    }
    case "paginate": {
      const { id } = command;
      const unsubscribe = client.onPaginatedUpdate_experimental(
        command.path,
        jsonToConvex(command.args ?? {}),
        { initialNumItems: command.initialNumItems },
        (result) =>
          emit({ event: "pages", id, ...paginatedValue(result), pages: pageInfo() }),
        (err) => emit({ event: "error", id, ...describeError(err) }),
      );
      subscriptions.set(id, unsubscribe);
      paginated.add(id);
      return;
    }
    case "loadMore": {
      const current = subscriptions.get(command.id)?.getCurrentValue();
      const started = current ? current.loadMore(command.numItems) : false;
      emit({ event: "loadMore", id: command.id, started });
      return;
    }
    case "unsubscribe":
      subscriptions.get(command.id)?.();
      subscriptions.delete(command.id);
      return;
    case "mutation":
    case "action":
    case "query":
      void call(command);
      return;
    case "state":
      emit({ event: "state", id: command.id, ...connectionFields() });
      return;
    case "close":
      void close();
      return;
    default:
      throw new Error(`sync_client.mjs: unknown op ${JSON.stringify(command.op)}`);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (text) => {
  if (text.trim()) handle(JSON.parse(text));
});
lines.on("close", () => void close());
emit({ event: "ready" });
