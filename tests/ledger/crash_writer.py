"""Run by test_crash.py in a child process that the test kills with SIGKILL mid-work.

    python -m tests.ledger.crash_writer URL batch|loop SCOPE ACCOUNT_ID ISSUANCE_ID
"""
from __future__ import annotations

import sys
import time

from sqlalchemy.orm import Session

from infra.auth import SYSTEM
from infra.db import make_engine
from ledger.services.posting import Leg, PostingRequest, post, post_many


def main() -> None:
    url, mode, scope, account_id, issuance_id = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    engine = make_engine(url, pool_size=1)

    def request(i: int) -> PostingRequest:
        return PostingRequest(kind="award", reason=f"crash test {i}", idempotency_key=f"{scope}-{i}",
                              legs=[Leg(account_id, 1), Leg(issuance_id, -1)])

    if mode == "batch":
        with Session(engine) as session:
            post_many(session, SYSTEM, [request(i) for i in range(500)], idem_scope=scope)
            session.flush()
            print("written-not-committed", flush=True)
            time.sleep(60)  # killed here, before the commit
            session.commit()
    else:
        i = 0
        while True:
            with Session(engine) as session:
                post(session, SYSTEM, request(i), idem_scope=scope)
                session.commit()
            if i == 20:
                print("running", flush=True)
            i += 1


if __name__ == "__main__":
    main()
