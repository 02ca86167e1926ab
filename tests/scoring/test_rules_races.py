"""Rule versions under concurrency, on PostgreSQL with real threads and committed data: two
publishes at once cannot both take effect on the same day (or out of order), and a draft being
published cannot be edited under the publisher's feet."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from identity.models import AuditEntry
from infra.clock import local_date
from infra.errors import Conflict, ValidationFailed
from scoring.models import Indicator, RuleSet
from scoring.services import rules
from tests import factories as f
from tests.concurrency import while_holding

pytestmark = pytest.mark.concurrency


@pytest.fixture
def county_admin(committed_factory: sessionmaker[Session]) -> Iterator[object]:
    """A county admin, committed; the versions these tests make are removed afterwards (published
    ones past the freezing triggers) with their audit records, so that later tests find version 1
    the only one in force and the version numbers, used again, without a history."""
    with committed_factory() as setup:
        admin = f.staff(setup, "admin", f.region_tree(setup).county)
        setup.commit()
    yield admin
    with committed_factory() as cleanup:
        cleanup.execute(text("SET LOCAL session_replication_role = replica"))
        made = select(RuleSet.id).where(RuleSet.version > 1).scalar_subquery()
        versions = [str(v) for v in cleanup.scalars(select(RuleSet.version).where(RuleSet.version > 1))]
        cleanup.execute(delete(AuditEntry).where(AuditEntry.object_type == "rule_set",
                                                 AuditEntry.object_id.in_(versions)))
        cleanup.execute(delete(Indicator).where(Indicator.rule_set_id.in_(made)))
        cleanup.execute(delete(RuleSet).where(RuleSet.version > 1))
        cleanup.commit()


def _drafts(factory: sessionmaker[Session], admin: object, *days: dt.date) -> list[int]:
    with factory() as s:
        versions = []
        for day in days:
            draft = rules.draft_from(s, admin, 1)
            rules.update_draft(s, admin, draft.version, {"effective_from": day})
            versions.append(draft.version)
        s.commit()
        return versions


def _published(factory: sessionmaker[Session]) -> list[tuple[int, dt.date]]:
    with factory() as s:
        return [tuple(r) for r in s.execute(select(RuleSet.version, RuleSet.effective_from)
                              .where(RuleSet.status == "published", RuleSet.version > 1))]


def test_two_drafts_published_at_once_cannot_both_take_effect_on_one_day(committed_factory, county_admin):
    day = local_date() + dt.timedelta(days=10)
    first, second = _drafts(committed_factory, county_admin, day, day)
    _mine, outcome = while_holding(committed_factory, lambda s: rules.publish(s, county_admin, first),
                                   lambda s: rules.publish(s, county_admin, second))
    assert isinstance(outcome, ValidationFailed) and "effective_from" in outcome.details, outcome
    assert _published(committed_factory) == [(first, day)]


def test_a_later_publish_cannot_slip_in_before_one_in_flight(committed_factory, county_admin):
    """Published versions take effect in the order they are published: a draft for an earlier day,
    published while a later one is being published, is refused once that one is in."""
    later, earlier = _drafts(committed_factory, county_admin, local_date() + dt.timedelta(days=20),
                             local_date() + dt.timedelta(days=5))
    _mine, outcome = while_holding(committed_factory, lambda s: rules.publish(s, county_admin, later),
                                   lambda s: rules.publish(s, county_admin, earlier))
    assert isinstance(outcome, ValidationFailed) and "effective_from" in outcome.details, outcome
    assert [v for v, _d in _published(committed_factory)] == [later]


def test_a_draft_edited_while_it_is_published_is_refused_as_published(committed_factory, county_admin):
    """Regression: the edit waited for the publish, then met the freezing trigger: a 500."""
    (version,) = _drafts(committed_factory, county_admin, local_date() + dt.timedelta(days=10))
    _mine, outcome = while_holding(committed_factory, lambda s: rules.publish(s, county_admin, version),
                                   lambda s: rules.update_draft(s, county_admin, version, {"notice_days": 0}))
    assert isinstance(outcome, Conflict) and outcome.code == "rules_published", outcome


def test_indicators_replaced_while_the_draft_is_published_are_refused(committed_factory, county_admin):
    """The indicators' rows are not the rule set's: replacing them did not even wait, and the
    version went out with indicators its publisher never validated."""
    (version,) = _drafts(committed_factory, county_admin, local_date() + dt.timedelta(days=10))
    with committed_factory() as s:
        shown = rules.get(s, version)
        edited = [{"class": i.class_, **{k: getattr(i, k) for k in rules.INDICATOR_FIELDS if k != "class_"},
                   **({"base_points": 9} if i.code == "PRO-1" else {})} for i in shown.indicators]
    _mine, outcome = while_holding(committed_factory, lambda s: rules.publish(s, county_admin, version),
                                   lambda s: rules.update_draft(s, county_admin, version, {"indicators": edited}))
    assert isinstance(outcome, Conflict) and outcome.code == "rules_published", outcome
    with committed_factory() as s:
        assert next(i for i in rules.get(s, version).indicators if i.code == "PRO-1").base_points == 4
