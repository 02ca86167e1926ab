"""Nobody scores, nominates or objects their way to their own points."""
from __future__ import annotations

import pytest

from identity.services import participant_principal
from infra.errors import Forbidden, ValidationFailed
from scoring.services import grades, notices, submissions, workflow
from tests import factories as f


@pytest.fixture
def world(session):
    tree = f.region_tree(session)
    me = f.participant(session, tree.grid_a, name="张秀梅")
    rival = f.participant(session, tree.grid_a, name="王桂英")
    return tree, me, rival


def test_staff_cannot_record_points_for_themselves(session, world):
    tree, me, _rival = world
    clerk = f.staff(session, "clerk", tree.town_a, participant_id=me.id)
    with pytest.raises(Forbidden) as err:
        submissions.submit(session, clerk, f.submission("PRO-1", [(me.id, 1)]))
    assert err.value.code == "self_dealing"


def test_participants_name_only_people_of_their_village_and_keep_their_grid(session, world):
    tree, me, _rival = world
    far = f.participant(session, tree.grid_b)
    with pytest.raises(ValidationFailed):
        submissions.submit(session, participant_principal(me), f.submission("PRO-1", [(far.id, 1), (me.id, 1)]))
    neighbour = f.participant(session, tree.grid_a)
    c = submissions.submit(session, participant_principal(me), f.submission("PRO-2", [(neighbour.id, 1), (me.id, 1)]))
    assert c.region_id == me.region_id


def test_staff_cannot_uphold_their_own_objection(session, world):
    tree, me, rival = world
    verifier = f.staff(session, "verifier", tree.town_a, participant_id=me.id)
    other = f.staff(session, "verifier", tree.town_a)
    c = f.contribution(session, f.staff(session, "clerk", tree.town_a), rival, "PRO-1")
    workflow.verify_many(session, other, [c.id])
    objection = notices.lodge(session, participant_principal(me), c.id, "她并没有组织这次活动")
    with pytest.raises(Forbidden):
        notices.resolve(session, verifier, objection.id, uphold=True, resolution="异议成立")
    with pytest.raises(Exception) as again:
        notices.lodge(session, participant_principal(me), c.id, "再提一次")
    assert getattr(again.value, "code", "") == "objection_open"
    with pytest.raises(Forbidden):
        notices.lodge(session, participant_principal(rival), c.id, "我反对我自己")


def test_staff_cannot_nominate_themselves(session, world):
    tree, me, _rival = world
    verifier = f.staff(session, "verifier", tree.county, participant_id=me.id)
    with pytest.raises(Forbidden):
        grades.nominate(session, verifier, year=2026, honour="loan_priority", participant_id=me.id, note=None)


def test_bulk_verify_refuses_repeated_ids(session, world):
    tree, me, _rival = world
    c = f.contribution(session, f.staff(session, "clerk", tree.town_a), me, "PRO-1")
    with pytest.raises(ValidationFailed):
        workflow.verify_many(session, f.staff(session, "verifier", tree.town_a), [c.id, c.id])


def test_an_admin_does_not_verify_or_revoke_work_recorded_by_a_clerk_they_created(session, world):
    """An admin holds every role and sets the first password of the accounts they make: work their
    own clerk records needs someone else's eyes, to verify it, reject it or revoke its award."""
    from admin import services as admin_services
    from identity.services import staff_principal
    from scoring.services import awards

    tree, me, _rival = world
    town_admin = f.staff(session, "admin", tree.town_a)
    clerk = staff_principal(admin_services.create_staff_user(
        session, town_admin, username=f.unique("clerk"), display_name="录入员", role="clerk",
        scope_region_id=tree.town_a.id, password="long-enough-password", participant_id=None))
    c = f.contribution(session, clerk, me, "MED-3", case_record=f.CASE_RECORD)
    for act in (lambda: workflow.verify_many(session, town_admin, [c.id]),
                lambda: workflow.reject(session, town_admin, c.id, "材料不全")):
        with pytest.raises(Forbidden) as err:
            act()
        assert err.value.code == "four_eyes"
    assert c.state == "submitted"
    workflow.verify_many(session, f.staff(session, "verifier", tree.town_a), [c.id])
    import datetime as dt

    awards.award_due(session, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30), shards=f.SHARDS)
    assert c.state == "awarded"
    with pytest.raises(Forbidden) as err:
        workflow.revoke(session, town_admin, c.id, "案卷造假")
    assert err.value.code == "four_eyes"
    workflow.revoke(session, f.staff(session, "approver", tree.county), c.id, "案卷造假")
    assert c.state == "revoked"


def test_a_township_admins_clerk_and_verifier_are_not_each_others_second_pair_of_eyes(session, world):
    """Regression: a township admin made a clerk and a verifier (before only the county admin could
    make verifiers); the clerk submitted work and the verifier verified it, one person at both
    keyboards. Accounts one county admin made are not refused: it is the root of trust."""
    tree, me, _rival = world
    town_admin = f.staff(session, "admin", tree.town_a)
    clerk = f.staff(session, "clerk", tree.town_a, created_by=town_admin.id)
    sibling = f.staff(session, "verifier", tree.town_a, created_by=town_admin.id)
    c = f.contribution(session, clerk, me, "MED-3", case_record=f.CASE_RECORD)
    for act in (lambda: workflow.verify_many(session, sibling, [c.id]),
                lambda: workflow.reject(session, sibling, c.id, "材料不全")):
        with pytest.raises(Forbidden) as err:
            act()
        assert err.value.code == "four_eyes"
    assert c.state == "submitted"
    county_admin = f.staff(session, "admin", tree.county)
    county_clerk = f.staff(session, "clerk", tree.town_a, created_by=county_admin.id)
    county_verifier = f.staff(session, "verifier", tree.town_a, created_by=county_admin.id)
    d = f.contribution(session, county_clerk, me, "MED-3", case_record=f.CASE_RECORD)
    workflow.verify_many(session, county_verifier, [c.id, d.id])
    assert (c.state, d.state) == ("in_notice", "in_notice")  # verified, on public notice
