"""Per-posting cost of a batch of postings in one process (run by hand; not a test): client CPU,
PostgreSQL backend CPU, and wall time per SQL statement and for the commit, so that one can see
where the time goes (and what runs while balance rows are held) without the noise of eight
clients on a shared machine.

    .venv/bin/python bench/ledger_profile.py [--batches 40] [--batch 1000] [--profile out.pstats]

Prints `name: value` lines (per posting, in ms) and the statements with their count and total
wall time (on a local server, the wall time of a statement is mostly the server's work).
"""
from __future__ import annotations

import argparse
import cProfile
import random
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from alembic import command  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import ledger_bench  # noqa: E402
from infra.auth import SYSTEM  # noqa: E402
from infra.db import make_engine  # noqa: E402
from infra.runtime import tune_gc  # noqa: E402
from ledger.services.posting import post_many  # noqa: E402
from migrations.alembic_config import alembic_config  # noqa: E402

STATS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
IN_BATCH: dict[str, int] = defaultdict(int)  # a statement's runs in the current batch: [2] is its second
_execute, _commit = psycopg.Cursor.execute, psycopg.Connection.commit


def _record(name: str, start: float) -> None:
    s = STATS[name]
    s[0] += 1
    s[1] += time.perf_counter() - start


def _timed(self, query, params=None, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    try:
        return _execute(self, query, params, **kw)
    finally:
        name = " ".join((query if isinstance(query, str) else str(query)).split())[:86]
        IN_BATCH[name] += 1
        _record(name if IN_BATCH[name] == 1 else f"[{IN_BATCH[name]}] {name}", t)


def _timed_commit(self):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    try:
        return _commit(self)
    finally:
        _record("COMMIT", t)


def explain_one(engine, batch) -> None:  # type: ignore[no-untyped-def]
    """One more batch with auto_explain's plans (with triggers and timings) printed as notices."""
    engine.dispose()
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.add_notice_handler(lambda diag: print(diag.message_primary))
        for sql in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0", "SET auto_explain.log_analyze = on",
                    "SET auto_explain.log_triggers = on", "SET auto_explain.log_nested_statements = on",
                    "SET auto_explain.log_level = notice", "SET auto_explain.log_buffers = on",
                    "SET auto_explain.log_timing = on"):
            raw.execute(sql)
        raw.commit()
    batch("explain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=ledger_bench.BATCH)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--profile", help="write a cProfile of the timed batches here")
    parser.add_argument("--explain", action="store_true", help="print auto_explain plans of one more batch")
    args = parser.parse_args()
    name = f"jieyou_lprof_{uuid.uuid4().hex[:8]}"
    ledger_bench.admin_exec(args.admin_url, f'CREATE DATABASE "{name}"')
    url = ledger_bench.db_url(args.admin_url, name)
    try:
        command.upgrade(alembic_config(url), "head")
        people, issuance = ledger_bench.setup(url, args.participants)
        tune_gc()  # as the service's processes are set up
        engine = make_engine(url, pool_size=1, max_overflow=0)
        with Session(engine) as s:
            backend = s.scalar(text("SELECT pg_backend_pid()"))

        def batch(tag: str) -> None:
            IN_BATCH.clear()
            with Session(engine) as s:
                post_many(s, SYSTEM, [ledger_bench.award(random.choice(people), issuance, f"{tag}:{i}")
                                      for i in range(args.batch)])
                s.commit()

        for b in range(5):  # warm-up: prepared statements, caches
            batch(f"warm:{b}")
        psycopg.Cursor.execute = _timed  # type: ignore[method-assign]
        psycopg.Connection.commit = _timed_commit  # type: ignore[method-assign]
        prof = cProfile.Profile() if args.profile else None
        c0, d0, w0 = time.process_time(), ledger_bench.backend_cpu_s(backend), time.perf_counter()
        for b in range(args.batches):
            if prof:
                prof.enable()
            batch(f"timed:{b}")
            if prof:
                prof.disable()
        c1, d1, w1 = time.process_time(), ledger_bench.backend_cpu_s(backend), time.perf_counter()
        if prof:
            prof.dump_stats(args.profile)
        n = args.batches * args.batch
        ledger_bench.emit("client_cpu_ms_per_posting", 1000 * (c1 - c0) / n)
        ledger_bench.emit("server_cpu_ms_per_posting", 1000 * (d1 - d0) / n)
        ledger_bench.emit("wall_ms_per_posting", 1000 * (w1 - w0) / n)
        for q, (count, wall) in sorted(STATS.items(), key=lambda kv: -kv[1][1])[:14]:
            print(f"  {1000 * wall / n:7.4f} ms/p  {count:5d}x  {q}")
        if args.explain:
            explain_one(engine, batch)
        engine.dispose()
    finally:
        ledger_bench.admin_exec(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
