"""Ledger throughput and balance-read benchmark on PostgreSQL (run by hand; not a test).

    .venv/bin/python bench/ledger_bench.py [--duration 20] [--rounds 2] [--workers 8] [--processes 2] [--participants 10000]
                                           [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
                                           [--skip-million]

Creates a throwaway database (migrated with Alembic) and drops it at the end. Every figure is
printed as a `name: value` line:

  Clients: `workers` concurrent clients (8) in `processes` processes (2) of threads, each with its
  own connection, as pgbench runs `-c 8 -j 2`; pgbench gets the same counts. pgbench and the four
  modes take turns `rounds` times (2), each run lasting duration/rounds, so that load on the shared
  host, which drifts over minutes, reaches the baseline and the modes alike; rates are totals over
  the rounds (pgbench: the mean of its runs' tps, printed per round too).

  single_postings_per_s    awards/s, `workers` clients, one post() per transaction, random
                           participant among `participants`, for `duration_s` seconds; the posting
                           is the whole unit of work, so its session runs in autocommit and the
                           posting is one atomic statement (one round trip)
  driver_postings_per_s    the very statement single sends (prepared before the clock by the same
                           code) from a bare loop on a driver connection: the posting's SQL alone, the
                           most any Python client of it reaches here; single's gap to it is the service
                           layer (checks, digests, SQLAlchemy session and pool)
  ratio_driver_to_pgbench  driver_postings_per_s / pgbench_tps           (for information)
  single_tx_postings_per_s the same with BEGIN ... COMMIT around each posting (three round trips),
                           as when a request writes other rows in the same transaction
  batch_postings_per_s     the same with post_many() of 1,000 awards per transaction
  pgbench_tps              pgbench built-in TPC-B-like script, same clients, threads and duration, on a
                           separate throwaway database (scale `pgbench_scale`) on the same server
  ratio_single_to_pgbench  single_postings_per_s / pgbench_tps          (target >= 0.65)
  ratio_single_tx_to_pgbench   single_tx_postings_per_s / pgbench_tps   (for information)
  *_client/server_cpu_ms_per_posting   CPU of the worker processes and of their PostgreSQL
                           backends per posting: where the time goes
  ratio_batch_to_single    batch_postings_per_s / single_postings_per_s (target >= 10)
  balance_p50/p99_ms_10k   accounts.balance() latency with ~10 thousand entries in the ledger
                           (1,000 untimed warm-up reads, then 5 rounds of 5,000 timed reads of random
                           participants; the median round's p50/p99)
  balance_p50/p99_ms_1m    the same with ~1 million entries (grown with post_many, 5,000 per transaction).
                           The 10k figures are then read from a copy of the database taken at 10k
                           entries, the two taking turns round by round with the 1M one, so that
                           both see the same host load
  balances_table_mb_at_*   size of the cached-balance table (with indexes): it bloats with updates
  ratio_balance_p99_1m_to_10k                                          (target <= 1.2)
  entries_at_*_measure     entry count when each balance measurement ran
  peak_rss_mb_main         peak RSS of this process; peak_rss_mb_workers_max: largest worker's peak
                           RSS (its own VmHWM); peak_rss_mb_children_rusage: RUSAGE_CHILDREN (largest
                           reaped child; on Linux it inherits the parent's peak at spawn, so it is
                           at least peak_rss_mb_main at spawn time)
  single_/batch_/grow_postings, grow_seconds   raw counts behind the rates; time to grow to ~1M
  loadavg_1m_at_start      host load before the run: other work on the machine skews every figure
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import random
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from alembic import command  # noqa: E402
from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from identity.models import Participant  # noqa: E402
from identity.services import create_region  # noqa: E402
from infra.auth import SYSTEM  # noqa: E402
from infra.db import make_engine, utcnow  # noqa: E402
from infra.runtime import tune_gc  # noqa: E402
from ledger.models import GENESIS_HASH, Account, BalanceShard  # noqa: E402
from ledger.services import accounts  # noqa: E402
from ledger.services import posting_sql  # noqa: E402
from ledger.services.posting import Leg, PostingRequest, post, post_many, single_statement  # noqa: E402
from migrations.alembic_config import alembic_config  # noqa: E402

BATCH = 1000
GROW_BATCH = 5000
PGBENCH_SCALE = 8


def db_url(admin_url: str, name: str, driver: bool = True) -> str:
    base = admin_url.rsplit("/", 1)[0]
    return (base.replace("postgresql://", "postgresql+psycopg://", 1) if driver else base) + "/" + name


def admin_exec(admin_url: str, sql: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


def award(participant: int, issuance: int, key: str) -> PostingRequest:
    amount = random.randint(1, 5)
    return PostingRequest(kind="award", legs=[Leg(participant, amount), Leg(issuance, -amount)],
                          reason="benchmark award", idempotency_key=key)


def peak_rss_kib() -> int:
    """This process's own peak RSS. ru_maxrss would not do in a spawned child: Linux carries the
    parent's high-water mark across fork+exec, so every worker would report at least the parent's."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def client_loop(engine, mode: str, duration: float, budget: int, people: list[int], issuance: int,  # type: ignore[no-untyped-def]
                tag: str, ready: threading.Barrier, start_together: threading.Barrier) -> tuple[int, float, float]:
    """One client (thread): its own connection, the loop of its mode. Returns (postings, elapsed
    seconds, CPU seconds its PostgreSQL backend used). `ready`: set up (its CPU is not counted);
    `start_together`: the clock starts."""
    with engine.connect() as conn:  # open the connection before the clock starts
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    done = 0
    if mode == "driver":
        return driver_loop(engine, duration, people, issuance, tag, ready, start_together)
    ready.wait()
    start_together.wait()  # (a client that fails before this aborts the barriers: see `worker`)
    server_cpu = backend_cpu_s(backend)
    start = time.perf_counter()
    deadline = start + duration
    if mode in ("single", "single_tx"):
        while time.perf_counter() < deadline:
            with Session(engine) as session:
                post(session, SYSTEM, award(random.choice(people), issuance, f"{tag}:{done}"))
                session.commit()
            done += 1
    else:
        size = BATCH if mode == "batch" else GROW_BATCH
        while (time.perf_counter() < deadline) if mode == "batch" else (done < budget):
            n = size if mode == "batch" else min(size, budget - done)
            with Session(engine) as session:
                post_many(session, SYSTEM, [award(random.choice(people), issuance, f"{tag}:{done + i}")
                                            for i in range(n)])
                session.commit()
            done += n
    return done, time.perf_counter() - start, backend_cpu_s(backend) - server_cpu


