"""Bulk verification and award benchmark on PostgreSQL (run by hand; not a test).

    .venv/bin/python bench/scoring_bench.py [--contributions 100000] [--workers 4] [--duration 15]

Creates a throwaway database (Alembic), seeds the rules, 10,000 participants and N submitted
contributions, then, in the same run:

  single_postings_per_s               the ledger benchmark's single-posting rate (8 clients in 2
                                      processes, one award per transaction, `duration` seconds: half
                                      before the bulk work and half after it) -- the baseline
  verify_s / award_s                  wall time to verify all N (scored, caps reserved, public
                                      notice opened; chunks of 2,000 per transaction) and to award
                                      them (the award job, 2,000 per transaction, SKIP LOCKED)
  awards_per_s                        N / (verify_s + award_s): contributions taken from submitted
                                      to a ledger posting per second
  ratio_bulk_award_to_single_posting  awards_per_s / single_postings_per_s   (target >= 5)
  verify_cpu_s / award_cpu_s          CPU seconds of the phases summed over the workers: client
  verify_db_cpu_s / award_db_cpu_s    (time.process_time) and their PostgreSQL backends (read from
                                      /proc when the server is local; 0 otherwise) -- steadier than
                                      wall time on a shared machine
  awarded / points_awarded / ledger_ok  a check that the work was really done and the books verify
"""
from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from alembic import command  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import ledger_bench  # noqa: E402
from identity.models import Participant, Region  # noqa: E402
from identity.services import create_staff, staff_principal  # noqa: E402
from infra.db import make_engine, utcnow  # noqa: E402
from infra.runtime import tune_gc  # noqa: E402
from infra.security import configure_password_hasher  # noqa: E402
from ledger.services import integrity  # noqa: E402
from migrations.alembic_config import alembic_config  # noqa: E402
from scoring.models import Contribution, ContributionMember  # noqa: E402
from scoring.services import awards, rules, workflow  # noqa: E402

CHUNK = 2000
# Uncapped and capped indicators, as a month's mix would have them.
MIX = [("PRO-1", None, 1), ("MED-1", None, 1), ("MED-2", None, 1), ("INF-3", "C6-01", 1), ("MED-4", None, 1),
       ("PRO-3", None, 4), ("PRO-4", None, 3)]
CASE = {s: "记录" for s in ("look", "listen", "ask", "help", "report", "analyse", "explain", "record")}


