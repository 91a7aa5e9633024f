"""The commit log's tables and the SQL functions that log, sequence and announce commits."""

from __future__ import annotations

from reactive_store.storage.names import Names

NOTIFY_WRITES_CHARS = 7000  # Postgres refuses a notification payload of 8000 bytes


def commit_log_ddl(n: Names) -> list[str]:
    """The commit log, client request records, and the two steps of committing.

    A mutation logs its writes with `_record_commit` inside its own transaction, keyed by its
    transaction id and with no timestamp, and commits without any lock. After COMMIT,
    `_sequence` (storage/sequencer.py calls it, once per batch) takes the deployment's lock,
    gives every committed row still without a timestamp the next timestamps in transaction
    id order, NOTIFYs them in that order and commits, releasing the lock only once its
    timestamps are visible. docs/architecture.md ("Commit ordering") argues why this keeps
    timestamps in visibility order.
    """
    commits, mutations = n.system("commits"), n.system("mutations")
    return [
        f"""CREATE TABLE IF NOT EXISTS {commits} (
            ts bigint, xid bigint, writes text NOT NULL,
            committed_at timestamptz NOT NULL DEFAULT now())""",
        # One row per committed client request (session id, request id), so a replay after
        # a reconnect returns the recorded result; `request_hash` names the call (identity,
        # path, arguments) so that a replay of another call is refused, not answered. `ts`
        # stays NULL while the commit log has the request's commit (joined on `xid`), and is
        # copied here when that commit is pruned.
        f"""CREATE TABLE IF NOT EXISTS {mutations} (
            session_id text NOT NULL, request_id bigint NOT NULL, ts bigint,
            result text NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(),
            request_hash text, xid bigint, PRIMARY KEY (session_id, request_id))""",
        _commit_log_migration(n),
        f"CREATE SEQUENCE IF NOT EXISTS {n.system('ts_seq')}",
        # Every commit whose transaction id is below `sequenced_below` has its timestamp: a
        # search for unsequenced commits starts there, not at the log's oldest (in the
        # partial index, the rows `_sequence` updated stay as dead entries until vacuum).
        f"""CREATE TABLE IF NOT EXISTS {n.system('sequencing')} (
            id integer PRIMARY KEY CHECK (id = 1), sequenced_below bigint NOT NULL)""",
        f"INSERT INTO {n.system('sequencing')} VALUES (1, 0) ON CONFLICT DO NOTHING",
        f"DROP FUNCTION IF EXISTS {n.system('commit')}(text)",
        f"DROP FUNCTION IF EXISTS {n.system('commit')}(text, text, bigint, text)",
        _record_commit_ddl(n),
        _legacy_commit_ddl(n),
        _sequence_ddl(n),
        _sequence_requests_ddl(n),
        _sequence_now_ddl(n),
        _snapshot_notice_ddl(n),
    ]


def _commit_log_migration(n: Names) -> str:
    """Bring older commit logs to this shape, one step at a time, each only when missing.

    Every process runs this on each schema push, inside the push's transaction: an ALTER
    TABLE or CREATE INDEX, even one that finds nothing to do, would lock the commit log
    until the push ends and stall every commit and query meanwhile, so the catalog is read
    first (which locks nothing).
    """
    commits, mutations = n.system("commits"), n.system("mutations")

    def column(table: str, name: str, extra: str = "") -> str:
        return (f"EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{table}'::regclass "
                f"AND attname = '{name}' AND NOT attisdropped{extra})")

    def index(name: str) -> str:
        return f"""to_regclass('{n.schema}."{name}"') IS NULL"""

    steps = [  # deployments made before timestamps were given after COMMIT: ts was the key
        (f"NOT {column(commits, 'xid')}", f"ALTER TABLE {commits} ADD COLUMN xid bigint"),
        (f"EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '{commits}'::regclass AND "
         "conname = '_commits_pkey')", f'ALTER TABLE {commits} DROP CONSTRAINT "_commits_pkey"'),
        (column(commits, "ts", " AND attnotnull"),
         f"ALTER TABLE {commits} ALTER COLUMN ts DROP NOT NULL"),
        (index("_commits_ts"), f'CREATE UNIQUE INDEX "_commits_ts" ON {commits} (ts)'),
        (index("_commits_xid"), f'CREATE UNIQUE INDEX "_commits_xid" ON {commits} (xid)'),
        (index("_commits_unsequenced"),
         f'CREATE INDEX "_commits_unsequenced" ON {commits} (xid) WHERE ts IS NULL'),
        (f"NOT {column(mutations, 'request_hash')}",
         f"ALTER TABLE {mutations} ADD COLUMN request_hash text"),
        (f"NOT {column(mutations, 'xid')}", f"ALTER TABLE {mutations} ADD COLUMN xid bigint"),
        (column(mutations, "ts", " AND attnotnull"),
         f"ALTER TABLE {mutations} ALTER COLUMN ts DROP NOT NULL"),
        (index("_mutations_xid"),
         f'CREATE INDEX "_mutations_xid" ON {mutations} (xid) WHERE ts IS NULL'),
    ]
    body = "\n".join(f"IF {check} THEN {action}; END IF;" for check, action in steps)
    return f"DO $$ BEGIN\n{body}\nEND $$"


