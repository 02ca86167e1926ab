"""Two transactions taking turns on the same rows, for the concurrency tests of every package."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker


def while_holding(factory: sessionmaker[Session], first: Callable[[Session], Any],
                  second: Callable[[Session], Any], *, hold: float = 1.0) -> tuple[Any, Any]:
    """Run `first` in a transaction left open, start `second` in a thread (it meets the rows
    `first` holds), commit `first` `hold` seconds later; return what `first` gave and what
    `second` gave once committed, or the exception it raised."""
    got: list[Any] = []

    def run() -> None:
        try:
            with factory() as s:
                result = second(s)
                s.commit()
            got.append(result)
        except Exception as exc:  # noqa: BLE001  (the tests assert on it)
            got.append(exc)

    with factory() as s:
        mine = first(s)
        t = threading.Thread(target=run)
        t.start()
        time.sleep(hold)
        s.commit()
    t.join(30)
    assert not t.is_alive(), "the second transaction never finished"
    return mine, got[0]
