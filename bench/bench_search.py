"""Search benchmarks (issue 14), each figure next to a baseline measured in the same run:

- text search over BENCH_DOCS messages (default 100,000): p50/p99 latency and throughput of
  a search query (engine, one snapshot, read set recorded) vs the raw SQL it issues on
  asyncpg; index build (backfill) time; relevance agreement with a reference BM25 (bm25s,
  Lucene's idf, same tokens): mean top-10 overlap, target >= 0.8;
- vector search over BENCH_VECTORS x 1,024-d vectors (default 100,000): recall@10 against
  exact search (numpy), target >= 0.95; queries/s vs the same pgvector SQL issued raw,
  target >= 0.5x; HNSW build time;
- re-run cost: 1,000 live search subscriptions and 50 writes/s: commit-to-push p50/p99 and
  spurious re-runs (target 0).

pgvector is needed, so everything runs on an embedded Postgres of its own (a temporary
data directory). `BENCH_SMOKE=1` runs tiny sizes for CI (the figures then mean nothing).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from common import SMOKE, write_app

from reactive_store.deployment import Deployment, Settings
from reactive_store.engine.engine import Engine
from reactive_store.storage.embedded import EmbeddedPostgres
from reactive_store.storage.search import ranking_statement
from reactive_store.storage.tokenizer import QueryTerms, terms
from reactive_store.storage.vectors import EF_SEARCH, nearest_statement

DOCS = 2_000 if SMOKE else int(os.environ.get("BENCH_DOCS", 100_000))
VECTORS = 500 if SMOKE else int(os.environ.get("BENCH_VECTORS", 100_000))
DIMENSIONS = 1024
SECONDS = 0.5 if SMOKE else float(os.environ.get("BENCH_SECONDS", 10))
SUBSCRIPTIONS = 50 if SMOKE else 1_000
WRITES_PER_S = 50
SESSIONS = 200

SCHEMA = """
from reactive_store import define_schema, define_table, v
schema = define_schema({
    "messages": define_table({"n": v.float64(), "body": v.string(), "session": v.string()})
        INDEX_MESSAGES,
    "items": define_table({"n": v.float64(), "group": v.string(),
                           "embedding": v.array(v.float64())})
        INDEX_ITEMS,
})
"""
SEARCH_INDEX = '.search_index("search_body", search_field="body", filter_fields=["session"])'
VECTOR_INDEX = (f'.vector_index("by_embedding", vector_field="embedding", '
                f'dimensions={DIMENSIONS}, filter_fields=["group"])')
FUNCTIONS = """
from reactive_store import mutation, query, v

@query(args={"text": v.string()})
async def find(ctx, text):
    return await ctx.db.query("messages").with_search_index(
        "search_body", lambda q: q.search("body", text)).take(10)

@query(args={"text": v.string(), "session": v.string()})
async def find_in(ctx, text, session):
    docs = await ctx.db.query("messages").with_search_index(
        "search_body", lambda q: q.search("body", text).eq("session", session)).take(10)
    return [d["_id"] for d in docs]

@query(args={"vector": v.array(v.float64())})
async def near(ctx, vector):
    return await ctx.vector_search("items", "by_embedding", {"vector": vector, "limit": 10})

@mutation(args={"body": v.string(), "session": v.string()})
async def post(ctx, body, session):
    await ctx.db.insert("messages", {"n": -1.0, "body": body, "session": session})
