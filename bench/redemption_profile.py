"""Per-redemption cost in one process (run by hand; not a test): app CPU, PostgreSQL backend CPU
and SQL statements per POST /api/v1/outlet/redemptions through the Flask test client. Steadier
than the HTTP bench on a shared machine, because it counts CPU, not wall-clock.

    .venv/bin/python bench/redemption_profile.py [--codes 3000] [--profile out.pstats]

Prints `name: value` lines: app_cpu_ms_per_redemption, pg_cpu_ms_per_redemption (the backend
serving the one pooled connection, read from /proc), statements_per_redemption (counted at the
driver, so the pool's pre-ping and statements that bypass SQLAlchemy count; BEGIN and COMMIT do
not), the same CPU for the least-disturbed fifth of the loop, for a fresh app's first 20
redemptions, and for a ping; with --show-sql the statements of one redemption.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from alembic import command  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

import ledger_bench  # noqa: E402
import redemption_bench  # noqa: E402
from infra.config import Settings  # noqa: E402
from infra.db import make_engine  # noqa: E402
from infra.runtime import tune_gc  # noqa: E402
from jieyou.app import create_app  # noqa: E402
from migrations.alembic_config import alembic_config  # noqa: E402


def backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--codes", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--profile", help="write cProfile stats of the timed loop here")
    parser.add_argument("--show-sql", action="store_true")
    args = parser.parse_args()
    name = f"jieyou_rprof_{uuid.uuid4().hex[:8]}"
    ledger_bench.admin_exec(args.admin_url, f'CREATE DATABASE "{name}"')
    url = ledger_bench.db_url(args.admin_url, name)
    try:
        command.upgrade(alembic_config(url), "head")
        key, bodies_path = redemption_bench.prepare(url, args.codes)
        bodies = bodies_path.read_text().splitlines()
        settings = Settings.from_env(instance_dir=Path(tempfile.mkdtemp()), database_url=url,
                                     secret_key=redemption_bench.SECRET, lookup_rate_limit="1000000 per minute",
                                     code_rate_limit="1000000 per minute", code_failure_limit="1000000 per minute")
        # The app's own pool (pre-ping included); one thread reuses one connection, whose backend's
        # CPU is PostgreSQL's share.
        engine = make_engine(settings.database_url, pool_size=1, max_overflow=0)
        app = create_app(settings, engine=engine)
        client = app.test_client()
        tune_gc()  # as jieyou.wsgi sets up the gunicorn workers
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        statements: list[str] = []
        # Counted at the driver, so statements that bypass SQLAlchemy count too (not BEGIN/COMMIT).
        execute = psycopg.Cursor.execute

        def counting(cursor: psycopg.Cursor, query: object, *a: object, **k: object) -> object:
            statements.append(str(query))
            return execute(cursor, query, *a, **k)

        psycopg.Cursor.execute = counting  # type: ignore[method-assign,assignment]
        headers = {"X-Api-Key": key, "Content-Type": "application/json"}

        def redeem(body: str) -> None:
            response = client.post("/api/v1/outlet/redemptions", data=body, headers=headers)
            assert response.status_code == 201, (response.status_code, response.get_data(as_text=True))

        cold0 = time.process_time()
        for body in bodies[:20]:
            redeem(body)
        cold_ms = (time.process_time() - cold0) * 1000  # a fresh worker's first requests: caches fill
        for body in bodies[20:args.warmup]:
            redeem(body)
        statements.clear()
        redeem(bodies[args.warmup])
        if args.show_sql:
            for sql in statements:
                print("--", " ".join(sql.split())[:300])
        per_one = len(statements)
        timed = bodies[args.warmup + 1:]
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waits
        pg0, cpu0, wall0 = backend_cpu_s(pid), time.process_time(), time.perf_counter()
        statements.clear()
        if profiler:
            profiler.enable()
        chunks = []  # app CPU per redemption of each fifth: the least is the least disturbed by others
        for part in range(5):
            c0 = time.process_time()
            share = timed[part * len(timed) // 5:(part + 1) * len(timed) // 5]
            for body in share:
                redeem(body)
            chunks.append((time.process_time() - c0) / len(share) * 1000)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        cpu, wall, pg = time.process_time() - cpu0, time.perf_counter() - wall0, backend_cpu_s(pid) - pg0
        n = len(timed)
        ping0 = time.process_time()
        for _ in range(n):
            client.get("/api/v1/ping")
        ping_ms = (time.process_time() - ping0) / n * 1000  # the floor: the same app answering a pong
        for label, value in (("redemptions_timed", n), ("statements_per_redemption", per_one),
                             ("statements_per_redemption_avg", round(len(statements) / n, 2)),
                             ("app_cpu_ms_per_redemption", round(cpu / n * 1000, 3)),
                             ("pg_cpu_ms_per_redemption", round(pg / n * 1000, 3)),
                             ("total_cpu_ms_per_redemption", round((cpu + pg) / n * 1000, 3)),
                             ("wall_ms_per_redemption", round(wall / n * 1000, 3)),
                             ("app_cpu_ms_per_redemption_best_fifth", round(min(chunks), 3)),
                             ("app_cpu_ms_first_20_redemptions", round(cold_ms, 1)),
                             ("app_cpu_ms_per_ping", round(ping_ms, 3))):
            ledger_bench.emit(label, value)
        print(json.dumps({"sample_body": json.loads(timed[0])}))
        engine.dispose()
    finally:
        ledger_bench.admin_exec(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
