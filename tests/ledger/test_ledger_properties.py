"""Property-based: any sequence of award / spend / reverse / retry keeps the books right.

After every step: cached balance = model = sum of entries >= 0 for each account, and all
entries in the ledger sum to zero. A spend (a redemption) is never reversed in the ledger: the
counter refunds it. Runs on PostgreSQL and on the SQLite embedded default."""
from __future__ import annotations

import uuid

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from infra.auth import SYSTEM
from infra.errors import Conflict, IdempotencyConflict
from ledger.models import Entry
from ledger.services import accounts, corrections
from ledger.services.posting import InsufficientBalance, Leg, PostingRequest, post
from tests import factories as f

amounts = st.integers(min_value=1, max_value=30)


def make_machine(session):  # noqa: ANN001, ANN201
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tx = session.begin_nested()
            tree = f.region_tree(session)
            self.people = [f.account_of(session, f.participant(session, tree.grid_a)).id for _ in range(3)]
            self.shop = f.partner_account(session, tree.town_a).id
            self.issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS).id
            self.model = dict.fromkeys(self.people, 0)
            self.tag = uuid.uuid4().hex[:8]
            self.sent: dict[str, tuple[tuple, int, dict[int, int]]] = {}  # key -> (payload, posting id, deltas)
            self.postings: list[tuple[int, dict[int, int]]] = []  # (posting id, participant deltas)
            self.spends: set[int] = set()  # redemption postings: corrected at the counter only
            self.reversed: set[int] = set()

        def teardown(self) -> None:
            self.tx.rollback()

        def _attempt(self, payload: tuple, request: PostingRequest, deltas: dict[int, int]) -> None:
            key = request.idempotency_key
            if key in self.sent and self.sent[key][0] != payload:
                try:
                    with session.begin_nested():
                        post(session, SYSTEM, request)
                    raise AssertionError("reused key with other payload was accepted")
                except IdempotencyConflict:
                    return
            if key in self.sent:
                with session.begin_nested():
                    assert post(session, SYSTEM, request).posting_id == self.sent[key][1]
                return
            fits = all(self.model[a] + d >= 0 for a, d in deltas.items())
            try:
                with session.begin_nested():
                    result = post(session, SYSTEM, request)
            except InsufficientBalance:
                assert not fits
                return
            assert fits
            for account, delta in deltas.items():
                self.model[account] += delta
            self.postings.append((result.posting_id, deltas))
            if request.kind == "redemption":
                self.spends.add(result.posting_id)
            self.sent[key] = (payload, result.posting_id, deltas)

        @rule(who=st.integers(0, 2), amount=amounts, key=st.integers(0, 6))
        def award(self, who: int, amount: int, key: int) -> None:
            account = self.people[who]
            self._attempt(("award", account, amount), PostingRequest(
                kind="award", reason="award", idempotency_key=f"{self.tag}-{key}",
                legs=[Leg(account, amount), Leg(self.issuance, -amount)]), {account: amount})

        @rule(who=st.integers(0, 2), amount=amounts, key=st.integers(0, 6))
        def spend(self, who: int, amount: int, key: int) -> None:
            account = self.people[who]
            self._attempt(("spend", account, amount), PostingRequest(
                kind="redemption", reason="spend", idempotency_key=f"{self.tag}-{key}",
                legs=[Leg(account, -amount), Leg(self.shop, amount)]), {account: -amount})

        @rule(pick=st.integers(0, 1000))
        def reverse(self, pick: int) -> None:
            if not self.postings:
                return
            posting_id, deltas = self.postings[pick % len(self.postings)]
            fits = all(self.model[a] - d >= 0 for a, d in deltas.items())
            try:
                with session.begin_nested():
                    result = corrections.reverse(session, SYSTEM, posting_id, "reverse")
            except Conflict as exc:
                if isinstance(exc, InsufficientBalance):
                    assert not fits and posting_id not in self.reversed
                elif exc.code == "managed_source":
                    assert posting_id in self.spends
                else:
                    assert posting_id in self.reversed or exc.code == "cannot_reverse_reversal"
                return
            assert fits and posting_id not in self.reversed and posting_id not in self.spends
            self.reversed.add(posting_id)
            for account, delta in deltas.items():
                self.model[account] -= delta
            self.postings.append((result.posting_id, {a: -d for a, d in deltas.items()}))
            self.reversed.add(result.posting_id)  # a reversal can never be reversed

        @invariant()
        def books_balance(self) -> None:
            for account in self.people:
                cached = accounts.balance(session, account)
                summed = session.scalar(select(func.coalesce(func.sum(Entry.amount), 0)).where(Entry.account_id == account))
                assert cached == self.model[account] == summed >= 0
            assert session.scalar(select(func.coalesce(func.sum(Entry.amount), 0))) == 0

    return LedgerMachine


def test_any_sequence_keeps_balances_and_conservation(any_session):
    run_state_machine_as_test(
        lambda: make_machine(any_session)(),
        settings=settings(max_examples=25, stateful_step_count=20, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