# Statements `driver` prepares per client and second before its clock starts: eight clients share
# two cores, so each sends a few hundred a second; one that runs out stops early (it never has here).
DRIVER_MAX_RATE = 1500


def driver_loop(engine, duration: float, people: list[int], issuance: int, tag: str,  # type: ignore[no-untyped-def]
                ready: threading.Barrier, start_together: threading.Barrier) -> tuple[int, float, float]:
    """The `driver` mode: the very statement post() sends (`posting.single_statement`, prepared
    before the clock), sent by a bare loop on one driver connection in autocommit. It measures the
    posting's SQL alone, as any Python client of it would see it; the gap to `single` is the service
    layer around it (checks, digests, SQLAlchemy session and pool)."""
    count = int(duration * DRIVER_MAX_RATE)
    with Session(engine) as session:
        statements = [posting_sql.post_one_params(*single_statement(
            session, SYSTEM, award(random.choice(people), issuance, f"{tag}:{i}"))) for i in range(count)]
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()
        backend = cursor.execute("SELECT pg_backend_pid()").fetchone()[0]
        done = 0
        ready.wait()
        start_together.wait()
        server_cpu = backend_cpu_s(backend)
        start = time.perf_counter()
        deadline = start + duration
        while time.perf_counter() < deadline and done < count:
            cursor.execute(posting_sql.POST_ONE, statements[done])
            inserted, _after = cursor.fetchone()
            assert inserted == 1
            done += 1
        elapsed = time.perf_counter() - start
        return done, elapsed, backend_cpu_s(backend) - server_cpu
    finally:
        raw.close()


