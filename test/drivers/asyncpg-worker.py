#!/usr/bin/python3
"""The driver matrix's asyncpg worker (test/integration/driver-matrix.test.ts).

Usage: asyncpg-worker.py URL TABLE WORKERS TRANSACTIONS [TIMEOUT_SECONDS]

Runs WORKERS asyncio tasks, each on a connection of its own, through asyncpg's statement cache (named
server-side prepared statements, prepared once per connection and re-executed by name). Each task runs
TRANSACTIONS transactions numbered 0..T-1; every fourth is three autocommit statements, the others are
BEGIN; probe; INSERT; count; COMMIT:

- probe: SELECT $1::int + 1, the worker's parity (a literal: even and odd workers prepare two different
  texts), pg_backend_pid(), and whether the session has this statement in pg_prepared_statements (true only
  when it runs as a named prepared statement);
- INSERT INTO TABLE (worker, seq, backend) VALUES ($1, $2, pg_backend_pid());
- count: this worker's rows and the sum of their seq, which must cover every row committed so far.

A task stops at its first error. Prints one JSON line (errors: the first few distinct messages) and exits 0
only when every transaction ran with the right results; the whole run stops itself after TIMEOUT_SECONDS
(default 100). Debian's python3-asyncpg.
"""

import asyncio
import json
import os
import sys
import time

import asyncpg

PROBE_MARKER = "matrix-probe-a"
MAX_REPORTED_ERRORS = 5


class Run:
    def __init__(self, workers):
        self.errors = []
        self.messages = set()
        self.error_count = 0
        self.transactions = 0
        self.probe_executions = 0
        self.prepared_executions = 0
        # Per worker connection: the backends its probe statement ran on.
        self.pids = [set() for _ in range(workers)]

    def fail(self, worker, where, message):
        """Counts every error; reports the first few distinct messages, each with where it first happened."""
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS and message not in self.messages:
            self.messages.add(message)
            self.errors.append(f"worker {worker}, {where}: {message}")

    def report(self, workers, transactions, elapsed_s):
        counts = [len(p) for p in self.pids]
        ok = self.error_count == 0 and self.transactions == workers * transactions
        return {
            "driver": "asyncpg",
            "ok": ok,
            "errors": self.errors,
            "errorCount": self.error_count,
            "workers": workers,
            "transactions": self.transactions,
            "expectedTransactions": workers * transactions,
            "probeExecutions": self.probe_executions,
            "preparedExecutions": self.prepared_executions,
            "distinctBackendPids": max(counts, default=0),
            "minDistinctBackendPids": min(counts, default=0),
            "backendPids": len(set().union(*self.pids)),
            "elapsedMs": round(elapsed_s * 1000),
        }


class Mismatch(Exception):
    pass


def expect(what, actual, wanted):
    if actual != wanted:
        raise Mismatch(f"{what}: got {actual!r}, expected {wanted!r}")


async def worker(run, w, url, table, transactions, deadline):
    # Two texts of the probe (even and odd workers): where the driver's statement names repeat across
    # connections, one name stands for different statements on different connections.
    variant = w % 2
    probe_sql = (
        f"SELECT $1::int + 1 AS next, {variant} AS variant, pg_backend_pid() AS pid,"
        " EXISTS (SELECT FROM pg_prepared_statements"
        f" WHERE position('{PROBE_MARKER}' in statement) > 0) AS prepared"
    )
    insert_sql = f"INSERT INTO {table} (worker, seq, backend) VALUES ($1, $2, pg_backend_pid())"
    count_sql = (
        "SELECT count(*)::int AS n, coalesce(sum(seq), 0)::int AS total, pg_backend_pid() AS pid"
        f" FROM {table} WHERE worker = $1"
    )
    i = 0
    conn = None
    try:
        conn = await asyncpg.connect(url)
        committed_sum = 0

        async def probe():
            value = w * 100_000 + i
            row = await conn.fetchrow(probe_sql, value)
            expect("probe sum", row["next"], value + 1)
            expect("probe variant", row["variant"], variant)
            run.probe_executions += 1
            if row["prepared"]:
                run.prepared_executions += 1
            run.pids[w].add(row["pid"])
            return row["pid"]

        async def insert():
            status = await conn.execute(insert_sql, w, i)
            expect("insert status", status, "INSERT 0 1")

        async def count():
            row = await conn.fetchrow(count_sql, w)
            expect("row count", row["n"], i + 1)
            expect("seq sum", row["total"], committed_sum + i)
            return row["pid"]

        for i in range(transactions):
            if time.monotonic() > deadline:
                raise Mismatch(f"out of time after {i} of {transactions} transactions")
            if i % 4 == 3:
                await probe()
                await insert()
                await count()
            else:
                async with conn.transaction():
                    pid = await probe()
                    await insert()
                    expect("backend within the transaction", await count(), pid)
            committed_sum += i
            run.transactions += 1
    except Exception as error:  # noqa: BLE001 - every failure is reported, none is fatal to the others
        first_line = str(error).split("\n", 1)[0][:300]
        run.fail(w, f"transaction {i}", f"{type(error).__name__}: {first_line}")
    finally:
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:  # noqa: BLE001
                conn.terminate()


async def main():
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url, table = sys.argv[1], sys.argv[2]
    workers, transactions = int(sys.argv[3]), int(sys.argv[4])
    timeout_s = float(sys.argv[5]) if len(sys.argv) == 6 else 100.0
    run = Run(workers)
    started = time.monotonic()
    deadline = started + timeout_s
    tasks = [asyncio.create_task(worker(run, w, url, table, transactions, deadline)) for w in range(workers)]
    done, pending = await asyncio.wait(tasks, timeout=timeout_s + 5)
    if pending:
        run.fail("all", "end", f"{len(pending)} workers still running after {timeout_s + 5:.0f} s")
    report = run.report(workers, transactions, time.monotonic() - started)
    print(json.dumps(report), flush=True)
    # Stuck connections must not keep the process alive.
    os._exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    asyncio.run(main())