"""


def schema(messages: str = "", items: str = "") -> str:
    return SCHEMA.replace("INDEX_MESSAGES", messages).replace("INDEX_ITEMS", items)


# ---- corpora -----------------------------------------------------------------------------

def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(4, 9))))
    return sorted(words)


def zipf_weights(n: int) -> list[float]:
    return [1.0 / (rank + 1) ** 1.07 for rank in range(n)]


def messages(rng: random.Random, words: list[str], count: int) -> list[str]:
    weights = zipf_weights(len(words))
    out = []
    for _ in range(count):
        out.append(" ".join(rng.choices(words, weights, k=rng.randint(6, 40))))
    return out


def queries(rng: random.Random, words: list[str], count: int) -> list[str]:
    mid = words[50:3000]  # neither stop-word-like nor unique
    return [" ".join(rng.sample(mid, rng.randint(1, 3))) for _ in range(count)]


def embedding_like(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors shaped like text embeddings: a low-dimensional structure (topics in a
    64-d latent space, mapped linearly into 1,024-d) plus a little isotropic noise; and
    probe vectors near stored ones. Isotropic 1,024-d noise would make every neighbour
    equally far, which no real embedding model produces and no ANN index can rank."""
    latent_dims = 64
    topics = rng.normal(size=(max(1, count // 200), latent_dims))
    latent = topics[rng.integers(0, len(topics), size=count)] + 0.7 * rng.normal(
        size=(count, latent_dims))
    lift = rng.normal(size=(latent_dims, DIMENSIONS)) / np.sqrt(latent_dims)

    def embed(z: np.ndarray) -> np.ndarray:
        x = z @ lift + 0.05 * rng.normal(size=(len(z), DIMENSIONS))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    picks = latent[rng.integers(0, count, size=50 if SMOKE else 200)]
    return embed(latent), embed(picks + 0.3 * rng.normal(size=picks.shape))


# ---- helpers -----------------------------------------------------------------------------

def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def latencies(op: Callable[[int], Awaitable[Any]], count: int) -> list[float]:
    out = []
    for i in range(count):
        start = time.perf_counter()
        await op(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


async def throughput(op: Callable[[int], Awaitable[Any]], workers: int = 4) -> float:
    count = 0
    stop = time.perf_counter() + SECONDS

    async def loop(worker: int) -> None:
        nonlocal count
        i = worker
        while time.perf_counter() < stop:
            await op(i)
            i += workers
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(workers)))
    return count / (time.perf_counter() - start)


def line(name: str, ours: float, base: float, unit: str, target: str = "",
         higher_better: bool = True) -> None:
    """One figure and its baseline; the ratio is always "how fast we are relative to raw"
    (throughput ours/raw, latency raw/ours), so above 1 means faster than raw."""
    ratio = (ours / base if higher_better else base / ours) if base and ours else 0.0
    suffix = f" (target {target})" if target else ""
    print(f"{name}: reactive-store {ours:,.2f} {unit} | raw SQL {base:,.2f} {unit} | "
          f"speed ratio {ratio:.2f}x{suffix}", flush=True)


async def bulk(engine: Engine, table: str, docs: list[dict[str, Any]], batch: int = 500) -> None:
    for start in range(0, len(docs), batch):
        chunk = docs[start:start + batch]

        async def body(db: Any, tx: Any, chunk: list[dict[str, Any]] = chunk) -> Any:
            for doc in chunk:
                await db.insert(table, doc)
            return None, None

        await engine.transact("load", body)


async def numbered_ids(engine: Engine, table: str) -> dict[int, str]:
    """Document ids by their field `n` (the position in the generated corpus)."""
    async with engine.store.read() as tx:
        rows = await tx.fetch(f"SELECT _id, (doc->>'n')::float8 FROM "
                              f"{engine.store.names.table(table)}")
    return {int(n): doc_id for doc_id, n in rows if n >= 0}


async def reload(deployment: Deployment, app: Path, text: str) -> float:
    (app / "schema" / "__init__.py").write_text(text)
    start = time.perf_counter()
    await deployment.reload()
    return time.perf_counter() - start


# ---- text search ---------------------------------------------------------------------------

async def bench_text(deployment: Deployment, app: Path, url: str) -> None:
    engine = deployment.engine
    rng = random.Random(14)
    words = vocabulary(rng)
    bodies = messages(rng, words, DOCS)
    sessions = [f"s{i}" for i in range(SESSIONS)]
    started = time.perf_counter()
    await bulk(engine, "messages", [{"n": float(i), "body": b, "session": sessions[i % SESSIONS]}
                                    for i, b in enumerate(bodies)])
    print(f"text: loaded {DOCS:,} messages in {time.perf_counter() - started:.1f} s", flush=True)
    build = await reload(deployment, app, schema(SEARCH_INDEX))
    print(f"text: search index built (backfill) in {build:.1f} s for {DOCS:,} messages",
          flush=True)
    qs = queries(rng, words, 50 if SMOKE else 300)
    side = engine.store.names.side_tables[("messages", "search_body")]
    raw = await asyncpg.create_pool(url, min_size=4, max_size=8)
    try:
        async def ours(i: int) -> Any:
            return await engine.run_query("m:find", {"text": qs[i % len(qs)]})

        async def baseline(i: int) -> Any:
            sql, args = ranking_statement(side, QueryTerms.of(qs[i % len(qs)]), {}, 10)
            async with raw.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                               readonly=True):
                ids = [r[0] for r in await conn.fetch(sql, *args)]
                return await conn.fetch(
                    f"SELECT _id, _creation_time, doc FROM {engine.store.names.table('messages')} "
                    "WHERE _id = ANY($1::text[])", ids)

        await ours(0), await baseline(0)  # warm both
        mine, base = await latencies(ours, len(qs)), await latencies(baseline, len(qs))
        line("text search p50", percentile(mine, 0.5), percentile(base, 0.5), "ms",
             higher_better=False)
        line("text search p99", percentile(mine, 0.99), percentile(base, 0.99), "ms",
             higher_better=False)
        line("text search throughput (4 workers)", await throughput(ours),
             await throughput(baseline), "queries/s")
    finally:
        await raw.close()
    await relevance(engine, bodies, qs)


async def relevance(engine: Engine, bodies: list[str], qs: list[str]) -> None:
    import bm25s

    ids = await numbered_ids(engine, "messages")
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index([terms(b) for b in bodies], show_progress=False)
    overlaps = []
    for q in qs:
        got = {d["_id"] for d in (await engine.run_query("m:find", {"text": q})).value}
        ranked, scores = reference.retrieve([terms(q)], k=10, show_progress=False)
        want = {ids[int(j)] for j, s in zip(ranked[0], scores[0], strict=True) if s > 0}
        if want:
            overlaps.append(len(got & want) / len(want))
    mean = statistics.mean(overlaps)
    print(f"text relevance: mean top-10 overlap with bm25s (Lucene BM25, k1=1.2, b=0.75) "
          f"{mean:.3f} over {len(overlaps)} queries (target >= 0.8)", flush=True)


# ---- vector search -------------------------------------------------------------------------

async def bench_vectors(deployment: Deployment, app: Path, url: str) -> None:
    engine = deployment.engine
    points, probes = embedding_like(np.random.default_rng(14), VECTORS)
    started = time.perf_counter()
    await bulk(engine, "items", [{"n": float(i), "group": f"g{i % 10}", "embedding": v.tolist()}
                                 for i, v in enumerate(points)], batch=200)
    print(f"vector: loaded {VECTORS:,} x {DIMENSIONS}-d in {time.perf_counter() - started:.1f} s",
          flush=True)
    build = await reload(deployment, app, schema(SEARCH_INDEX if DOCS else "", VECTOR_INDEX))
    print(f"vector: HNSW index built (backfill + graph) in {build:.1f} s", flush=True)

    ids = await numbered_ids(engine, "items")
    exact = np.argsort(-(points @ probes.T), axis=0)[:10].T
    recalls = []
    for probe, truth in zip(probes, exact, strict=True):
        hits = (await engine.run_query("m:near", {"vector": probe.tolist()})).value
        recalls.append(len({h["_id"] for h in hits} & {ids[j] for j in truth}) / 10)
    print(f"vector recall@10 vs exact: {statistics.mean(recalls):.3f} (target >= 0.95, "
          f"hnsw.ef_search={EF_SEARCH})", flush=True)
    side = engine.store.names.side_tables[("items", "by_embedding")]
    raw = await asyncpg.create_pool(url, min_size=4, max_size=8)
    try:
        async def ours(i: int) -> Any:
            return await engine.run_query("m:near", {"vector": probes[i % len(probes)].tolist()})

        async def baseline(i: int) -> Any:
            sql, args = nearest_statement(side, probes[i % len(probes)].tolist(), 10, [])
            async with raw.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                               readonly=True):
                await conn.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
                await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                return await conn.fetch(sql, *args)

        line("vector search throughput (4 workers)", await throughput(ours),
             await throughput(baseline), "queries/s", ">= 0.5x")
    finally:
        await raw.close()