def worker(url: str, mode: str, duration: float, budgets: list[int], slices: list[list[int]], issuance: int,
           barrier, results) -> None:  # type: ignore[no-untyped-def]
    """A process of len(budgets) clients (threads), as pgbench -j runs its clients in threads.
    mode: single | single_tx | batch (run for `duration`) or grow (post the budgets in GROW_BATCH
    chunks). single: the posting is the whole unit of work, so it runs as one autocommit statement
    (it is atomic: a refused posting leaves nothing); single_tx: the same inside BEGIN ... COMMIT,
    as when a request also writes other rows with it. The process is set up as the service's own
    worker processes are (`infra.runtime.tune_gc`)."""
    tune_gc()
    random.seed(os.getpid() ^ time.time_ns())
    clients = len(budgets)
    engine = make_engine(url, pool_size=clients,
                         **({"isolation_level": "AUTOCOMMIT"} if mode in ("single", "driver") else {}))
    tag = f"{mode}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    ready, start_together = threading.Barrier(clients + 1), threading.Barrier(clients + 1)
    with ThreadPoolExecutor(max_workers=clients) as pool:
        def client(i: int) -> tuple[int, float, float]:
            try:
                return client_loop(engine, mode, duration, budgets[i], slices[i], issuance, f"{tag}:{i}",
                                   ready, start_together)
            except BaseException:  # the others would wait for it forever
                ready.abort()
                start_together.abort()
                raise

        futures = [pool.submit(client, i) for i in range(clients)]
        ready.wait()  # every client of this process set up
        barrier.wait()  # every process ready
        client_cpu = time.process_time()
        start_together.wait()
        outcomes = [f.result() for f in futures]
    cpu = (time.process_time() - client_cpu, sum(o[2] for o in outcomes))
    engine.dispose()
    results.put((sum(o[0] for o in outcomes), max(o[1] for o in outcomes), peak_rss_kib(), cpu))


def backend_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a PostgreSQL backend (same host): where the time goes, client or
    server. NaN when /proc is not readable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def run_workers(args, url: str, mode: str, people: list[int], issuance: int, budget: int = 0,  # type: ignore[no-untyped-def]
                duration: float | None = None) -> tuple[int, float, int, float, float]:
    """`workers` clients (threads) in `processes` processes, like pgbench -c 8 -j 2. Returns
    (postings, wall seconds = slowest client's elapsed, largest process peak RSS in KiB) and prints
    the client and server CPU milliseconds per posting."""
    ctx = mp.get_context("spawn")
    procs_n = min(args.processes, args.workers)
    barrier, results = ctx.Barrier(procs_n), ctx.Queue()
    per = [budget // args.workers + (1 if i < budget % args.workers else 0) for i in range(args.workers)]
    # Growing uses batches of 5,000: give each client its own participants, or every pair of batches
    # would share ~2,000 locked balance rows and the clients would run one after another.
    slices = [people[i::args.workers] if mode == "grow" else people for i in range(args.workers)]
    owner = [i % procs_n for i in range(args.workers)]  # clients dealt round the processes
    procs = [ctx.Process(target=worker, args=(
        url, mode, args.duration if duration is None else duration, [per[i] for i in range(args.workers) if owner[i] == k],
        [slices[i] for i in range(args.workers) if owner[i] == k], issuance, barrier, results))
        for k in range(procs_n)]
    for p in procs:
        p.start()
    out: list[tuple[int, float, int, tuple[float, float]]] = []
    while len(out) < len(procs):  # a worker that dies never reports: fail instead of waiting forever
        try:
            out.append(results.get(timeout=5))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.terminate()
                raise RuntimeError(f"a {mode} worker failed; see its traceback above") from None
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"{mode} worker failed with exit code {p.exitcode}")
    return (sum(o[0] for o in out), max(o[1] for o in out), max(o[2] for o in out), sum(o[3][0] for o in out),
            sum(o[3][1] for o in out))


