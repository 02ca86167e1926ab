"""Per-contribution cost of bulk verification and award in one process (run by hand; not a test):
client CPU, PostgreSQL backend CPU, and wall time per SQL statement, so that one can see where
the time goes without the noise of four workers on a shared machine.

    .venv/bin/python bench/scoring_profile.py [--contributions 20000] [--chunk 2000]
                                              [--profile-verify v.pstats] [--profile-award a.pstats]

Prints `name: value` lines (per contribution, in ms): verify/award client and server CPU, and
for each phase the statements with their count and total wall time (wall time of a statement on
a local server is mostly the server's work).
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
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
import scoring_bench  # noqa: E402
from infra.db import make_engine, utcnow  # noqa: E402
from infra.runtime import tune_gc  # noqa: E402
from migrations.alembic_config import alembic_config  # noqa: E402
from scoring.services import awards, workflow  # noqa: E402

STATS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
_execute = psycopg.Cursor.execute


def _timed(self, query, params=None, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    try:
        return _execute(self, query, params, **kw)
    finally:
        q = query if isinstance(query, str) else str(query)
        s = STATS[" ".join(q.split())[:90]]
        s[0] += 1
        s[1] += time.perf_counter() - t


def report(phase: str, n: int, cpu: float, db: float) -> None:
    ledger_bench.emit(f"{phase}_client_cpu_ms_per_contribution", 1000 * cpu / n)
    ledger_bench.emit(f"{phase}_server_cpu_ms_per_contribution", 1000 * db / n)
    for q, (count, wall) in sorted(STATS.items(), key=lambda kv: -kv[1][1])[:14]:
        print(f"  {1000 * wall / n:7.4f} ms/c  {count:5d}x  {q}")
    STATS.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--contributions", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=scoring_bench.CHUNK)
    parser.add_argument("--profile-verify")
    parser.add_argument("--profile-award")
    args = parser.parse_args()
    name = f"jieyou_sprof_{uuid.uuid4().hex[:8]}"
    ledger_bench.admin_exec(args.admin_url, f'CREATE DATABASE "{name}"')
    url = ledger_bench.db_url(args.admin_url, name)
    try:
        command.upgrade(alembic_config(url), "head")
        ledger_bench.setup(url, 10_000)
        ids, verifier_id = scoring_bench.seed_contributions(url, args.contributions)
        from identity.models import StaffUser
        from identity.services import staff_principal
        tune_gc()  # as the Celery worker processes are set up
        engine = make_engine(url, pool_size=1, max_overflow=0)
        with Session(engine) as s:
            actor = staff_principal(s.get(StaffUser, verifier_id))
            backend = s.scalar(text("SELECT pg_backend_pid()"))
        psycopg.Cursor.execute = _timed  # type: ignore[method-assign]
        past = utcnow() - dt.timedelta(days=30)
        n = len(ids)

        prof = cProfile.Profile() if args.profile_verify else None
        c0, d0 = time.process_time(), scoring_bench.backend_cpu(backend)
        for start in range(0, n, args.chunk):
            with Session(engine) as s:
                if prof:
                    prof.enable()
                workflow.verify_many(s, actor, ids[start:start + args.chunk], now=past)
                s.commit()
                if prof:
                    prof.disable()
        c1, d1 = time.process_time(), scoring_bench.backend_cpu(backend)
        if prof:
            prof.dump_stats(args.profile_verify)
        report("verify", n, c1 - c0, d1 - d0)

        prof = cProfile.Profile() if args.profile_award else None
        awarded = 0
        while True:
            with Session(engine) as s:
                if prof:
                    prof.enable()
                done = awards.award_due(s, limit=args.chunk, shards=16)
                s.commit()
                if prof:
                    prof.disable()
            awarded += done
            if not done:
                break
        c2, d2 = time.process_time(), scoring_bench.backend_cpu(backend)
        if prof:
            prof.dump_stats(args.profile_award)
        report("award", n, c2 - c1, d2 - d1)
        ledger_bench.emit("awarded", awarded)
        engine.dispose()
    finally:
        ledger_bench.admin_exec(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
