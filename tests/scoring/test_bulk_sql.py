"""The statements behind the bulk paths: tallies added to in the locking statement, and the
references PostgreSQL checks once per statement (migrations 0006 and 0009)."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from identity.models import Participant, StaffUser
from scoring.models import AwardTally, Contribution, ContributionEvent, RuleSet
from scoring.services import bulk_sql, submissions, workflow
from tests import factories as f


def test_add_to_tallies_adds_creates_and_locks(any_session):
    session = any_session
    tree = f.region_tree(session)
    p, q = f.participant(session, tree.grid_a), f.participant(session, tree.grid_a)
    session.add(AwardTally(participant_id=p.id, indicator_code="PRO-3", period="2026-11", points=7))
    session.flush()
    got = bulk_sql.add_to_tallies(session, {(p.id, "PRO-3", "2026-11"): 3, (p.id, "PRO-3", "2026"): 4,
                                            (q.id, "PRO-1", "2026"): 0},
                                  lock_only={(q.id, "INF-1", "2026-11"), (p.id, "PRO-3", "2026-11")})
    assert got == {(p.id, "PRO-3", "2026-11"): 10, (p.id, "PRO-3", "2026"): 4, (q.id, "PRO-1", "2026"): 0,
                   (q.id, "INF-1", "2026-11"): 0}
    session.expire_all()
    stored = {(t.participant_id, t.indicator_code, t.period): t.points for t in session.scalars(
        select(AwardTally).where(AwardTally.participant_id.in_([p.id, q.id])))}
    assert stored == got
    assert bulk_sql.add_to_tallies(session, {}) == {}


def test_array_literals_quote_text():
    assert bulk_sql.int_array([1, None, 3]) == "{1,NULL,3}"
    assert bulk_sql.int_array([]) == "{}"
    assert bulk_sql.text_array(['a"b', "c\\d", None, "2026-11"]) == '{"a\\"b","c\\\\d",NULL,"2026-11"}'


@pytest.fixture
def verified(session):
    tree = f.region_tree(session)
    clerk, verifier = f.staff(session, "clerk", tree.town_a), f.staff(session, "verifier", tree.town_a)
    person = f.participant(session, tree.grid_a)
    c = submissions.submit(session, clerk, f.submission("PRO-1", [(person.id, 1)], description="宣讲"))
    workflow.verify_many(session, verifier, [c.id])
    return c


def test_a_contribution_naming_a_missing_posting_is_refused(session, verified):
    with pytest.raises(IntegrityError, match="names a posting that does not exist"):
        with session.begin_nested():
            session.execute(update(Contribution).where(Contribution.id == verified.id).values(posting_id=10**12))


def test_an_event_naming_a_missing_contribution_is_refused(session, verified):
    with pytest.raises(IntegrityError, match="names a contribution that does not exist"):
        with session.begin_nested():
            session.execute(insert(ContributionEvent).values(
                contribution_id=10**12, from_state="submitted", to_state="in_notice", actor_kind="staff", actor_id=1,
                actor_label="x", at=dt.datetime.now(dt.timezone.utc)))


def test_contributions_cannot_be_deleted(session, verified):
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            session.execute(delete(Contribution).where(Contribution.id == verified.id))


def test_a_contribution_inserted_naming_a_missing_posting_is_refused(session, verified):
    row = dict(session.execute(select(Contribution.__table__).where(Contribution.id == verified.id)).mappings().one())
    row.pop("id")
    row.update(posting_id=10**12, state="submitted", incident_key=None, verified_by=None, verified_at=None)
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.execute(insert(Contribution.__table__).values(**row))


@pytest.mark.parametrize("column, message", [("rule_set_id", "names a rule set that does not exist"),
                                             ("verified_by", "names a verifier that does not exist")])
def test_a_contribution_naming_a_missing_rule_set_or_verifier_is_refused(session, verified, column, message):
    with pytest.raises(IntegrityError, match=message):
        with session.begin_nested():
            session.execute(update(Contribution).where(Contribution.id == verified.id).values({column: 10**12}))


def test_a_tally_naming_a_missing_participant_is_refused(session):
    with pytest.raises(IntegrityError, match="names a participant that does not exist"):
        with session.begin_nested():
            bulk_sql.add_to_tallies(session, {(10**12, "PRO-1", "2026"): 4})


@pytest.mark.parametrize("model, column", [(StaffUser, Contribution.verified_by), (RuleSet, Contribution.rule_set_id),
                                           (Participant, AwardTally.participant_id)])
def test_a_row_still_named_cannot_be_deleted_or_renumbered(session, verified, model, column):
    named = session.scalar(select(column).where(column.isnot(None)).limit(1))
    for change in (delete(model).where(model.id == named), update(model).where(model.id == named).values(id=10**12)):
        # (a published rule set refuses first: it is frozen)
        with pytest.raises(DBAPIError, match="still referenced|is frozen"):
            with session.begin_nested():
                session.execute(change)