# ---- re-run cost ---------------------------------------------------------------------------

async def bench_reruns(deployment: Deployment) -> None:
    engine, manager = deployment.engine, deployment.subscriptions
    rng = random.Random(3)
    words = vocabulary(random.Random(14))[100:2100]
    subs: dict[tuple[str, str], Any] = {}
    while len(subs) < SUBSCRIPTIONS:
        key = (rng.choice(words), f"s{rng.randrange(SESSIONS)}")
        subs[key] = manager.subscribe("m:find_in", {"text": key[0], "session": key[1]},
                                      None, lambda: None)
    await manager.settled()
    runs_before = {k: live.runs for k, live in subs.items()}
    pushes: list[float] = []
    expected_runs = 0
    deadline = time.perf_counter() + (2 if SMOKE else SECONDS)
    while time.perf_counter() < deadline:
        tick = time.perf_counter()
        # Half the writes are aimed at a subscription (its session and, half the time, its
        # word); the rest land anywhere.
        word, session = rng.choice(list(subs)) if rng.random() < 0.5 else (
            rng.choice(words), f"s{rng.randrange(SESSIONS)}")
        body = " ".join(rng.choices(words, k=12) + ([word] if rng.random() < 0.5 else []))
        written = set(terms(body))  # a one-word search also matches words it begins
        hit = [live for (t, s), live in subs.items()
               if s == session and any(w.startswith(t) for w in written)]
        outcome = await engine.run_mutation("m:post", {"body": body, "session": session})
        committed = time.perf_counter()
        await manager.settled(outcome.ts)
        if hit:
            pushes.append((time.perf_counter() - committed) * 1000)
        expected_runs += len(hit)
        await asyncio.sleep(max(0.0, 1 / WRITES_PER_S - (time.perf_counter() - tick)))
    runs = sum(live.runs - runs_before[k] for k, live in subs.items())
    # "Push" is measured in process: from the mutation's return (after COMMIT) to every
    # affected live query holding its new result, ready for the sockets' next Transition.
    print(f"re-runs: {SUBSCRIPTIONS:,} live searches, {WRITES_PER_S} writes/s: commit-to-push "
          f"p50 {percentile(pushes, 0.5):.1f} ms, p99 {percentile(pushes, 0.99):.1f} ms over "
          f"{len(pushes)} pushes; {runs} re-runs for {expected_runs} the promise requires: "
          f"{runs - expected_runs} spurious (target 0)", flush=True)


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rs-bench-search-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pgdata")
        url = pg.start()
        try:
            app = write_app({"schema/__init__.py": schema(), "functions/m.py": FUNCTIONS})
            deployment = Deployment(Settings(app_dir=app, database_url=url, run_jobs=False,
                                             pool_size=8))
            await deployment.start()
            parts = os.environ.get("BENCH_PARTS", "text,reruns,vectors").split(",")
            try:
                if "text" in parts:
                    await bench_text(deployment, app, url)
                if "reruns" in parts:
                    await bench_reruns(deployment)
                if "vectors" in parts:
                    await bench_vectors(deployment, app, url)
            finally:
                await deployment.stop()
        finally:
            pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
