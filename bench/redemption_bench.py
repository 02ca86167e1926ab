"""Redemptions over HTTP through gunicorn on PostgreSQL, against a trivial JSON endpoint of the
same app on the same gunicorn settings (run by hand; not a test).

    .venv/bin/python bench/redemption_bench.py [--duration 20] [--rounds 2] [--connections 32] [--codes 40000]
                                               [--workers 2] [--threads 8] [--worker-connections 16]

Needs `wrk` (Debian package). Creates a throwaway database, a partner outlet with an API key, a
spend scenario and one live one-time code for each of `codes` distinct participants, starts
gunicorn (`--workers W --threads T`, the same for both runs: by default one worker process per core
with 8 threads each, which served both the ping and the redemptions faster than 4 x 4 here; see the
README) and drives it with wrk:

  baseline_rps               GET /api/v1/ping (a JSON pong) requests per second; the ping and the
                             redemptions take turns, `rounds` times each within `duration`
  redemptions_per_s          new redemptions recorded per second of POST /api/v1/outlet/redemptions,
                             each request a different participant's code; counted in the database,
                             so a request that only replays an earlier one (a code used twice, if
                             the run outlasts its codes) adds nothing
  replayed_requests          redemption requests that created nothing (must be 0: give more --codes)
  ratio_redeem_to_baseline   redemptions_per_s / baseline_rps                 (target >= 0.25)
  round_N                    each round's baseline_rps, redemptions_per_s and ratio, and other_cpu_s:
                             busy CPU seconds of the host during its ping / redemption run that
                             neither the app, its database backends nor wrk used (other work on
                             the machine, PostgreSQL's background writers): a round with a large
                             figure was disturbed, and its ratio with it
  ratio_median_of_rounds     the median of the rounds' ratios (for information: steadier than the
                             ratio of totals when one round was disturbed)
  errors                     non-2xx responses + socket errors in the redemption run (target 0)
  p99_ms                     99th-percentile latency of redemptions (wrk --latency)
  redeemed_in_db / ledger_ok  redemptions actually recorded, and the ledger reconciles
  app_cpu_ms_per_ping, app_cpu_ms_per_redemption, pg_cpu_ms_per_redemption
                             CPU of the gunicorn workers (and of the database's backends) over
                             each run per request: steadier than rates on a shared machine
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import secrets
import statistics
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from alembic import command  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import ledger_bench  # noqa: E402
from identity import services as identity  # noqa: E402
from identity.models import Region  # noqa: E402
from infra.auth import SYSTEM  # noqa: E402
from infra.db import make_engine, utcnow  # noqa: E402
from infra.security import configure_password_hasher  # noqa: E402
from ledger.models import Account  # noqa: E402
from ledger.services import accounts, integrity  # noqa: E402
from ledger.services.posting import Leg, PostingRequest, post_many  # noqa: E402
from migrations.alembic_config import alembic_config  # noqa: E402
from redemption.models import OneTimeCode, Redemption, Scenario, ScenarioOutlet  # noqa: E402
from redemption.services import codes  # noqa: E402
from scoring.services import rules  # noqa: E402

SECRET = "bench-secret-" + uuid.uuid4().hex


def prepare(url: str, n: int) -> tuple[str, Path]:
    """Participants with points and one live code each; returns the outlet key and the bodies file."""
    people, issuance = ledger_bench.setup(url, n)
    engine = make_engine(url, pool_size=2)
    configure_password_hasher(1, 1024)
    with Session(engine) as s:
        rules.seed_rules(s)  # grades (shown at the counter) come from the rules in force
        county = s.scalar(select(Region).where(Region.parent_id.is_(None)))
        admin = identity.staff_principal(identity.create_staff(
            s, username="bench-admin", display_name="Bench", role="admin", scope=county, password="bench-password-1"))
        partner = identity.create_partner(s, code="BENCH", name="压测超市", region=county)
        accounts.partner_account(s, partner.id, 16)
        outlet = identity.create_outlet(s, partner, name="压测门店", region=county)
        key, _ = identity.issue_api_key(s, admin, outlet.id)
        scenario = Scenario(code="S-BENCH", family="shopping", name_zh="压测换购", name_en="Bench", partner_id=partner.id,
                            kind="spend", points_cost=5, yuan_value_fen=500, valid_from=dt.date(2024, 1, 1),
                            outlets=[ScenarioOutlet(outlet_id=outlet.id)])
        s.add(scenario)
        s.flush()
        for start in range(0, len(people), 5000):  # everyone can afford it
            post_many(s, SYSTEM, [PostingRequest(kind="award", reason="bench", legs=[Leg(a, 50), Leg(issuance, -50)],
                                                 idempotency_key=f"fund:{a}") for a in people[start:start + 5000]])
        owners = dict(s.execute(select(Account.id, Account.participant_id).where(Account.id.in_(people))).all())
        expires = utcnow() + dt.timedelta(hours=2)
        bodies, seen = [], set()
        rows = []
        for account_id in people:
            digits = f"{secrets.randbelow(10 ** 8):08d}"
            while digits in seen:
                digits = f"{secrets.randbelow(10 ** 8):08d}"
            seen.add(digits)
            rows.append({"participant_id": owners[account_id], "code_digest": codes.digest(SECRET, digits),
                         "created_at": utcnow(), "expires_at": expires})
            bodies.append(json.dumps({"code": digits, "scenario_id": scenario.id,
                                      "idempotency_key": f"bench-{uuid.uuid4().hex}"}))
        s.execute(insert(OneTimeCode.__table__), rows)
        s.commit()
    engine.dispose()
    path = Path(tempfile.mkdtemp()) / "bodies.txt"
    path.write_text("\n".join(bodies) + "\n")
    return key, path


def start_gunicorn(url: str, port: int, workers: int, threads: int,
                   worker_connections: int = 1000) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": SECRET, "JIEYOU_INSTANCE_DIR": tempfile.mkdtemp(),
           "RATELIMIT_STORAGE_URI": "memory://",  # per worker, on purpose (gunicorn.conf.py refuses it unset)
           # No broker on purpose: the bench measures the counter, not jobs (gunicorn.conf.py refuses it unsaid).
           "JOBS_IN_PROCESS": "1",
           "LOOKUP_RATE_LIMIT": "1000000 per minute", "CODE_RATE_LIMIT": "1000000 per minute",
           "CODE_FAILURE_LIMIT": "1000000 per minute", "CODE_FAILURE_DAILY_LIMIT": "1000000 per day"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "jieyou.wsgi:app", "--bind",
                             f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
                             "--access-logfile", "/dev/null", "--error-logfile", "-", "--log-level", "warning",
                             # No recycling (gunicorn.conf.py recycles a worker every ~5,000 requests):
                             # the baseline run alone nearly uses that up, so the restarts (~1 s of
                             # import CPU each) landed inside the next run, whichever it was.
                             "--max-requests", "0", "--worker-connections", str(worker_connections)],
                            cwd=ROOT, env=env)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ping", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def smoke(key: str, bodies: Path) -> None:
    """One redemption by hand before the load, so a setup mistake fails loudly, not as errors."""
    first = bodies.read_text().splitlines()[-1]
    request = urllib.request.Request("http://127.0.0.1:8765/api/v1/outlet/redemptions", data=first.encode(),
                                     headers={"Content-Type": "application/json", "X-Api-Key": key}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201, response.status
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"smoke redemption failed: {exc.code} {exc.read().decode()}") from None


def wrk(args: list[str]) -> dict[str, float]:
    out = subprocess.run(["wrk", *args], check=True, capture_output=True, text=True).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    figures["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if p99:
        value, unit = float(p99.group(1)), p99.group(2)
        figures["p99_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return figures


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_busy_s() -> float:
    """CPU seconds the whole host has spent busy (all cores, /proc/stat) so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (the wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(server_pid: int, url: str, database: str) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds so far of the gunicorn workers and of the database's backends, by pid."""
    try:
        children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: no worker figures
        children = []
    workers = {int(p): _cpu_s(int(p)) for p in children}
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                           "pg_backend_pid()", [database])]
    return workers, {p: _cpu_s(p) for p in pids}


