"""Rate limits (Flask-Limiter, and `view_limits` for hot views): in memory for the embedded default,
Redis in production."""
from __future__ import annotations

import functools
import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response, after_this_request, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from werkzeug.exceptions import TooManyRequests

F = TypeVar("F", bound=Callable[..., Any])

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


class RateLimited(TooManyRequests):
    """A 429 from `view_limits`; the error handler turns `retry_after` into the Retry-After header."""

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rule:
    """One limit of a view: `limit()` gives its text ("60 per minute", read per request so settings
    changes apply), `key()` whom it counts, `scope` which budget (views naming the same scope share
    it). With `deduct_when`, a request takes a unit beforehand (so requests in flight at once
    cannot overrun it) and gives it back afterwards unless `deduct_when(response)` holds: only
    failures, for instance, stay counted."""

    limit: Callable[[], str]
    key: Callable[[], str]
    scope: str
    deduct_when: Callable[[Response], bool] | None = None


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> RateLimitItem:
    return parse(text)


def view_limits(*rules: Rule) -> Callable[[F], F]:
    """View decorator: the rules checked straight on Flask-Limiter's strategy and storage (the same
    `RATELIMIT_STORAGE_URI`, strategy, on/off switch and `limiter.reset()`), one storage call per
    rule, in order, stopping at the first breach with a 429 and Retry-After.

    Why not `limiter.limit`/`shared_limit`: for the counter's three limits Flask-Limiter's
    per-request machinery (resolving, filtering and sorting limits, exemption scopes, request
    context bookkeeping) cost about a fifth of a redemption's CPU; the storage calls themselves
    are a few microseconds. Counting is the same fixed-window (or configured) strategy.

    Such a view is also passed over by Flask-Limiter's own check before every request
    (`_limited_by_its_view`) while Flask-Limiter has no default or application limits: it has
    nothing else to check for these views, and resolving that cost a redemption about 0.03 ms."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if limiter.enabled:
                _take(rules)
            return view(*args, **kwargs)

        wrapper.view_limits = rules  # type: ignore[attr-defined]  # read by `_limited_by_its_view`
        return wrapper  # type: ignore[return-value]

    return decorator


@limiter.request_filter
def _limited_by_its_view() -> bool:
    """True (Flask-Limiter skips the request) for a view that `view_limits` limits, unless
    Flask-Limiter has default or application limits, which would apply to it too. Views limited
    with `limiter.limit` (login) are never `view_limits` views, so they are checked as before."""
    view = current_app.view_functions.get(request.endpoint)  # type: ignore[arg-type]
    if getattr(view, "view_limits", None) is None:
        return False
    manager = limiter.limit_manager
    return not manager.default_limits and not manager.application_limits


def _take(rules: tuple[Rule, ...]) -> None:
    """Every rule is counted before the view runs, so requests in flight at once cannot all pass a
    budget that each only tested (guesses sent in parallel went through a failure budget at the
    whole request rate). A `deduct_when` rule gives its unit back afterwards unless the response
    is one it counts; a refused request gives back what it took of the rules already passed."""
    strategy = limiter.limiter
    taken: list[tuple[Rule, RateLimitItem, str]] = []
    for rule in rules:
        item, key = _parsed(rule.limit()), rule.key()
        allowed = strategy.hit(item, key, rule.scope)
        if rule.deduct_when is not None:
            taken.append((rule, item, key))
        if not allowed:
            for held, held_item, held_key in taken:  # reservations, this rule's among them
                _give_back(held_item, held_key, held.scope)
            raise RateLimited(item.get_expiry())
    if taken:
        def settle(response: Response) -> Response:  # runs for error responses too
            for rule, item, key in taken:
                if not rule.deduct_when(response):  # type: ignore[misc]
                    _give_back(item, key, rule.scope)
            return response

        after_this_request(settle)


def _give_back(item: RateLimitItem, key: str, scope: str) -> None:
    """Undo one hit of a fixed-window count (the configured strategy); never below zero in memory."""
    storage = limiter.limiter.storage
    name = item.key_for(key, scope)
    if hasattr(storage, "decr"):
        storage.decr(name)
    else:
        storage.incr(name, item.get_expiry(), amount=-1)


def is_rate_limited(view: Callable[..., Any]) -> bool:
    """Whether requests to `view` (as registered, its class's decorators applied) can be refused
    with a 429: limited by `view_limits`, by `limiter.limit`, or by default or application limits.
    Read when the spec is built (`infra.openapi`), never per request."""
    if getattr(view, "view_limits", None) is not None:
        return True
    if getattr(view, "__wrapper-limiter-instance", None) == limiter:  # a weak proxy of it, set by its decorators
        return True
    manager = limiter.limit_manager
    return bool(manager.default_limits or manager.application_limits)