class Tally:
    """One mode's postings, wall seconds and CPU seconds, summed over the rounds."""

    def __init__(self) -> None:
        self.n, self.wall, self.client_cpu, self.server_cpu, self.rss = 0, 0.0, 0.0, 0.0, 0

    def add(self, run: tuple[int, float, int, float, float]) -> None:
        n, wall, rss, client, server = run
        self.n, self.wall, self.rss = self.n + n, self.wall + wall, max(self.rss, rss)
        self.client_cpu, self.server_cpu = self.client_cpu + client, self.server_cpu + server

    def rate(self) -> float:
        return self.n / self.wall

    def emit_cpu(self, mode: str) -> None:
        if self.n:
            emit(f"{mode}_client_cpu_ms_per_posting", self.client_cpu * 1000 / self.n)
            emit(f"{mode}_server_cpu_ms_per_posting", self.server_cpu * 1000 / self.n)


def setup(url: str, n_people: int) -> tuple[list[int], int]:
    engine = make_engine(url, pool_size=2)
    with Session(engine) as s:
        county = create_region(s, level="county", code="B-C", name="Bench county")
        town = create_region(s, level="township", code="B-T", name="Bench township", parent=county)
        village = create_region(s, level="village", code="B-V", name="Bench village", parent=town)
        grid = create_region(s, level="grid", code="B-G", name="Bench grid", parent=village)
        now = utcnow()
        s.execute(insert(Participant.__table__), [
            {"name": f"Volunteer {i}", "phone": f"139{i:08d}", "region_id": grid.id, "region_path": grid.path,
             "role": "grid_leader", "active": True, "created_at": now} for i in range(n_people)])
        pids = s.scalars(select(Participant.id).order_by(Participant.id)).all()
        s.execute(insert(Account.__table__), [
            {"kind": "participant", "code": f"participant:{p}", "name": f"participant {p}", "participant_id": p,
             "shard_count": 1, "allow_negative": False, "created_at": now} for p in pids])
        people = list(s.scalars(select(Account.id).where(Account.kind == "participant").order_by(Account.id)))
        s.execute(insert(BalanceShard.__table__), [
            {"account_id": a, "shard": 0, "balance": 0, "allow_negative": False, "last_seq": 0,
             "last_hash": GENESIS_HASH} for a in people])
        issuance = accounts.system_account(s, accounts.ISSUANCE, 16).id
        s.commit()
        # ~10 thousand entries: 5,000 awards of two legs each.
        for b in range(5):
            post_many(s, SYSTEM, [award(random.choice(people), issuance, f"seed:{b}:{i}") for i in range(1000)])
            s.commit()
    engine.dispose()
    return people, issuance


def vacuum_and_count(url: str) -> tuple[int, float]:
    """VACUUM ANALYZE, then (entry count, size of the balances table with its indexes in MB)."""
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        row = conn.execute("SELECT (SELECT count(*) FROM entries), pg_total_relation_size('balances')").fetchone()
        return row[0], row[1] / 2**20  # type: ignore[index]


def balance_latency(urls: list[str], people: list[int], rounds: int = 5, reads: int = 5000,
                    warmup: int = 1000) -> list[tuple[float, float]]:
    """(p50, p99) of accounts.balance() for each database in `urls`, by the same protocol: `warmup`
    untimed reads of random participants, then `rounds` rounds of `reads` timed ones, the
    databases taking turns round by round (a shared 2-core host drifts over minutes: taking turns
    exposes both sizes to the same drift); the median round's p50 and p99 per database."""
    engines = [make_engine(url, pool_size=2) for url in urls]
    sessions = [Session(engine) for engine in engines]
    try:
        for s in sessions:
            for _ in range(warmup):  # connection, statement caches, hot pages
                accounts.balance(s, random.choice(people))
        p50s: list[list[float]] = [[] for _ in urls]
        p99s: list[list[float]] = [[] for _ in urls]
        for _ in range(rounds):
            for i, s in enumerate(sessions):
                samples = []
                for _ in range(reads):
                    a = random.choice(people)
                    t = time.perf_counter()
                    accounts.balance(s, a)
                    samples.append((time.perf_counter() - t) * 1000)
                q = statistics.quantiles(samples, n=100)
                p50s[i].append(q[49])
                p99s[i].append(q[98])
        return [(statistics.median(a), statistics.median(b)) for a, b in zip(p50s, p99s)]
    finally:
        for s, engine in zip(sessions, engines):
            s.close()
            engine.dispose()


