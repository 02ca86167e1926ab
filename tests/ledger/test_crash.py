"""Killing the writing process mid-work leaves no partial posting."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.models import Entry, Posting
from ledger.services import accounts, integrity
from tests import factories as f

pytestmark = pytest.mark.concurrency
ROOT = Path(__file__).resolve().parents[2]


def _start(pg_url: str, mode: str, scope: str, account: int, issuance: int) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-m", "tests.ledger.crash_writer", pg_url, mode, scope, str(account),
                              str(issuance)], cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ})
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line in ("written-not-committed", "running"), line
    return child


@pytest.fixture
def target(committed_factory):
    with committed_factory() as session:
        tree = f.region_tree(session)
        account = f.account_of(session, f.participant(session, tree.grid_a)).id
        issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS).id
        session.commit()
    return account, issuance


def test_killed_batch_leaves_nothing(committed_factory, pg_url, target):
    account, issuance = target
    scope = f"crash-{uuid.uuid4().hex[:8]}"
    child = _start(pg_url, "batch", scope, account, issuance)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with committed_factory() as session:
        assert session.scalar(select(func.count()).select_from(Posting).where(Posting.idem_scope == scope)) == 0
        assert accounts.balance(session, account) == 0
        assert integrity.verify_chains(session, account_id=account).ok


def test_killed_loop_leaves_only_whole_postings(committed_factory, pg_url, target):
    account, issuance = target
    scope = f"crash-{uuid.uuid4().hex[:8]}"
    child = _start(pg_url, "loop", scope, account, issuance)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with committed_factory() as session:
        postings = session.scalars(select(Posting.id).where(Posting.idem_scope == scope)).all()
        assert len(postings) > 20
        entries = session.execute(select(Entry.posting_id, func.count(), func.sum(Entry.amount))
                                  .where(Entry.posting_id.in_(postings)).group_by(Entry.posting_id)).all()
        assert len(entries) == len(postings) and all(n == 2 and total == 0 for _p, n, total in entries)
        assert accounts.balance(session, account) == len(postings)
        assert integrity.verify_chains(session, account_id=account).ok
        assert integrity.reconcile(session).ok
