"""gunicorn (and celery) are the production entries: they refuse a set-up that would only seem to work."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
GUNICORN = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(tmp_path: Path, port: int, *, stdout: int = subprocess.DEVNULL, **env: str) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "RATELIMIT_STORAGE_URI", "CELERY_BROKER_URL", "WEB_CONCURRENCY",
                         "JOBS_IN_PROCESS")}
    return subprocess.Popen([GUNICORN, "jieyou.wsgi:app", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
                            cwd=ROOT, env={**base, "JIEYOU_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "test", **env},
                            stdout=stdout, stderr=subprocess.PIPE, text=True)


def _refused(server: subprocess.Popen[str]) -> str:
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.terminate()
        server.wait(timeout=30)
        raise AssertionError("gunicorn started") from None
    assert server.returncode != 0
    return server.stderr.read()  # type: ignore[union-attr]


def test_several_workers_with_rate_limits_in_memory_by_default_refuse_to_start(tmp_path, pg_url):
    """Each worker would count sign-in and code guesses on its own: the budget once per worker."""
    stderr = _refused(_start(tmp_path, _free_port(), DATABASE_URL=pg_url))
    assert "RATELIMIT_STORAGE_URI" in stderr


def test_no_database_url_refuses_to_start(tmp_path):
    """Not an empty SQLite file in the instance folder answering every request "busy"."""
    stderr = _refused(_start(tmp_path, _free_port(), RATELIMIT_STORAGE_URI="memory://"))
    assert "DATABASE_URL" in stderr


def _wait_for_ping(server: subprocess.Popen[str], port: int) -> None:
    deadline, answer = time.monotonic() + 60, None
    while answer is None and time.monotonic() < deadline and server.poll() is None:
        try:
            answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ping", timeout=2).read()
        except OSError:
            time.sleep(0.2)
    assert answer == b'{"pong":true}\n' or answer == b'{"pong": true}\n', answer


def _served(server: subprocess.Popen[str], port: int) -> str:
    """Wait for the ping to answer, stop the server and return what it logged."""
    try:
        _wait_for_ping(server, port)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return server.stderr.read()  # type: ignore[union-attr]


def test_limits_in_memory_named_on_purpose_start_with_a_warning(tmp_path, pg_url):
    port = _free_port()
    stderr = _served(_start(tmp_path, port, DATABASE_URL=pg_url, RATELIMIT_STORAGE_URI="memory://",
                            CELERY_BROKER_URL=BROKER), port)
    assert "each of the 2 workers keeps its own rate limits" in stderr


def test_a_server_database_without_a_broker_refuses_to_start(tmp_path, pg_url):
    """Jobs would run inside requests and the nightly schedule (awards after the notice, hold
    expiry, the digest) nowhere, with only a warning in a log nobody reads: refused, saying what to
    set. A value that does not say yes (0, false) is no opt-in."""
    for opt_in in (None, "0", "false", ""):
        env = {"JOBS_IN_PROCESS": opt_in} if opt_in is not None else {}
        stderr = _refused(_start(tmp_path, _free_port(), DATABASE_URL=pg_url, RATELIMIT_STORAGE_URI="memory://",
                                 **env))
        assert "CELERY_BROKER_URL" in stderr and "JOBS_IN_PROCESS=1" in stderr and "schedule" in stderr


def test_jobs_in_process_named_on_purpose_start_with_a_warning(tmp_path, pg_url):
    port = _free_port()
    stderr = _served(_start(tmp_path, port, DATABASE_URL=pg_url, RATELIMIT_STORAGE_URI="memory://",
                            JOBS_IN_PROCESS="1"), port)
    assert "JOBS_IN_PROCESS" in stderr and "nightly schedule" in stderr and "runs nowhere" in stderr


def test_with_a_broker_there_is_no_warning_about_jobs(tmp_path, pg_url):
    port = _free_port()
    stderr = _served(_start(tmp_path, port, DATABASE_URL=pg_url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/15",
                            CELERY_BROKER_URL=BROKER), port)
    assert "CELERY_BROKER_URL" not in stderr and "JOBS_IN_PROCESS" not in stderr


def test_the_access_log_keeps_the_path_and_not_the_query(tmp_path, pg_url):
    """gunicorn's default format logs the request line: a staff search's phone number or name
    (`/admin/accounts?q=`) was kept in the access log of every request. The path, status, size,
    duration and user agent are still there."""
    port = _free_port()
    server = _start(tmp_path, port, stdout=subprocess.PIPE, DATABASE_URL=pg_url, RATELIMIT_STORAGE_URI="memory://",
                    CELERY_BROKER_URL=BROKER)
    try:
        _wait_for_ping(server, port)
        search = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/admin/accounts?q=13912345678&x=%E6%A2%85",
                                        headers={"User-Agent": "log-probe/1.0", "Referer": "http://x/?q=13700000000"})
        try:
            urllib.request.urlopen(search, timeout=5)
        except urllib.error.HTTPError as refused:
            assert refused.code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
    logged = server.stdout.read()  # type: ignore[union-attr]
    line = next(line for line in logged.splitlines() if "/api/v1/admin/accounts" in line)
    assert "13912345678" not in logged and "13700000000" not in logged and "%E6" not in logged and "q=" not in logged
    assert re.search(r'"GET /api/v1/admin/accounts" 401 \d+ \d+\.\d{6} "log-probe/1\.0"$', line), line


def test_the_redemption_benchmarks_gunicorn_still_starts(pg_url):
    """bench/redemption_bench.py runs gunicorn with settings of its own (no broker: its jobs are not
    what it measures): it says so with JOBS_IN_PROCESS, and its server starts."""
    spec = importlib.util.spec_from_file_location("redemption_bench", ROOT / "bench" / "redemption_bench.py")
    bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    server = bench.start_gunicorn(pg_url, _free_port(), 1, 2)  # raises if gunicorn did not start
    server.terminate()
    server.wait(timeout=30)


def test_a_celery_worker_without_a_broker_refuses_to_start(tmp_path, pg_url):
    """Without CELERY_BROKER_URL a worker listened on a broker in its own memory that nothing
    sends to, and beat sent the nightly schedule there: both started and did nothing, for ever."""
    base = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "JOBS_IN_PROCESS")}
    celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    for command in (["worker", "--pool", "solo"], ["beat"]):
        worker = subprocess.Popen([celery_bin, "-A", "jieyou.worker:celery", *command], cwd=ROOT,
                                  env={**base, "DATABASE_URL": pg_url, "SECRET_KEY": "test", "JOBS_IN_PROCESS": "1",
                                       "JIEYOU_INSTANCE_DIR": str(tmp_path)},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = _refused_output(worker)
        assert "CELERY_BROKER_URL" in output, output[-2000:]


def _refused_output(process: subprocess.Popen[str]) -> str:
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.communicate(timeout=30)
        raise AssertionError("the process started") from None
    assert process.returncode != 0, output
    return output


def test_the_embedded_default_still_serves_with_jobs_in_process(tmp_path):
    """No DATABASE_URL, no broker, no opt-in: `scripts/demo.sh`'s `jieyou demo-server` (SQLite,
    jobs and the schedule in its one process) starts and serves as before."""
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "JOBS_IN_PROCESS",
                                                             "SECRET_KEY")}
    server = subprocess.Popen([sys.executable, "-m", "jieyou.cli", "demo-server", "--port", str(port)], cwd=ROOT,
                              env={**base, "JIEYOU_INSTANCE_DIR": str(tmp_path), "ARGON2_TIME_COST": "1",
                                   "ARGON2_MEMORY_KIB": "1024"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, health = time.monotonic() + 120, None
        while health is None and time.monotonic() < deadline and server.poll() is None:
            try:
                health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            except OSError:
                time.sleep(0.3)
        assert health is not None and b'"status":"ok"' in health, server.stderr.read() if server.poll() else health
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (tmp_path / "jieyou.db").exists()
