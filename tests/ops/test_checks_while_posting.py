"""The ledger checks run while the ledger is written (the nightly job at 02:30 shares its minute
with the 5-minute award run and the hold expiry): a posting committed while `verify` reads must
not be reported as a broken chain. On PostgreSQL each statement reads its own snapshot."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from infra.db import db
from ledger import tasks
from ledger.models import LedgerCheck
from tests import factories as f

pytestmark = pytest.mark.concurrency


def test_a_posting_committed_while_verify_reads_is_no_problem(committed_factory, engine):
    """Regression: verify read the chain heads, then the entries; an award committed in between
    was recorded (and logged as an error) as `missing_entries_at_end` on a sound ledger, a false
    tampering alarm on the auditors' status page."""
    with committed_factory() as s:
        account = f.account_of(s, f.participant(s, f.region_tree(s).grid_a)).id
        f.award(s, account, 5)
        s.commit()
    posted: list[bool] = []

    def post_meanwhile(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """Just before verify reads the entries, another transaction awards the same account."""
        if posted or "FROM entries JOIN postings" not in statement:
            return
        posted.append(True)
        with committed_factory() as other:
            f.award(other, account, 3)
            other.commit()

    event.listen(engine, "before_cursor_execute", post_meanwhile)
    try:
        tasks.verify_ledger()
    finally:
        event.remove(engine, "before_cursor_execute", post_meanwhile)
    assert posted
    with db.unit_of_work() as s:
        check = s.scalar(select(LedgerCheck).where(LedgerCheck.kind == "verify").order_by(LedgerCheck.id.desc()))
        mine = [p for p in check.problems["items"] if p.get("account_id") == account]
    assert mine == []
