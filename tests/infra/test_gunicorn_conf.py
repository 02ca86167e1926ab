"""gunicorn is the production entry: it refuses a set-up that would only seem to work."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "RATELIMIT_STORAGE_URI", "CELERY_BROKER_URL", "WEB_CONCURRENCY")}
    return subprocess.Popen([GUNICORN, "jieyou.wsgi:app", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
                            cwd=ROOT, env={**base, "JIEYOU_INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "test", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


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


def test_limits_in_memory_named_on_purpose_start_with_a_warning(tmp_path, pg_url):
    port = _free_port()
    server = _start(tmp_path, port, DATABASE_URL=pg_url, RATELIMIT_STORAGE_URI="memory://")
    try:
        deadline, answer = time.monotonic() + 60, None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/ping", timeout=2).read()
            except OSError:
                time.sleep(0.2)
        assert answer == b'{"pong":true}\n' or answer == b'{"pong": true}\n', answer
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "each of the 2 workers keeps its own rate limits" in server.stderr.read()  # type: ignore[union-attr]
