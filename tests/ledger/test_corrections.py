"""Reversals and adjustments: corrections are new postings, with a second pair of eyes."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from infra.auth import SYSTEM
from infra.errors import Conflict, Forbidden, NotFound
from ledger.models import Posting
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