def _announce(n: Names, ts: str, writes: str) -> str:
    """PL/pgSQL that NOTIFYs one commit: `ts writes`, or `ts` alone when the write set would
    not fit a notification (listeners then read it from the log)."""
    return (f"IF length({writes}) <= {NOTIFY_WRITES_CHARS} THEN "
            f"PERFORM pg_notify('{n.channel}', {ts}::text || ' ' || {writes}); "
            f"ELSE PERFORM pg_notify('{n.channel}', {ts}::text); END IF;")


def _legacy_commit_ddl(n: Names) -> str:
    # The commit step of servers not yet upgraded (a rolling upgrade): ordering by a lock
    # held through COMMIT, which `_sequence` also takes, so both kinds of commit get
    # timestamps in visibility order.
    return f"""CREATE OR REPLACE FUNCTION {n.system('commit')}(
            writes text, session_id text DEFAULT NULL, request_id bigint DEFAULT NULL,
            result text DEFAULT NULL, request_hash text DEFAULT NULL) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE t bigint;
        BEGIN
            PERFORM set_config('lock_timeout', '0', true);
            PERFORM pg_advisory_xact_lock({n.commit_lock});
            t := greatest(nextval('{n.system('ts_seq')}'),
                          (extract(epoch FROM clock_timestamp()) * 1e9)::bigint);
            PERFORM setval('{n.system('ts_seq')}', t);
            INSERT INTO {n.system('commits')} (ts, writes) VALUES (t, writes);
            IF session_id IS NOT NULL THEN
                INSERT INTO {n.system('mutations')}
                    (session_id, request_id, ts, result, request_hash)
                VALUES (session_id, request_id, t, result, request_hash)
                ON CONFLICT ON CONSTRAINT "_mutations_pkey" DO UPDATE SET ts = excluded.ts,
                    xid = NULL, result = excluded.result, request_hash = excluded.request_hash,
                    committed_at = now();
            END IF;
            {_announce(n, "t", "writes")}
            RETURN t;
        END $$"""


def _record_commit_ddl(n: Names) -> str:
    # A request record left by an earlier session that reused the session id (a client
    # starting over with connectionCount 0) is replaced, not a duplicate-key failure.
    commits, mutations = n.system("commits"), n.system("mutations")
    return f"""CREATE OR REPLACE FUNCTION {n.system('record_commit')}(
            writes text, session_id text DEFAULT NULL, request_id bigint DEFAULT NULL,
            result text DEFAULT NULL, request_hash text DEFAULT NULL) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE x bigint := pg_current_xact_id()::text::bigint;
        BEGIN
            INSERT INTO {commits} (xid, writes) VALUES (x, writes);
            IF session_id IS NOT NULL THEN
                INSERT INTO {mutations} (session_id, request_id, xid, result, request_hash)
                VALUES (session_id, request_id, x, result, request_hash)
                ON CONFLICT ON CONSTRAINT "_mutations_pkey" DO UPDATE SET ts = NULL,
                    xid = excluded.xid, result = excluded.result,
                    request_hash = excluded.request_hash, committed_at = now();
            END IF;
            RETURN x;
        END $$"""


def unsequenced_sql(n: Names, alias: str = "c") -> str:
    """The condition that a commit-log row has no timestamp yet, bounded by the watermark."""
    return (f"{alias}.ts IS NULL AND {alias}.xid >= "
            f"(SELECT sequenced_below FROM {n.system('sequencing')})")


