"""Rules as versioned data: validated, published, frozen; the version in force on the day scores."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from infra.errors import Conflict, Forbidden, ValidationFailed
from scoring.services import rules
from tests import factories as f


def _indicators(rule_set):
    return [{"class": i.class_, **{k: getattr(i, k) for k in rules.INDICATOR_FIELDS if k != "class_"}}
            for i in rule_set.indicators]


def test_the_starting_set_has_twelve_indicators_in_three_classes(session):
    current = rules.in_force(session, dt.date.today())
    assert len(current.indicators) == 12
    assert {i.class_ for i in current.indicators} == {"information", "mediation", "promotion"}
    assert [g["code"] for g in current.grades] == ["AAA", "AA", "A"]
    assert rules.validate(current) == []


def test_validation_names_the_indicator_and_the_field(session):
    admin = f.staff(session, "admin", f.region_tree(session).county)
    draft = rules.draft_from(session, admin, 1)
    broken = _indicators(draft)
    broken[0]["multipliers"] = {"red": 5}
    broken[4]["base_points"] = -1
    broken[7]["unit"] = "fortnight"
    broken.append(dict(broken[1]))
    with pytest.raises(ValidationFailed) as err:
        rules.update_draft(session, admin, draft.version, {"indicators": broken})
    assert {"INF-1.multipliers", "MED-1.base_points", "MED-4.unit", "INF-2.code"} <= set(err.value.details)
    assert rules.validate(draft) == []  # nothing of the bad edit was kept


def test_a_published_version_never_changes(session):
    admin = f.staff(session, "admin", f.region_tree(session).county)
    with pytest.raises(Conflict):
        rules.update_draft(session, admin, 1, {"notice_days": 0})
    for sql in ("UPDATE rule_sets SET notice_days = 0 WHERE version = 1",
                "UPDATE indicators SET base_points = 99 WHERE rule_set_id = (SELECT id FROM rule_sets WHERE version = 1)",
                "DELETE FROM indicators WHERE rule_set_id = (SELECT id FROM rule_sets WHERE version = 1)"):
        with pytest.raises(DBAPIError, match="frozen"):
            with session.begin_nested():
                session.execute(text(sql))


def test_only_admins_edit_rules(session):
    clerk = f.staff(session, "clerk", f.region_tree(session).county)
    with pytest.raises(Forbidden):
        rules.draft_from(session, clerk, 1)


def test_new_version_must_start_after_the_current(session):
    admin = f.staff(session, "admin", f.region_tree(session).county)
    draft = rules.draft_from(session, admin, 1)
    rules.update_draft(session, admin, draft.version, {"effective_from": dt.date(2023, 1, 1)})
    with pytest.raises(ValidationFailed) as err:
        rules.publish(session, admin, draft.version)
    assert "effective_from" in err.value.details


def test_work_before_the_first_version_has_no_rules(session):
    with pytest.raises(ValidationFailed) as err:
        rules.in_force(session, dt.date(2020, 5, 1))
    assert "work_date" in err.value.details