def cpu_totals(before: tuple[dict[int, float], dict[int, float]],
               after: tuple[dict[int, float], dict[int, float]]) -> tuple[float, float]:
    """(app, PostgreSQL) CPU seconds between two `process_cpu` readings; a backend or worker that
    appeared in between counts from zero."""
    return tuple(sum(cpu - b.get(pid, 0.0) for pid, cpu in a.items())  # type: ignore[return-value]
                 for b, a in zip(before, after))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--codes", type=int, default=40000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-connections", type=int, default=None,
                        help="gunicorn's per-worker connection cap (default: connections / workers)")
    parser.add_argument("--rounds", type=int, default=2, help="turns of ping then redemptions within --duration")
    args = parser.parse_args()
    name = f"jieyou_rbench_{uuid.uuid4().hex[:8]}"
    ledger_bench.admin_exec(args.admin_url, f'CREATE DATABASE "{name}"')
    url = ledger_bench.db_url(args.admin_url, name)
    server = None
    try:
        command.upgrade(alembic_config(url), "head")
        key, bodies = prepare(url, args.codes)
        # Each worker takes at most its share of wrk's connections, so that they spread evenly, as a
        # balancer in front would spread them. Uncapped, the worker first to accept sometimes took
        # all 32 kept-alive connections while the other sat idle for the whole run (a round's
        # `workers_cpu_s` of 0.0+10.9), and that run measured one core: baselines of 1,400-2,500
        # requests/s instead of ~3,800 made ratios of 0.3-0.6 out of nothing.
        per_worker = args.worker_connections or -(-args.connections // args.workers)
        ledger_bench.emit("gunicorn_worker_connections", per_worker)
        server = start_gunicorn(url, 8765, args.workers, args.threads, per_worker)
        smoke(key, bodies)
        # The ping and the redemptions take turns (`--rounds`, each a share of `--duration`), so
        # that drift in the host's load reaches the baseline and the redemptions alike; each round
        # redeems its own share of the codes (a code used twice would be a cheaper replay).
        share = max(1, args.duration // args.rounds)  # wrk takes whole seconds
        measured = share * args.rounds
        common = ["-t", "2", "-c", str(args.connections), "-d", f"{share}s", "--latency"]
        # Warm-up, not counted: gunicorn answers once its first worker is up, while the others
        # are still importing the app (about a second of CPU each); measured then, the baseline
        # would share the CPU with their start-up and come out low.
        wrk(["-t", "2", "-c", str(args.connections), "-d", "3s", "http://127.0.0.1:8765/api/v1/ping"])
        lines = bodies.read_text().splitlines()[:-1]  # the last one was the smoke test's
        script = str(ROOT / "bench" / "redeem.lua")
        base = {"requests": 0.0, "errors": 0, "p99": []}
        redeem = {"requests": 0.0, "errors": 0, "p99": [], "new": 0}
        counter = make_engine(url, pool_size=1)

        def recorded() -> int:  # outside the CPU windows: this backend is the bench's, not the app's
            with Session(counter) as s:
                return s.scalar(select(func.count()).select_from(Redemption)) or 0

        ping_cpu = (0.0, 0.0)
        redeem_cpu = (0.0, 0.0)
        rounds: list[tuple[float, float, float]] = []  # (ratio, baseline rps, redemptions/s) per round
        for r in range(args.rounds):
            part = bodies.with_name(f"bodies-{r}.txt")
            part.write_text("\n".join(lines[r::args.rounds]) + "\n")
            before = recorded()
            cpu0, host0, wrk0 = process_cpu(server.pid, url, name), host_busy_s(), children_cpu_s()
            got = wrk([*common, "http://127.0.0.1:8765/api/v1/ping"])
            cpu1, host1, wrk1 = process_cpu(server.pid, url, name), host_busy_s(), children_cpu_s()
            base["requests"] += got["rps"] * share
            base["errors"] += got["errors"]
            base["p99"].append(got.get("p99_ms", float("nan")))
            ping_rps = got["rps"]
            got = wrk([*common, "-s", script, "http://127.0.0.1:8765", "--", str(part), key, "2"])
            cpu2, host2, wrk2 = process_cpu(server.pid, url, name), host_busy_s(), children_cpu_s()
            redeem["requests"] += got["rps"] * share
            redeem["errors"] += got["errors"]
            redeem["p99"].append(got.get("p99_ms", float("nan")))
            new = recorded() - before
            redeem["new"] += new
            ping_round, redeem_round = cpu_totals(cpu0, cpu1), cpu_totals(cpu1, cpu2)
            ping_cpu = tuple(a + b for a, b in zip(ping_cpu, ping_round))  # type: ignore[assignment]
            redeem_cpu = tuple(a + b for a, b in zip(redeem_cpu, redeem_round))  # type: ignore[assignment]
            # Busy CPU of the host that neither the app, its database backends nor wrk account for
            # (other work on the machine, PostgreSQL's checkpointer): what disturbed the round.
            other_ping = (host1 - host0) - sum(ping_round) - (wrk1 - wrk0)
            other_redeem = (host2 - host1) - sum(redeem_round) - (wrk2 - wrk1)
            rounds.append(((new / share) / ping_rps, ping_rps, new / share))
            ledger_bench.emit(f"round_{r + 1}", f"baseline_rps {ping_rps:.0f} redemptions_per_s {new / share:.0f} "
                                                f"ratio {rounds[-1][0]:.3f} other_cpu_s {other_ping:.2f} / "
                                                f"{other_redeem:.2f} workers_cpu_s "
                                                f"{'+'.join(f'{cpu1[0][w] - cpu0[0].get(w, 0.0):.1f}' for w in sorted(cpu1[0]))} / "
                                                f"{'+'.join(f'{cpu2[0][w] - cpu1[0].get(w, 0.0):.1f}' for w in sorted(cpu2[0]))}")
        counter.dispose()
        base_rps = base["requests"] / measured
        redeem_rps = redeem["new"] / measured
        replayed = max(0, round(redeem["requests"]) - redeem["new"])
        ping_app = ping_cpu[0] / base["requests"] * 1000
        redeem_app, redeem_pg = (c / redeem["requests"] * 1000 for c in redeem_cpu)
        for label, value in (("gunicorn_workers", args.workers), ("gunicorn_threads", args.threads),
                             ("connections", args.connections), ("duration_s", measured),
                             ("rounds", args.rounds),
                             ("baseline_rps", round(base_rps, 1)), ("baseline_errors", base["errors"]),
                             ("redemptions_per_s", round(redeem_rps, 1)),
                             ("ratio_redeem_to_baseline", round(redeem_rps / base_rps, 3)),
                             ("ratio_median_of_rounds", round(statistics.median(r[0] for r in rounds), 3)),
                             ("errors", redeem["errors"]), ("replayed_requests", replayed),
                             ("p99_ms", max(redeem["p99"])),
                             ("app_cpu_ms_per_ping", round(ping_app, 3)),
                             ("app_cpu_ms_per_redemption", round(redeem_app, 3)),
                             ("pg_cpu_ms_per_redemption", round(redeem_pg, 3))):
            ledger_bench.emit(label, value)
        engine = make_engine(url, pool_size=2)
        with Session(engine) as s:
            ledger_bench.emit("redeemed_in_db", s.scalar(select(func.count()).select_from(Redemption)))
            ledger_bench.emit("ledger_ok", integrity.reconcile(s).ok)
        engine.dispose()
        ratio = redeem_rps / base_rps
        ledger_bench.emit("targets", f"ratio_redeem_to_baseline>=0.25 {'PASS' if ratio >= 0.25 else 'FAIL'} "
                                     f"({ratio:.3f}); errors==0 {'PASS' if redeem['errors'] == 0 else 'FAIL'}; "
                                     f"replayed_requests==0 {'PASS' if replayed == 0 else 'FAIL (give more --codes)'}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        ledger_bench.admin_exec(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
