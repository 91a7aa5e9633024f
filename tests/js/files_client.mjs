#!/usr/bin/env node
// The upload URL flow of Convex's file storage docs, with the official npm `ConvexClient`
// (convex/browser) and fetch, for tests/e2e/test_files_official_client.py.
//
//   node files_client.mjs URL
//
// The app must have files:generateUploadUrl (mutation), files:list (query over `_storage`),
// files:url (query, storageId -> get_url) and files:remove (mutation). Prints one JSON line per
// step on stdout:
//   {"step": "list", "ids": [...]}                     every onUpdate of files:list
//   {"step": "uploaded", "status", "body"}             the POST to the upload URL
//   {"step": "listed", "file": {...}}                  the new _storage document, seen live
//   {"step": "range", "status", "contentRange", "contentType", "text"}
//   {"step": "whole", "status", "etag", "length", "text"}
//   {"step": "reused", "status", "body"}               a second POST to the same upload URL
//   {"step": "removed", "ids": [...]}                  files:list after files:remove
//   {"step": "gone", "status", "url"}                  the file URL after the delete
//   {"step": "done"}
// Anything unexpected throws: Node exits with code 1 and the test shows stderr.

import { ConvexClient } from "convex/browser";

const TEXT = "Hello, file storage! ".repeat(50);

function emit(step) {
  process.stdout.write(JSON.stringify(step) + "\n");
}

const url = process.argv[2];
if (!url) {
  process.stderr.write("usage: node files_client.mjs URL\n");
  process.exit(2);
}
console.log = console.info = console.debug = (...parts) => console.error(...parts);

const client = new ConvexClient(url);
let latest = null;
const waiters = new Set();
client.onUpdate("files:list", {}, (files) => {
  latest = files;
  emit({ step: "list", ids: files.map((f) => f._id) });
  for (const waiter of waiters) waiter();
}, (error) => {
  throw error;
});

function until(predicate) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("files:list never matched")), 10_000);
    const check = () => {
      if (latest !== null && predicate(latest)) {
        clearTimeout(timer);
        waiters.delete(check);
        resolve(latest);
      }
    };
    waiters.add(check);
    check();
  });
}

await until((files) => files.length === 0);
const uploadUrl = await client.mutation("files:generateUploadUrl", {});
const blob = new Blob([TEXT], { type: "text/plain" });
const posted = await fetch(uploadUrl, {
  method: "POST", headers: { "Content-Type": blob.type }, body: blob,
});
const { storageId } = await posted.json();
emit({ step: "uploaded", status: posted.status, body: { storageId } });

const listed = await until((files) => files.some((f) => f._id === storageId));
emit({ step: "listed", file: listed.find((f) => f._id === storageId) });

const fileUrl = await client.query("files:url", { storageId });
const ranged = await fetch(fileUrl, { headers: { Range: "bytes=7-18" } });
emit({
  step: "range", status: ranged.status, contentRange: ranged.headers.get("content-range"),
  contentType: ranged.headers.get("content-type"), text: await ranged.text(),
});
const whole = await fetch(fileUrl);
const wholeText = await whole.text();
emit({
  step: "whole", status: whole.status, etag: whole.headers.get("etag"),
  length: wholeText.length, text: wholeText === TEXT ? "same" : "different",
});

const reused = await fetch(uploadUrl, { method: "POST", body: "again" });
emit({ step: "reused", status: reused.status, body: await reused.json() });

await client.mutation("files:remove", { storageId });
const after = await until((files) => !files.some((f) => f._id === storageId));
emit({ step: "removed", ids: after.map((f) => f._id) });
const gone = await fetch(fileUrl);
emit({ step: "gone", status: gone.status, url: fileUrl });

await client.close();
emit({ step: "done" });
