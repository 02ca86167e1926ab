"""Ways people try to get round the second pair of eyes, and why they fail."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, update

from infra.errors import Conflict, Forbidden
from ledger.models import ApprovalRequest, Posting
from ledger.services import accounts, corrections
from tests import factories as f
from tests.concurrency import while_holding

THRESHOLD = 20


def test_splitting_an_adjustment_into_small_ones_still_needs_approval(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    clerk = f.staff(session, "clerk", tree.town_a)
    outcomes = [corrections.request_adjustment(session, clerk, participant_id=person.id, amount=8, reason="补录",
                                               threshold=THRESHOLD, adjustment_shards=f.SHARDS).status
                for _ in range(4)]
    assert outcomes == ["posted", "posted", "pending", "pending"]
    assert accounts.balance(session, account.id) == 16


def test_same_key_for_a_different_adjustment_is_refused(session):
    from infra.errors import IdempotencyConflict

    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    clerk = f.staff(session, "clerk", tree.town_a)
    corrections.request_adjustment(session, clerk, participant_id=person.id, amount=90, reason="补录",
                                   threshold=THRESHOLD, adjustment_shards=f.SHARDS, idempotency_key="same-key-01")
    with pytest.raises(IdempotencyConflict):
        corrections.request_adjustment(session, clerk, participant_id=person.id, amount=95, reason="补录",
                                       threshold=THRESHOLD, adjustment_shards=f.SHARDS, idempotency_key="same-key-01")


def test_staff_cannot_reverse_a_posting_in_their_own_favour(session):
    tree = f.region_tree(session)
    me = f.participant(session, tree.grid_a)
    account = f.account_of(session, me)
    f.award(session, account.id, 60)
    approver = f.staff(session, "approver", tree.town_a, participant_id=me.id)
    clerk = f.staff(session, "clerk", tree.town_a)
    debit = corrections.request_adjustment(session, clerk, participant_id=me.id, amount=-15, reason="多记积分扣回",
                                           threshold=THRESHOLD, adjustment_shards=f.SHARDS)
    with pytest.raises(Forbidden):
        corrections.request_reversal(session, approver, posting_id=debit.posting_id, reason="退回我的积分")
    request = corrections.request_reversal(session, clerk, posting_id=debit.posting_id, reason="误操作")
    with pytest.raises(Forbidden) as err:
        corrections.decide(session, approver, request.id, approve=True, note=None, adjustment_shards=f.SHARDS)
    assert err.value.code == "self_dealing"


def test_two_approvers_at_once_post_the_adjustment_once(committed_factory):
    with committed_factory() as session:
        tree = f.region_tree(session)
        person = f.participant(session, tree.grid_a)
        account = f.account_of(session, person).id
        clerk = f.staff(session, "clerk", tree.town_a)
        approvers = [f.staff(session, "approver", tree.county) for _ in range(6)]
        request = corrections.request_adjustment(session, clerk, participant_id=person.id, amount=500,
                                                 reason="补录年度积分", threshold=THRESHOLD,
                                                 adjustment_shards=f.SHARDS).request.id
        session.commit()
    barrier = threading.Barrier(len(approvers))

    def approve(approver) -> str:  # noqa: ANN001
        with committed_factory() as session:
            barrier.wait()
            try:
                corrections.decide(session, approver, request, approve=True, note=None, adjustment_shards=f.SHARDS)
                session.commit()
                return "approved"
            except Conflict as exc:
                return exc.code

    with ThreadPoolExecutor(len(approvers)) as pool:
        outcomes = list(pool.map(approve, approvers))
    assert sorted(outcomes) == ["already_decided"] * 5 + ["approved"]
    with committed_factory() as session:
        assert accounts.balance(session, account) == 500
        assert session.scalar(select(func.count()).select_from(Posting).where(
            Posting.source_type == "approval_request", Posting.source_id == str(request))) == 1


def test_two_reversal_requests_at_once_make_one_request(committed_factory):
    """Regression: the check for a reversal already waiting read before either request was
    written, so two clerks asking at once (or one request sent twice with its key, in flight)
    made two pending reversals of one posting, one of which could never be approved (or the
    retry was a bare 409 conflict). Now the second waits for the first: a different clerk is told
    `reversal_pending`, the same request with the same key gets the first request back."""
    with committed_factory() as session:
        tree = f.region_tree(session)
        person = f.participant(session, tree.grid_a)
        posting = f.award(session, f.account_of(session, person).id, 9).posting_id
        clerks = [f.staff(session, "clerk", tree.town_a) for _ in range(2)]
        session.commit()

    def ask(clerk, key=None):  # noqa: ANN001, ANN202
        return lambda s: corrections.request_reversal(s, clerk, posting_id=posting, reason="录入有误",
                                                      idempotency_key=key).id

    first, second = while_holding(committed_factory, ask(clerks[0]), ask(clerks[1]), hold=0.5)
    assert isinstance(second, Conflict) and second.code == "reversal_pending", second
    with committed_factory() as session:
        session.execute(update(ApprovalRequest).where(ApprovalRequest.id == first).values(status="rejected"))
        session.commit()
    first, again = while_holding(committed_factory, ask(clerks[0], "retry-key-1"), ask(clerks[0], "retry-key-1"),
                                 hold=0.5)
    assert again == first
    with committed_factory() as session:
        assert session.scalar(select(func.count()).select_from(ApprovalRequest).where(
            ApprovalRequest.posting_id == posting, ApprovalRequest.status == "pending")) == 1
