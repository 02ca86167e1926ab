"""Reversals and adjustments: corrections are new postings, with a second pair of eyes."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from identity.models import AuditEntry
from infra.auth import SYSTEM
from infra.errors import Conflict, Forbidden, IdempotencyConflict, NotFound
from ledger.models import ApprovalRequest, Posting
from ledger.services import accounts, corrections
from ledger.services.posting import InsufficientBalance
from tests import factories as f

THRESHOLD = 20


@pytest.fixture
def world(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    return tree, person, account


def test_reversal_mirrors_the_original_and_links_to_it(session, world):
    _tree, _person, account = world
    original = f.award(session, account.id, 9)
    f.award(session, account.id, 1)
    reversal = corrections.reverse(session, SYSTEM, original.posting_id, "案卷不完整")
    posting = session.get(Posting, reversal.posting_id)
    assert posting.kind == "reversal" and posting.reverses_id == original.posting_id
    assert sorted(e.amount for e in posting.entries) == sorted(-e.amount for e in session.get(Posting, original.posting_id).entries)
    assert accounts.balance(session, account.id) == 1


def test_reversing_twice_is_refused(session, world):
    _tree, _person, account = world
    original = f.award(session, account.id, 4)
    corrections.reverse(session, SYSTEM, original.posting_id, "错误奖励")
    with pytest.raises(Conflict) as err:
        corrections.reverse(session, SYSTEM, original.posting_id, "再次冲正")
    assert err.value.code == "already_reversed"


def test_reversing_a_reversal_is_refused_by_service_and_database(session, world):
    _tree, _person, account = world
    original = f.award(session, account.id, 4)
    reversal = corrections.reverse(session, SYSTEM, original.posting_id, "错误奖励")
    with pytest.raises(Conflict) as err:
        corrections.reverse(session, SYSTEM, reversal.posting_id, "撤销冲正")
    assert err.value.code == "cannot_reverse_reversal"
    with pytest.raises(DBAPIError, match="cannot be reversed"):
        with session.begin_nested():
            session.execute(text(
                "INSERT INTO postings (kind, reason, actor_kind, actor_id, actor_label, meta, effective_at, created_at,"
                " idem_scope, idem_key, request_digest, reverses_id) VALUES ('reversal', 'x', 'system', 0, 's', '{}',"
                " now(), now(), 't', 'raw-insert', 'd', :r)"), {"r": reversal.posting_id})


def test_a_reversal_of_a_posting_that_does_not_exist_is_refused_by_the_database(session, world):
    """The link is checked by the insert trigger (migration 0011) as the foreign key did: an
    integrity error, and nothing written."""
    _tree, _person, account = world
    original = f.award(session, account.id, 4)
    missing = session.scalar(text("SELECT max(id) + 1000 FROM postings"))
    with pytest.raises(IntegrityError, match="does not exist"):
        with session.begin_nested():
            session.execute(text(
                "INSERT INTO postings (kind, reason, actor_kind, actor_id, actor_label, meta, effective_at, created_at,"
                " idem_scope, idem_key, request_digest, reverses_id) VALUES ('reversal', 'x', 'system', 0, 's', '{}',"
                " now(), now(), 't', 'raw-missing', 'd', :r)"), {"r": missing})
    assert corrections.reverse(session, SYSTEM, original.posting_id, "错误奖励").posting_id


def test_reversal_of_spent_points_is_refused_cleanly(session, world):
    tree, _person, account = world
    shop = f.partner_account(session, tree.town_a)
    original = f.award(session, account.id, 10)
    f.spend(session, account.id, 8, shop.id)
    with pytest.raises(InsufficientBalance):
        with session.begin_nested():
            corrections.reverse(session, SYSTEM, original.posting_id, "错误奖励")
    assert accounts.balance(session, account.id) == 2


def test_small_adjustment_posts_at_once(session, world):
    tree, person, account = world
    clerk = f.staff(session, "clerk", tree.town_a)
    outcome = corrections.request_adjustment(session, clerk, participant_id=person.id, amount=5, reason="补录",
                                             threshold=THRESHOLD, adjustment_shards=f.SHARDS)
    assert outcome.status == "posted" and accounts.balance(session, account.id) == 5


def test_large_adjustment_waits_for_another_approver(session, world):
    tree, person, account = world
    approver = f.staff(session, "approver", tree.town_a)
    other = f.staff(session, "approver", tree.county)
    outcome = corrections.request_adjustment(session, approver, participant_id=person.id, amount=50, reason="补录季度积分",
                                             threshold=THRESHOLD, adjustment_shards=f.SHARDS)
    assert outcome.status == "pending" and accounts.balance(session, account.id) == 0
    with pytest.raises(Forbidden) as err:
        corrections.decide(session, approver, outcome.request.id, approve=True, note=None, adjustment_shards=f.SHARDS)
    assert err.value.code == "four_eyes"
    decided = corrections.decide(session, other, outcome.request.id, approve=True, note="同意", adjustment_shards=f.SHARDS)
    assert decided.status == "approved" and accounts.balance(session, account.id) == 50
    with pytest.raises(Conflict):
        corrections.decide(session, other, outcome.request.id, approve=True, note=None, adjustment_shards=f.SHARDS)


def test_database_refuses_self_approval_even_without_the_service(session, world):
    tree, person, _account = world
    clerk = f.staff(session, "clerk", tree.town_a)
    outcome = corrections.request_adjustment(session, clerk, participant_id=person.id, amount=99, reason="大额",
                                             threshold=THRESHOLD, adjustment_shards=f.SHARDS)
    with pytest.raises(DBAPIError):
        with session.begin_nested():
            session.execute(text("UPDATE approval_requests SET decided_by = requested_by WHERE id = :i"),
                            {"i": outcome.request.id})


def test_staff_cannot_adjust_their_own_points(session, world):
    tree, person, _account = world
    clerk = f.staff(session, "clerk", tree.town_a, participant_id=person.id)
    with pytest.raises(Forbidden) as err:
        corrections.request_adjustment(session, clerk, participant_id=person.id, amount=5, reason="给自己加分",
                                       threshold=THRESHOLD, adjustment_shards=f.SHARDS)
    assert err.value.code == "self_dealing"


def test_staff_outside_scope_see_nothing(session, world):
    tree, person, account = world
    original = f.award(session, account.id, 3)
    stranger = f.staff(session, "clerk", tree.town_b)
    with pytest.raises(NotFound):
        corrections.request_adjustment(session, stranger, participant_id=person.id, amount=5, reason="越权",
                                       threshold=THRESHOLD, adjustment_shards=f.SHARDS)
    with pytest.raises(NotFound):
        corrections.request_reversal(session, stranger, posting_id=original.posting_id, reason="越权")


def test_reversal_request_then_approval(session, world):
    tree, _person, account = world
    original = f.award(session, account.id, 6)
    clerk = f.staff(session, "clerk", tree.town_a)
    approver = f.staff(session, "approver", tree.town_a)
    request = corrections.request_reversal(session, clerk, posting_id=original.posting_id, reason="重复上报")
    with pytest.raises(Conflict) as err:
        corrections.request_reversal(session, clerk, posting_id=original.posting_id, reason="重复上报")
    assert err.value.code == "reversal_pending"
    corrections.decide(session, approver, request.id, approve=True, note=None, adjustment_shards=f.SHARDS)
    assert accounts.balance(session, account.id) == 0
    assert session.scalar(select(Posting.id).where(Posting.reverses_id == original.posting_id)) == request.result_posting_id


def test_a_retried_small_adjustment_returns_its_posting_and_asks_for_nothing(session, world):
    """Regression: the retry counted its own first posting towards the threshold and became a
    pending request that, approved, would have credited the participant twice."""
    tree, person, account = world
    clerk = f.staff(session, "clerk", tree.town_a)
    outcomes = [corrections.request_adjustment(session, clerk, participant_id=person.id, amount=15, reason="补录",
                                               threshold=THRESHOLD, adjustment_shards=f.SHARDS,
                                               idempotency_key="adj-retry-0001") for _ in range(2)]
    assert [o.status for o in outcomes] == ["posted", "posted"]
    assert outcomes[1].posting_id == outcomes[0].posting_id and outcomes[1].request is None
    assert accounts.balance(session, account.id) == 15
    assert session.scalar(select(func.count()).select_from(ApprovalRequest)
                          .where(ApprovalRequest.account_id == account.id)) == 0
    assert session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == clerk.id)).all() == ["ledger.adjust"]


@pytest.mark.parametrize("changed", [{"amount": 16}, {"amount": 90}, {"reason": "另一笔补录"}])
def test_the_key_of_a_small_adjustment_is_not_reused_for_another(session, world, changed):
    tree, person, account = world
    clerk = f.staff(session, "clerk", tree.town_a)
    first = {"participant_id": person.id, "amount": 15, "reason": "补录", "idempotency_key": "adj-retry-0002"}
    corrections.request_adjustment(session, clerk, threshold=THRESHOLD, adjustment_shards=f.SHARDS, **first)
    with pytest.raises(IdempotencyConflict) as err:
        corrections.request_adjustment(session, clerk, threshold=THRESHOLD, adjustment_shards=f.SHARDS,
                                       **{**first, **changed})
    assert "adj-retry-0002" in err.value.details["idempotency_key"][0]
    assert accounts.balance(session, account.id) == 15
    assert session.scalar(select(func.count()).select_from(ApprovalRequest)
                          .where(ApprovalRequest.account_id == account.id)) == 0


def test_a_retried_large_adjustment_returns_its_request_before_and_after_approval(session, world):
    tree, person, account = world
    clerk = f.staff(session, "clerk", tree.town_a)
    approver = f.staff(session, "approver", tree.town_a)
    ask = {"participant_id": person.id, "amount": 50, "reason": "补录季度积分", "idempotency_key": "adj-retry-0003"}
    first = corrections.request_adjustment(session, clerk, threshold=THRESHOLD, adjustment_shards=f.SHARDS, **ask)
    again = corrections.request_adjustment(session, clerk, threshold=THRESHOLD, adjustment_shards=f.SHARDS, **ask)
    assert (first.status, again.status) == ("pending", "pending") and again.request.id == first.request.id
    corrections.decide(session, approver, first.request.id, approve=True, note=None, adjustment_shards=f.SHARDS)
    after = corrections.request_adjustment(session, clerk, threshold=THRESHOLD, adjustment_shards=f.SHARDS, **ask)
    assert after.request.id == first.request.id and after.posting_id == first.request.result_posting_id
    assert accounts.balance(session, account.id) == 50
    with pytest.raises(IdempotencyConflict) as err:
        corrections.request_adjustment(session, clerk, threshold=THRESHOLD, adjustment_shards=f.SHARDS,
                                       **{**ask, "amount": 5})
    assert "adj-retry-0003" in err.value.details["idempotency_key"][0]
    assert accounts.balance(session, account.id) == 50


def _counter_postings(session, tree, person):
    """A redemption, a refund, a hold with its capture, and a voided hold with its release."""
    from redemption.services import counter

    cfg = f.counter_config()
    partner, outlets, desks = f.shop(session, tree.town_a)
    rice = f.scenario(session, partner, outlets, points_cost=30, yuan_value_fen=3000)
    redemption, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                                   idem_key="till-rev-0001", cfg=cfg)
    refund, _ = counter.refund(session, desks[0], redemption.id, points=5, reason="少给", idem_key="ref-rev-0001",
                               cfg=cfg)
    captured, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                               points=None, idem_key="till-rev-0002", cfg=cfg)
    capture, _ = counter.capture(session, desks[0], captured.id, points=20, idem_key="till-rev-0003", cfg=cfg)
    voided, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                             points=10, idem_key="till-rev-0004", cfg=cfg)
    counter.void(session, desks[0], voided.id, cfg)
    return {"redemption": redemption.posting_id, "refund": refund.posting_id, "hold": captured.hold_posting_id,
            "capture": capture.posting_id, "release": voided.release_posting_id}


def test_counter_postings_are_corrected_at_the_counter_not_reversed(session, world):
    """Regression: a reversed redemption could still be refunded, crediting the points twice."""
    tree, person, account = world
    f.award(session, account.id, 100)
    postings = _counter_postings(session, tree, person)
    balance = accounts.balance(session, account.id)
    clerk = f.staff(session, "clerk", tree.town_a)
    for name, posting_id in postings.items():
        with pytest.raises(Conflict) as err:
            corrections.request_reversal(session, clerk, posting_id=posting_id, reason="误操作")
        assert err.value.code == "managed_source", name
        assert "refunds" in err.value.details["posting_id"][0] and "void" in err.value.details["posting_id"][0]
        with pytest.raises(Conflict) as err:  # the backstop, for callers that skip the request
            corrections.reverse(session, SYSTEM, posting_id, "误操作")
        assert err.value.code == "managed_source", name
    assert accounts.balance(session, account.id) == balance
    assert session.scalar(select(func.count()).select_from(ApprovalRequest)
                          .where(ApprovalRequest.posting_id.in_(postings.values()))) == 0


def test_a_counter_reversal_requested_before_the_fix_cannot_be_approved(session, world):
    tree, person, account = world
    f.award(session, account.id, 100)
    postings = _counter_postings(session, tree, person)
    clerk = f.staff(session, "clerk", tree.town_a)
    approver = f.staff(session, "approver", tree.town_a)
    old = ApprovalRequest(kind="reversal", posting_id=postings["redemption"], reason="误操作",
                          region_path=person.region_path, requested_by=clerk.id)
    session.add(old)
    session.flush()
    balance = accounts.balance(session, account.id)
    with pytest.raises(Conflict) as err:
        with session.begin_nested():
            corrections.decide(session, approver, old.id, approve=True, note=None, adjustment_shards=f.SHARDS)
    assert err.value.code == "managed_source" and accounts.balance(session, account.id) == balance
    rejected = corrections.decide(session, approver, old.id, approve=False, note="到柜台退款", adjustment_shards=f.SHARDS)
    assert rejected.status == "rejected"


MISSING = 9_000_000_000


def test_reversal_of_an_unknown_or_unseen_posting_names_posting_id(client, session, world):
    """Missing and out of scope answer alike (nothing about existence), and name the body field."""
    tree, _person, account = world
    posting_id = f.award(session, account.id, 3).posting_id
    stranger = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_b).id)
    bodies = []
    for target in (MISSING, posting_id):
        r = client.post("/api/v1/admin/reversals", headers=stranger, json={"posting_id": target, "reason": "误发积分"})
        assert r.status_code == 404 and set(r.json["error"]["details"]) == {"posting_id"}, r.json
        bodies.append(r.json)
    assert bodies[0] == bodies[1]


def test_adjustment_for_an_unknown_or_unseen_participant_names_participant_id(client, session, world):
    tree, person, _account = world
    stranger = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_b).id)
    bodies = []
    for target in (MISSING, person.id):
        r = client.post("/api/v1/admin/adjustments", headers=stranger,
                        json={"participant_id": target, "amount": 5, "reason": "补录"})
        assert r.status_code == 404 and set(r.json["error"]["details"]) == {"participant_id"}, r.json
        bodies.append(r.json)
    assert bodies[0] == bodies[1]


@pytest.mark.parametrize("blank", ["  ", "\u3000\u3000", " \u00a0 "])
def test_a_correction_needs_a_reason_in_words_not_blanks(client, session, world, blank):
    """Regression: a reason of spaces passed the length check, so a reversal or a large adjustment
    waited for an approver with no reason at all, and approving it was a 422 from the ledger (a
    small adjustment too, with `posting_index` in details). Now the request itself is the 422."""
    tree, person, account = world
    posting_id = f.award(session, account.id, 3).posting_id
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    pending = session.scalar(select(func.count()).select_from(ApprovalRequest))
    for path, body in (("/api/v1/admin/reversals", {"posting_id": posting_id}),
                       ("/api/v1/admin/adjustments", {"participant_id": person.id, "amount": 50}),
                       ("/api/v1/admin/adjustments", {"participant_id": person.id, "amount": 5})):
        r = client.post(path, headers=clerk, json={**body, "reason": blank})
        assert r.status_code == 422 and set(r.json["error"]["details"]) == {"reason"}, r.json
    assert session.scalar(select(func.count()).select_from(ApprovalRequest)) == pending
    assert accounts.balance(session, account.id) == 3


def test_the_longest_idempotency_key_allowed_is_kept_and_replays(client, session, world):
    """Regression: a key of 100 characters, the most the API takes, was stored behind the
    requester's id ("<id>:<key>") in a column of 100: a large adjustment or a reversal with it was
    a 500. Now it is accepted, a retry returns the same request and other content is a 422."""
    tree, person, account = world
    posting_id = f.award(session, account.id, 3).posting_id
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    key = "k" * 100
    for path, body, changed in (
            ("/api/v1/admin/adjustments", {"participant_id": person.id, "amount": 50, "reason": "补录积分"},
             {"amount": 60}),
            ("/api/v1/admin/reversals", {"posting_id": posting_id, "reason": "录入有误"}, {"reason": "另一个原因"})):
        first = client.post(path, headers=clerk, json={**body, "idempotency_key": key})
        assert first.status_code == 201, first.json
        again = client.post(path, headers=clerk, json={**body, "idempotency_key": key})
        assert again.status_code == 201 and again.json == first.json
        other = client.post(path, headers=clerk, json={**body, **changed, "idempotency_key": key})
        assert other.status_code == 422 and set(other.json["error"]["details"]) == {"idempotency_key"}, other.json
        key = "r" * 100  # the next path: a key of its own
    assert session.scalar(select(func.count()).select_from(ApprovalRequest).where(
        ApprovalRequest.account_id == account.id)) == 1


def test_a_key_that_made_an_adjustment_is_not_taken_for_a_reversal(client, session, world):
    """Regression: a small adjustment posted at once with a key, then a reversal request with the
    same key, made a second, different thing (a pending reversal) instead of the 422 that the same
    key with other content gets everywhere else."""
    tree, person, account = world
    posting_id = f.award(session, account.id, 3).posting_id
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    first = client.post("/api/v1/admin/adjustments", headers=clerk, json={
        "participant_id": person.id, "amount": 5, "reason": "补录积分", "idempotency_key": "same-key-01"})
    assert first.status_code == 201 and first.json["status"] == "posted"
    reused = client.post("/api/v1/admin/reversals", headers=clerk, json={
        "posting_id": posting_id, "reason": "录入有误", "idempotency_key": "same-key-01"})
    assert reused.status_code == 422 and set(reused.json["error"]["details"]) == {"idempotency_key"}, reused.json
    assert session.scalar(select(func.count()).select_from(ApprovalRequest).where(
        ApprovalRequest.posting_id == posting_id)) == 0


@pytest.mark.parametrize("blank", ["", "  ", "\u3000\u3000"])
def test_a_decisions_note_is_words_when_given(client, session, world, blank):
    """Regression: a note of blanks was recorded as the approver's note on the request and in the
    audit log (the README promises a 422 naming it, as for reasons); a decision without a note
    still passes."""
    tree, person, _account = world
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    approver = f.bearer(session, "staff", f.staff(session, "approver", tree.town_a).id)
    request_id = client.post("/api/v1/admin/adjustments", headers=clerk, json={
        "participant_id": person.id, "amount": 50, "reason": "补录积分"}).json["request"]["id"]
    url = f"/api/v1/admin/approvals/{request_id}/decision"
    refused = client.post(url, headers=approver, json={"approve": False, "note": blank})
    assert refused.status_code == 422 and set(refused.json["error"]["details"]) == {"note"}, refused.json
    assert session.get(ApprovalRequest, request_id).status == "pending"
    decided = client.post(url, headers=approver, json={"approve": False})
    assert decided.status_code == 200 and decided.json["decision_note"] is None
