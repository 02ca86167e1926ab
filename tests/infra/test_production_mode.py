"""Production shape: a real Celery worker on a Redis broker runs a ledger job in its own unit of
work and commits it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import select

from ledger.models import LedgerCheck

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def redis_broker() -> str:
    try:
        redis.Redis.from_url(BROKER).ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running; start it with scripts/services.sh")
    return BROKER


def test_celery_worker_runs_a_scheduled_job_and_commits(committed_factory, pg_url, redis_broker, tmp_path):
    env = {**os.environ, "DATABASE_URL": pg_url, "CELERY_BROKER_URL": redis_broker, "JIEYOU_INSTANCE_DIR": str(tmp_path),
           "SECRET_KEY": "test"}
    celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    worker = subprocess.Popen([celery_bin, "-A", "jieyou.worker:celery", "worker", "--pool", "solo", "--loglevel", "WARNING",
                               "-Q", f"test-{uuid.uuid4().hex[:6]}"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    queue = worker.args[-1]
    period = f"test-{uuid.uuid4().hex[:8]}"
    try:
        client = Celery(broker=redis_broker)
        client.send_task("ledger.reconcile", kwargs={"period_key": period}, queue=queue)
        deadline = time.monotonic() + 60
        check = None
        while time.monotonic() < deadline and check is None:
            with committed_factory() as session:
                check = session.scalar(select(LedgerCheck).where(LedgerCheck.period_key == period))
            time.sleep(0.5)
        assert check is not None, worker.stderr.read() if worker.poll() is not None else "worker still running"
        assert check.kind == "reconcile" and check.ok
    finally:
        worker.terminate()
        worker.wait(timeout=30)