def seed_contributions(url: str, n: int) -> tuple[list[int], int]:
    engine = make_engine(url, pool_size=2)
    with Session(engine) as s:
        rules.seed_rules(s)
        county = s.scalar(select(Region).where(Region.parent_id.is_(None)))
        grid = s.scalar(select(Region).where(Region.level == "grid"))
        configure_password_hasher(1, 1024)
        verifier = create_staff(s, username="bench-verifier", display_name="Bench", role="verifier", scope=county,
                                password="bench-password-1")
        people = s.scalars(select(Participant.id)).all()
        work_date = dt.date.today() - dt.timedelta(days=3)
        now = utcnow()
        for start in range(0, n, 10000):
            size = min(10000, n - start)
            rows = []
            for _ in range(size):
                code, item, qty = random.choice(MIX)
                rows.append({"indicator_code": code, "work_date": work_date, "region_id": grid.id,
                             "region_path": grid.path, "description": "benchmark contribution", "conflict_item": item,
                             "warning_colour": None, "case_record": CASE if code.startswith("MED") else {},
                             "quantity": qty, "incident_key": None, "duplicate_of": [], "duplicate_suspect": False,
                             "state": "submitted", "submitted_at": now, "explanation": {}})
            ids = s.scalars(insert(Contribution).returning(Contribution.id, sort_by_parameter_order=True), rows).all()
            s.execute(insert(ContributionMember.__table__),
                      [{"contribution_id": cid, "participant_id": random.choice(people), "share": 1} for cid in ids])
        s.commit()
        ids = s.scalars(select(Contribution.id).order_by(Contribution.id)).all()
        return list(ids), verifier.id


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a local PostgreSQL backend, or 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def bulk_worker(url: str, ids: list[int], verifier_id: int, barrier, results) -> None:  # type: ignore[no-untyped-def]
    from identity.models import StaffUser

    tune_gc()  # set up as the Celery worker processes are
    engine = make_engine(url, pool_size=1, max_overflow=0)  # one connection: one backend to measure
    with Session(engine) as s:
        actor = staff_principal(s.get(StaffUser, verifier_id))
        backend = s.scalar(text("SELECT pg_backend_pid()"))
    barrier.wait()
    c0, d0 = time.process_time(), backend_cpu(backend)
    t0 = time.perf_counter()
    past = utcnow() - dt.timedelta(days=30)  # verified long enough ago that every notice has ended
    for start in range(0, len(ids), CHUNK):
        with Session(engine) as s:
            workflow.verify_many(s, actor, ids[start:start + CHUNK], now=past)
            s.commit()
    t1 = time.perf_counter()
    c1, d1 = time.process_time(), backend_cpu(backend)
    barrier.wait()  # every contribution is on notice before anyone awards
    t2 = time.perf_counter()
    awarded = 0
    while True:
        with Session(engine) as s:
            done = awards.award_due(s, limit=CHUNK, shards=16)
            s.commit()
        awarded += done
        if done == 0:
            break
    t3 = time.perf_counter()
    c3, d3 = time.process_time(), backend_cpu(backend)
    engine.dispose()
    results.put((t1 - t0, t3 - t2, awarded, c1 - c0, c3 - c1, d1 - d0, d3 - d1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--contributions", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--duration", type=int, default=15)
    args = parser.parse_args()
    name = f"jieyou_sbench_{uuid.uuid4().hex[:8]}"
    ledger_bench.admin_exec(args.admin_url, f'CREATE DATABASE "{name}"')
    url = ledger_bench.db_url(args.admin_url, name)
    try:
        command.upgrade(alembic_config(url), "head")
        people, issuance = ledger_bench.setup(url, 10_000)
        # The baseline runs half before and half after the bulk work, so that host load drifting
        # over the run reaches both alike.
        single_args = argparse.Namespace(workers=8, processes=2, duration=max(1, args.duration // 2))
        single = ledger_bench.Tally()
        single.add(ledger_bench.run_workers(single_args, url, "single", people, issuance))
        ids, verifier = seed_contributions(url, args.contributions)
        ledger_bench.emit("contributions", len(ids))
        ctx = mp.get_context("spawn")
        barrier, results = ctx.Barrier(args.workers), ctx.Queue()
        procs = [ctx.Process(target=bulk_worker, args=(url, ids[i::args.workers], verifier, barrier, results))
                 for i in range(args.workers)]
        for p in procs:
            p.start()
        out = [results.get() for _ in procs]
        for p in procs:
            p.join()
        verify_s, award_s = max(o[0] for o in out), max(o[1] for o in out)
        rate = len(ids) / (verify_s + award_s)
        single.add(ledger_bench.run_workers(single_args, url, "single", people, issuance))
        single.emit_cpu("single")
        single_rate = single.rate()
        ledger_bench.emit("single_postings_per_s", single_rate)
        ledger_bench.emit("workers", args.workers)
        ledger_bench.emit("verify_s", verify_s)
        ledger_bench.emit("award_s", award_s)
        ledger_bench.emit("awards_per_s", rate)
        ledger_bench.emit("ratio_bulk_award_to_single_posting", rate / single_rate)
        for i, label in enumerate(("verify_cpu_s", "award_cpu_s", "verify_db_cpu_s", "award_db_cpu_s"), start=3):
            ledger_bench.emit(label, sum(o[i] for o in out))
        engine = make_engine(url, pool_size=2)
        with Session(engine) as s:
            ledger_bench.emit("awarded", s.scalar(select(func.count()).select_from(Contribution)
                                                 .where(Contribution.state == "awarded")))
            ledger_bench.emit("points_awarded", s.scalar(select(func.sum(ContributionMember.points))))
            ledger_bench.emit("ledger_ok", integrity.reconcile(s).ok)
        engine.dispose()
        ledger_bench.emit("targets", f"ratio_bulk_award_to_single_posting>=5 "
                                     f"{'PASS' if rate / single_rate >= 5 else 'FAIL'} ({rate / single_rate:.2f})")
    finally:
        ledger_bench.admin_exec(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
