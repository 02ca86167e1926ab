"""Configuration: what production refuses to start without, and the embedded default's own key."""
from __future__ import annotations

import multiprocessing

import pytest

from infra import config
from infra.config import ConfigurationError, Settings


def test_a_server_database_without_secret_key_refuses_to_start(tmp_path, monkeypatch):
    """Every web and worker process must share SECRET_KEY (one-time codes are keyed with it): a key
    made up per machine would make a code issued on one web server unknown on the next."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://jieyou_app@db.internal/jieyou")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        Settings.from_env(instance_dir=tmp_path)
    assert not (tmp_path / "secret_key").exists()
    monkeypatch.setenv("SECRET_KEY", "a-long-random-string-shared-by-every-process")
    assert Settings.from_env(instance_dir=tmp_path).secret_key == "a-long-random-string-shared-by-every-process"


def _instance_key(folder: str, barrier: "multiprocessing.synchronize.Barrier", keys: "multiprocessing.Queue[str]") -> None:
    barrier.wait()
    keys.put(config._instance_secret_key(config.Path(folder)))


def test_processes_starting_together_share_the_embedded_key(tmp_path):
    """gunicorn's workers (or `jieyou run` and a CLI command) start at the same moment on a fresh
    instance folder: each made and kept its own key (or read the file half-written: an empty key)."""
    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        folder = tmp_path / f"instance{attempt}"
        barrier, queue = context.Barrier(8), context.Queue()
        workers = [context.Process(target=_instance_key, args=(str(folder), barrier, queue)) for _ in range(8)]
        for worker in workers:
            worker.start()
        keys = [queue.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert len(set(keys)) == 1 and len(keys[0]) >= 40, keys
        assert (folder / "secret_key").read_text().strip() == keys[0]
