// The official Convex browser client (npm `convex`, pinned in the repository's
// web/package-lock.json), served by the server at /_convex/browser.bundle.js as a classic
// script defining the global `convex` (index.html loads it before the modules).

const bundle = globalThis.convex;
if (!bundle?.ConvexClient) {
  throw new Error("the Convex client did not load from /_convex/browser.bundle.js: "
    + "run scripts/setup (it needs npm) and restart the server");
}

export const { ConvexClient, ConvexHttpClient } = bundle;