def _sequence_ddl(n: Names) -> str:
    # The lock is taken before the statement that reads the unsequenced rows, so that
    # statement's snapshot (READ COMMITTED: one per statement) sees every batch before it.
    # The watermark is the xmin of a snapshot taken before that statement's: a transaction
    # below it had ended by then, so if it committed, this call gives it its timestamp.
    commits, seq = n.system("commits"), n.system("ts_seq")
    return f"""CREATE OR REPLACE FUNCTION {n.system('sequence')}(wanted bigint[])
        RETURNS TABLE (xid bigint, ts bigint)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        DECLARE t bigint; k bigint := 0; below bigint; r record;
        BEGIN
            IF EXISTS (SELECT 1 FROM {commits} c WHERE {unsequenced_sql(n)}) THEN
                PERFORM set_config('lock_timeout', '0', true);
                PERFORM set_config('synchronous_commit', 'off', true);
                PERFORM pg_advisory_xact_lock({n.commit_lock});
                -- A fresh snapshot (this statement's): the holder this call waited for may
                -- have sequenced everything, this call's own commit included. Then it
                -- writes nothing, so the next waiter gets the lock at once.
                IF NOT EXISTS (SELECT 1 FROM {commits} c WHERE {unsequenced_sql(n)}) THEN
                    RETURN QUERY SELECT c.xid, c.ts FROM {commits} c
                        WHERE c.xid = ANY(wanted) AND c.ts IS NOT NULL;
                    RETURN;
                END IF;
                below := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
                t := greatest(nextval('{seq}'),
                              (extract(epoch FROM clock_timestamp()) * 1e9)::bigint);
                FOR r IN
                    WITH p AS (SELECT u.ctid AS tid, row_number() OVER (ORDER BY u.xid) - 1
                                   AS i FROM {commits} u WHERE {unsequenced_sql(n, "u")}),
                         given AS (UPDATE {commits} c SET ts = t + p.i FROM p
                                   WHERE c.ctid = p.tid RETURNING c.ts, c.writes)
                    SELECT given.ts, given.writes FROM given ORDER BY given.ts
                LOOP
                    k := k + 1;
                    {_announce(n, "r.ts", "r.writes")}
                END LOOP;
                PERFORM setval('{seq}', t + greatest(k, 1) - 1);
                UPDATE {n.system('sequencing')} SET sequenced_below = below;
            END IF;
            RETURN QUERY SELECT c.xid, c.ts FROM {commits} c
                WHERE c.xid = ANY(wanted) AND c.ts IS NOT NULL;
        END $$"""


def _sequence_requests_ddl(n: Names) -> str:
    # For commits known by their client request, not their xid: a transaction whose writes
    # were all buffered inserts never read its xid (storage/transaction.py).
    commits, mutations = n.system("commits"), n.system("mutations")
    return f"""CREATE OR REPLACE FUNCTION {n.system('sequence_requests')}(
            wanted bigint[], sessions text[], requests bigint[])
        RETURNS TABLE (xid bigint, ts bigint, session_id text, request_id bigint)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        BEGIN
            RETURN QUERY SELECT s.xid, s.ts, NULL::text, NULL::bigint
                FROM {n.system('sequence')}(wanted) s;
            RETURN QUERY SELECT m.xid, c.ts, m.session_id, m.request_id
                FROM unnest(sessions, requests) AS w(session_id, request_id)
                JOIN {mutations} m
                    ON m.session_id = w.session_id AND m.request_id = w.request_id
                JOIN {commits} c ON c.xid = m.xid
                WHERE c.ts IS NOT NULL;
        END $$"""


def _sequence_now_ddl(n: Names) -> str:
    # Sent after COMMIT in the same message (storage/connections.py): it must never fail,
    # or the message would report an error for a transaction that did commit.
    return f"""CREATE OR REPLACE FUNCTION {n.system('sequence_now')}() RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM {n.system('sequence')}('{{}}'::bigint[]);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'sequencing after COMMIT failed: %', SQLERRM;
        END $$"""


SNAPSHOT_NOTICE = "reactive-store snapshot "


def snapshot_sql(n: Names) -> str:
    """What a transaction's snapshot holds of the commit log: the newest timestamp, and the
    write sets of the commits it sees that have none yet, in xid order."""
    commits = n.system("commits")
    return (f"SELECT coalesce((SELECT max(ts) FROM {commits}), 0), "
            f"ARRAY(SELECT writes FROM {commits} c WHERE {unsequenced_sql(n)} ORDER BY xid)")


def _snapshot_notice_ddl(n: Names) -> str:
    # Sent with BEGIN in one message (storage/connections.py): the driver drops the rows of
    # such a message, so the snapshot travels back as a NOTICE (the write sets as a JSON
    # array of strings). As the transaction's first statement, its SELECT is what takes
    # the snapshot (REPEATABLE READ), as `snapshot_sql` sent on its own would.
    return f"""CREATE OR REPLACE FUNCTION {n.system('snapshot_notice')}() RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE t bigint; w text[];
        BEGIN
            SELECT * INTO t, w FROM ({snapshot_sql(n)}) AS s;
            RAISE NOTICE '{SNAPSHOT_NOTICE}% %', t, to_json(w);
        END $$"""
