"""Rate limits (Flask-Limiter): in memory for the embedded default, Redis in production."""
from __future__ import annotations

import heapq
import threading
import time

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import MemoryStorage

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


class LazyExpiryMemoryStorage(MemoryStorage):
    """`memory://` with expiry kept in a heap and swept at most once a second.

    Why: limits' own MemoryStorage re-arms a timer every 10 ms that walks *every* key. The counter
    limits each one-time code tried (one key per code, kept a minute), so a busy worker holds
    thousands of keys and that walk cost more CPU than the requests it limited. Counting is
    unchanged: an expired key still reads as zero at once (`get` checks its expiry); the sweep
    only frees memory. Registered under the same scheme, so `memory://` means this class."""

    STORAGE_SCHEME = ["memory"]
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool):
        self._heap: list[tuple[float, str]] = []
        self._heap_lock = threading.Lock()
        self._next_sweep = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        self.get(key)  # drops the key if its window is over
        with self.locks[key]:
            self.storage[key] += amount
            if self.storage[key] == amount:
                when = self.expirations[key] = time.time() + expiry
                with self._heap_lock:
                    heapq.heappush(self._heap, (when, key))
        self._sweep()
        return self.storage.get(key, 0)

    def decr(self, key: str, amount: int = 1) -> int:
        self.get(key)
        with self.locks[key]:
            self.storage[key] = max(self.storage[key] - amount, 0)
        return self.storage.get(key, 0)

    def reset(self) -> int | None:
        with self._heap_lock:
            self._heap.clear()
        return super().reset()

    def _sweep(self) -> None:
        now = time.time()
        if now < self._next_sweep:
            return
        with self._heap_lock:
            self._next_sweep = now + self.SWEEP_SECONDS
            while self._heap and self._heap[0][0] <= now:
                when, key = heapq.heappop(self._heap)
                if self.expirations.get(key) == when:  # not restarted since
                    self.storage.pop(key, None)
                    self.expirations.pop(key, None)
                    self.locks.pop(key, None)
