#!/usr/bin/env node
// Drive the official npm `ConvexHttpClient` (convex/browser) for the pytest end-to-end tests.
//
//   node http_client.mjs URL [CALLS_JSON]        (CALLS_JSON is read from stdin when absent)
//
// CALLS_JSON is a JSON list of calls, run in order by ONE client object:
//   [{"kind": "mutation", "path": "accounts:open", "args": {...}}, ...]
// kind is one of query, mutation, action, consistentQuery, function. `args` is Convex-encoded
// JSON (decoded with `jsonToConvex`), so {"$integer": "..."} becomes a BigInt, {"$bytes": "..."}
// an ArrayBuffer and {"$float": "..."} NaN/±Infinity/-0 before the client sees them.
//
// Prints one JSON line per call on stdout:
//   {"ok": true, "value": <convexToJson(value)>}
//   {"ok": false, "name": err.name, "message": err.message, "data": <convexToJson(err.data)>}
// where "data" is present only when the client threw a ConvexError. Anything the client itself
// logs goes to stderr, so stdout holds only these lines. Exit code 0 unless the script itself
// is misused or crashes.

import { ConvexHttpClient } from "convex/browser";
import { ConvexError, convexToJson, jsonToConvex } from "convex/values";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function usage(message) {
  process.stderr.write(`http_client.mjs: ${message}\n`);
  process.stderr.write("usage: node http_client.mjs URL [CALLS_JSON]\n");
  process.exit(2);
}

function run(client, call) {
  const args = jsonToConvex(call.args ?? {});
  switch (call.kind) {
    case "query":
      return client.query(call.path, args);
    case "mutation":
      return client.mutation(call.path, args);
    case "action":
      return client.action(call.path, args);
    case "consistentQuery":
      return client.consistentQuery(call.path, args);
    case "function":
      return client.function(call.path, undefined, args);
    default:
      throw new Error(`http_client.mjs: unknown call kind ${JSON.stringify(call.kind)}`);
  }
}

function describeError(err) {
  const out = { ok: false, name: err?.name ?? typeof err, message: String(err?.message ?? err) };
  if (err instanceof ConvexError) {
    out.data = err.data === undefined ? null : convexToJson(err.data);
  }
  return out;
}

async function main() {
  const [url, callsArg] = process.argv.slice(2);
  if (!url) usage("missing URL");
  let calls;
  try {
    calls = JSON.parse(callsArg ?? (await readStdin()));
  } catch (err) {
    usage(`CALLS_JSON is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(calls)) usage("CALLS_JSON must be a JSON list");

  // Keep stdout for our result lines only.
  console.log = console.info = console.debug = (...parts) => console.error(...parts);

  const client = new ConvexHttpClient(url);
  for (const call of calls) {
    let line;
    try {
      const value = await run(client, call);
      line = { ok: true, value: convexToJson(value === undefined ? null : value) };
    } catch (err) {
      line = describeError(err);
    }
    process.stdout.write(JSON.stringify(line) + "\n");
  }
}

await main();