class PgBench:
    """pgbench's TPC-B-like script on its own throwaway database (initialised once), run as often
    as asked; `tps()` is the mean of the runs' tps (every run lasts as long)."""

    def __init__(self, admin_url: str, clients: int, threads: int) -> None:
        self.exe = next((p for p in ["/usr/bin/pgbench", *sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))]
                         if Path(p).exists()), "pgbench")
        self.admin_url, self.clients, self.threads = admin_url, clients, threads
        self.name = f"jieyou_pgbench_{uuid.uuid4().hex[:10]}"
        self.runs: list[float] = []
        admin_exec(admin_url, f'CREATE DATABASE "{self.name}"')
        self.conninfo = db_url(admin_url, self.name, driver=False)
        subprocess.run([str(self.exe), "-i", "-q", "-s", str(PGBENCH_SCALE), self.conninfo], check=True,
                       capture_output=True)

    def run(self, duration: int) -> None:
        out = subprocess.run([str(self.exe), "-c", str(self.clients), "-j", str(self.threads), "-T", str(duration),
                              "-n", self.conninfo], check=True, capture_output=True, text=True)
        match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
        if not match:
            raise RuntimeError(f"cannot parse pgbench output:\n{out.stdout}\n{out.stderr}")
        self.runs.append(float(match.group(1)))

    def tps(self) -> float:
        return statistics.mean(self.runs)

    def drop(self) -> None:
        admin_exec(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def emit(name: str, value: object) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}"
    print(f"{name}: {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=int, default=20, help="seconds per mode (and for pgbench), in all")
    parser.add_argument("--rounds", type=int, default=2, help="turns the modes and pgbench take within --duration")
    parser.add_argument("--workers", type=int, default=8, help="concurrent clients (pgbench -c)")
    parser.add_argument("--processes", type=int, default=2, help="processes they run in (pgbench -j)")
    parser.add_argument("--participants", type=int, default=10000)
    parser.add_argument("--skip-million", action="store_true", help="skip growing to 1M entries (quick run)")
    args = parser.parse_args()
    emit("workers", args.workers)
    emit("processes", args.processes)
    emit("duration_s", args.duration)
    emit("participants", args.participants)
    emit("loadavg_1m_at_start", os.getloadavg()[0])

    name = f"jieyou_bench_{uuid.uuid4().hex[:10]}"
    small = name + "_10k"
    admin_exec(args.admin_url, f'CREATE DATABASE "{name}"')
    url = db_url(args.admin_url, name)
    try:
        command.upgrade(alembic_config(url), "head")
        people, issuance = setup(url, args.participants)

        entries, balances_mb = vacuum_and_count(url)
        emit("entries_at_10k_measure", entries)
        emit("balances_table_mb_at_10k", balances_mb)
        # A copy of the ledger at 10 thousand entries, read again beside the grown one at the end.
        if not args.skip_million:
            admin_exec(args.admin_url, f'CREATE DATABASE "{small}" TEMPLATE "{name}"')
        else:
            ((p50_10k, p99_10k),) = balance_latency([url], people)
            emit("balance_p50_ms_10k", p50_10k)
            emit("balance_p99_ms_10k", p99_10k)

        # The baseline and the four modes take turns, `rounds` times, each run lasting
        # duration/rounds: host load that drifts over minutes then reaches all of them alike.
        emit("pgbench_scale", PGBENCH_SCALE)
        emit("rounds", args.rounds)
        part = max(1, args.duration // args.rounds)
        bench = PgBench(args.admin_url, args.workers, args.processes)
        tallies = {mode: Tally() for mode in ("single", "driver", "single_tx", "batch")}
        try:
            for _ in range(args.rounds):
                bench.run(part)
                for mode, tally in tallies.items():
                    tally.add(run_workers(args, url, mode, people, issuance, duration=part))
        finally:
            bench.drop()
        tps = bench.tps()
        emit("pgbench_tps", tps)
        emit("pgbench_tps_per_round", " ".join(f"{t:.0f}" for t in bench.runs))
        for mode, tally in tallies.items():
            tally.emit_cpu(mode)
        single, batch = tallies["single"].rate(), tallies["batch"].rate()
        emit("single_postings", tallies["single"].n)
        emit("single_postings_per_s", single)
        emit("driver_postings_per_s", tallies["driver"].rate())
        emit("ratio_driver_to_pgbench", tallies["driver"].rate() / tps)
        emit("single_tx_postings_per_s", tallies["single_tx"].rate())
        emit("ratio_single_tx_to_pgbench", tallies["single_tx"].rate() / tps)
        emit("batch_postings", tallies["batch"].n)
        emit("batch_postings_per_s", batch)
        ratio_pg, ratio_batch = single / tps, batch / single
        emit("ratio_single_to_pgbench", ratio_pg)
        emit("ratio_batch_to_single", ratio_batch)
        rss_single, rss_batch = tallies["single"].rss, tallies["batch"].rss

        rss_workers = max(rss_single, rss_batch)
        ratio_bal = None
        if not args.skip_million:
            with psycopg.connect(url.replace("+psycopg", "")) as conn:
                have = conn.execute("SELECT count(*) FROM entries").fetchone()[0]  # type: ignore[index]
            missing = max(0, 1_000_000 - have) // 2  # two entries per award
            t = time.perf_counter()
            grow = Tally()
            grow.add(run_workers(args, url, "grow", people, issuance, budget=missing))
            grow.emit_cpu("grow")
            grown, rss_grow = grow.n, grow.rss
            rss_workers = max(rss_workers, rss_grow)
            emit("grow_postings", grown)
            emit("grow_seconds", time.perf_counter() - t)
            entries, balances_mb = vacuum_and_count(url)
            emit("entries_at_1m_measure", entries)
            emit("balances_table_mb_at_1m", balances_mb)
            (p50_10k, p99_10k), (p50_1m, p99_1m) = balance_latency([db_url(args.admin_url, small), url], people)
            emit("balance_p50_ms_10k", p50_10k)
            emit("balance_p99_ms_10k", p99_10k)
            emit("balance_p50_ms_1m", p50_1m)
            emit("balance_p99_ms_1m", p99_1m)
            ratio_bal = p99_1m / p99_10k
            emit("ratio_balance_p99_1m_to_10k", ratio_bal)

        emit("peak_rss_mb_main", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        emit("peak_rss_mb_workers_max", rss_workers / 1024)
        emit("peak_rss_mb_children_rusage", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)

        def verdict(ok: bool | None) -> str:
            return "skipped" if ok is None else ("PASS" if ok else "FAIL")
        print("targets: "
              f"ratio_single_to_pgbench>=0.65 {verdict(ratio_pg >= 0.65)} ({ratio_pg:.3f}); "
              f"ratio_batch_to_single>=10 {verdict(ratio_batch >= 10)} ({ratio_batch:.2f}); "
              f"balance_p99_1m<=1.2x_10k {verdict(None if ratio_bal is None else ratio_bal <= 1.2)}"
              + ("" if ratio_bal is None else f" ({ratio_bal:.3f})"), flush=True)
    finally:
        admin_exec(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin_exec(args.admin_url, f'DROP DATABASE IF EXISTS "{small}" WITH (FORCE)')


if __name__ == "__main__":
    main()
