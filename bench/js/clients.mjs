#!/usr/bin/env node
// Load and latency probes driven by the official npm `convex` client (the copy installed in
// tests/js, so the benchmarks and the e2e tests run the same client version).
//
//   node clients.mjs MODE URL '{"option": value, ...}'
//
// Every mode uses `rooms:post` (insert one message) and `rooms:latest` (a room's 5 newest
// messages) from bench/common.py ROOMS_APP, and prints one JSON object on its last stdout line.
// Times are performance.now() in this process, in milliseconds.
//   throughput {clients, seconds}   `clients` ConvexClients, one WebSocket each, each awaiting
//                                   mutation() in a loop: {count, rate, acks: [ms...]}
//   ack {count, gapMs}              one client, one mutation at a time: {acks: [ms...]}
//   push {clients, queries, rate, seconds}
//                                   client i watches room i % queries; a separate writer client
//                                   posts to rooms in turn at `rate`/s. Each sample is the time
//                                   from the writer calling mutation() to a subscriber's onUpdate
//                                   callback showing that message: {latencies, acks, connected}
//   fanout {clients, rounds, gapMs} every client watches room 0; the writer posts `rounds`
//                                   times: {rounds: [{deliveries: [ms...], ack}], connected}
// A subscriber that has not received its first result within 120 s is left out: "connected"
// says how many took part.

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "tests", "js", "package.json"));
const { ConvexClient } = require("convex/browser");

// stdout carries our JSON only; the client's own logging goes to stderr.
console.log = console.info = console.debug = (...parts) => console.error(...parts);

const [mode, url, rawOptions] = process.argv.slice(2);
const options = JSON.parse(rawOptions ?? "{}");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const newClient = () => new ConvexClient(url, { skipConvexDeploymentUrlCheck: true });

function finish(result) {
  // Exit only once the line is out: a pipe takes 64 KiB at a time, and exit() drops the rest.
  // Closing a thousand clients one by one would only cost time.
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));
}

async function post(client, room, body) {
  const start = performance.now();
  await client.mutation("rooms:post", { room, body });
  return performance.now() - start;
}

async function throughput() {
  const clients = Array.from({ length: options.clients }, newClient);
  await Promise.all(clients.map((c, i) => post(c, 0, `warm${i}`)));
  const acks = [];
  const stop = performance.now() + options.seconds * 1000;
  const start = performance.now();
  await Promise.all(clients.map(async (client, i) => {
    for (let n = 0; performance.now() < stop; n++) acks.push(await post(client, 0, `c${i}n${n}`));
  }));
  const elapsed = (performance.now() - start) / 1000;
  finish({ count: acks.length, rate: acks.length / elapsed, acks });
}

async function ack() {
  const client = newClient();
  for (let i = 0; i < 20; i++) await post(client, 0, `warm${i}`);
  const acks = [];
  for (let i = 0; i < options.count; i++) {
    acks.push(await post(client, 0, `a${i}`));
    await sleep(options.gapMs);
  }
  finish({ acks });
}

// Subscribers: client i watches room i % queries; `onSeen(body, now)` runs for each
// callback whose newest message this client has not reported yet. Resolves once every
// subscriber holds its first result (or after `timeoutMs`, with however many did).
async function subscribe(count, queries, onSeen, timeoutMs = 120_000) {
  let connected = 0;
  let resolveAll;
  const all = new Promise((resolve) => (resolveAll = resolve));
  const clients = [];
  for (let i = 0; i < count; i++) {
    const client = newClient();
    clients.push(client);
    let first = true;
    let last = null;
    client.onUpdate("rooms:latest", { room: i % queries }, (messages) => {
      const now = performance.now();
      if (first) {
        first = false;
        last = messages[0]?.body ?? null;
        if (++connected === count) resolveAll();
        return;
      }
      const body = messages[0]?.body ?? null;
      if (body !== null && body !== last) {
        last = body;
        onSeen(body, now);
      }
    });
    if (i % 50 === 49) await sleep(20); // do not open a thousand sockets in one burst
  }
  await Promise.race([all, sleep(timeoutMs)]);
  return { clients, connected: () => connected };
}

async function push() {
  const sent = new Map(); // body -> performance.now() when mutation() was called
  const latencies = [];
  const subs = await subscribe(options.clients, options.queries, (body, now) => {
    const at = sent.get(body);
    if (at !== undefined) latencies.push(now - at);
  });
  const writer = newClient();
  for (let i = 0; i < 5; i++) await post(writer, 0, `warm${i}`);
  const acks = [];
  const pending = [];
  const total = Math.round(options.rate * options.seconds);
  const start = performance.now();
  for (let n = 0; n < total; n++) {
    const wait = start + (n * 1000) / options.rate - performance.now();
    if (wait > 0) await sleep(wait);
    const body = `m${n}`;
    const at = performance.now();
    sent.set(body, at);
    pending.push(writer.mutation("rooms:post", { room: n % options.queries, body })
      .then(() => acks.push(performance.now() - at)));
  }
  await Promise.all(pending);
  await sleep(500);
  finish({ latencies, acks, connected: subs.connected() });
}

async function fanout() {
  let round = null; // {body, at, deliveries}
  const subs = await subscribe(options.clients, 1, (body, now) => {
    if (round !== null && body === round.body) round.deliveries.push(now - round.at);
  });
  const writer = newClient();
  for (let i = 0; i < 3; i++) await post(writer, 0, `warm${i}`);
  await sleep(options.gapMs);
  const rounds = [];
  for (let r = 0; r < options.rounds; r++) {
    round = { body: `f${r}`, at: performance.now(), deliveries: [] };
    await writer.mutation("rooms:post", { room: 0, body: round.body });
    round.ack = performance.now() - round.at;
    const deadline = performance.now() + 10_000;
    while (round.deliveries.length < subs.connected() && performance.now() < deadline) {
      await sleep(1);
    }
    rounds.push({ deliveries: round.deliveries, ack: round.ack });
    await sleep(options.gapMs);
  }
  finish({ rounds, connected: subs.connected() });
}

const modes = { throughput, ack, push, fanout };
if (!(mode in modes) || !url) {
  process.stderr.write("usage: node clients.mjs throughput|ack|push|fanout URL '{options}'\n");
  process.exit(2);
}
await modes[mode]();
