"""The four-eyes workflow: submitted -> verified (public notice) -> awarded -> revoked."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from identity.services import participant_principal
from infra.clock import local_date
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ledger.models import Posting
from ledger.schemas import StatementLineOut
from ledger.services import accounts
from scoring.models import Contribution, ContributionMember
from scoring.services import awards, notices, rules, submissions, workflow
from tests import factories as f

LATER = dt.timedelta(days=30)


@pytest.fixture
def world(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="张秀梅")
    neighbour = f.participant(session, tree.grid_a, name="王桂英")
    clerk = f.staff(session, "clerk", tree.town_a)
    verifier = f.staff(session, "verifier", tree.town_a)
    return tree, person, neighbour, clerk, verifier


def _award_all(session):
    return awards.award_due(session, now=dt.datetime.now(dt.timezone.utc) + LATER, shards=f.SHARDS)


def test_verified_work_is_awarded_after_the_notice_with_its_explanation(session, world):
    _tree, person, _n, clerk, verifier = world
    c = f.contribution(session, clerk, person, "INF-1", warning_colour="orange")
    workflow.verify_many(session, verifier, [c.id])
    assert c.state == "in_notice" and c.proposed_points == 6
    assert awards.award_due(session, shards=f.SHARDS) == 0  # notice still running
    assert _award_all(session) == 1 and c.state == "awarded"
    account = f.account_of(session, person)
    assert accounts.balance(session, account.id) == 6
    (line,), _ = accounts.statement(session, account, limit=1)
    assert line.reason.startswith("矛盾隐患线索上报并经核实（INF-1）")
    assert "橙色预警系数 3" in line.explanation["zh"] and "orange warning" in line.explanation["en"]
    assert "explain" not in line.meta  # the words stay with the contribution, not copied into the posting
    assert StatementLineOut().dump(line)["explanation"] == line.explanation["zh"]
    assert [e.to_state for e in c.events] == ["submitted", "in_notice", "awarded"]


def test_the_award_job_is_idempotent(session, world):
    _tree, person, _n, clerk, verifier = world
    c = f.contribution(session, clerk, person, "PRO-1")
    workflow.verify_many(session, verifier, [c.id])
    assert _award_all(session) == 1
    assert _award_all(session) == 0
    assert len(session.scalars(select(Posting).where(Posting.source_id == str(c.id),
                                                     Posting.source_type == "contribution")).all()) == 1


def test_nobody_verifies_their_own_submission_or_work(session, world):
    tree, person, _n, clerk, _verifier = world
    verifier_who_submitted = f.staff(session, "verifier", tree.town_a)
    own = submissions.submit(session, verifier_who_submitted, f.submission("PRO-1", [(person.id, 1)]))
    with pytest.raises(Forbidden) as err:
        workflow.verify_many(session, verifier_who_submitted, [own.id])
    assert err.value.code == "four_eyes"
    member_verifier = f.staff(session, "verifier", tree.town_a, participant_id=person.id)
    theirs = f.contribution(session, clerk, person, "PRO-1")
    with pytest.raises(Forbidden):
        workflow.verify_many(session, member_verifier, [theirs.id])


def test_staff_outside_scope_cannot_see_or_verify(session, world):
    import dataclasses

    tree, person, _n, clerk, verifier = world
    outsider = f.staff(session, "verifier", tree.town_b)
    c = f.contribution(session, clerk, person, "PRO-1")
    from infra.errors import NotFound

    with pytest.raises(NotFound):
        workflow.verify_many(session, outsider, [c.id])
    workflow.verify_many(session, verifier, [c.id])
    scopeless = dataclasses.replace(f.staff(session, "clerk", tree.county), scope_path=None)
    assert c.id in [n.id for n in notices.notices_for(session, verifier).items]
    assert c.id not in [n.id for n in notices.notices_for(session, outsider).items]
    assert notices.notices_for(session, scopeless).items == []
    for stranger in (f.staff(session, "clerk", tree.town_b), scopeless):  # nor record work for our people
        with pytest.raises(ValidationFailed) as err:
            submissions.submit(session, stranger, f.submission("PRO-1", [(person.id, 1)]))
        assert "members" in err.value.details


def test_an_objection_blocks_the_award_until_resolved(session, world):
    tree, person, neighbour, clerk, verifier = world
    c = f.contribution(session, clerk, person, "MED-2")
    workflow.verify_many(session, verifier, [c.id])
    from identity.services import participant_principal

    objection = notices.lodge(session, participant_principal(neighbour), c.id, "该纠纷并未真正化解")
    assert _award_all(session) == 0 and c.state == "in_notice"
    approver = f.staff(session, "approver", tree.town_a)
    notices.resolve(session, approver, objection.id, uphold=False, resolution="经回访，纠纷已化解")
    assert _award_all(session) == 1 and c.state == "awarded"


def test_an_upheld_objection_rejects_and_frees_the_cap(session, world):
    tree, person, neighbour, clerk, verifier = world
    from identity.services import participant_principal

    c = f.contribution(session, clerk, person, "INF-1", warning_colour="red")
    workflow.verify_many(session, verifier, [c.id])
    objection = notices.lodge(session, participant_principal(neighbour), c.id, "重复上报")
    notices.resolve(session, f.staff(session, "approver", tree.town_a), objection.id, uphold=True, resolution="属实")
    assert c.state == "rejected" and _award_all(session) == 0
    again = f.contribution(session, clerk, person, "INF-1", warning_colour="red", conflict_item="C1-01")
    workflow.verify_many(session, verifier, [again.id])
    assert again.proposed_points == 10  # the rejected one's reservation was released


def test_an_objection_outlived_by_its_contribution_is_closed_without_a_second_decision(session, world):
    """Upheld after the contribution was rejected (another objection, a verifier): recorded,
    and nothing else changes (no second rejection, no second release of the cap room)."""
    tree, person, neighbour, clerk, verifier = world
    from identity.services import participant_principal
    from scoring.models import AwardTally, ContributionEvent

    other = f.participant(session, tree.grid_a)
    c0 = f.contribution(session, clerk, person, "INF-1", warning_colour="red", description="另一条线索")
    c = f.contribution(session, clerk, person, "INF-1", warning_colour="red")
    workflow.verify_many(session, verifier, [c0.id, c.id])
    first, second = (notices.lodge(session, participant_principal(p), c.id, "重复上报") for p in (neighbour, other))
    approver = f.staff(session, "approver", tree.town_a)
    notices.resolve(session, approver, first.id, uphold=True, resolution="属实")
    assert notices.resolve(session, approver, second.id, uphold=True, resolution="属实").status == "upheld"
    assert c.state == "rejected"
    assert [e.to_state for e in session.scalars(select(ContributionEvent).where(
        ContributionEvent.contribution_id == c.id, ContributionEvent.to_state == "rejected"))] == ["rejected"]
    assert session.scalar(select(AwardTally.points).where(
        AwardTally.participant_id == person.id, AwardTally.period == c.work_date.strftime("%Y-%m"))) == 10
    with pytest.raises(Conflict) as err:
        notices.lodge(session, participant_principal(neighbour), c.id, "再提一次")
    assert err.value.code == "notice_closed"


def test_an_objection_to_an_award_already_made_is_upheld_only_after_a_revocation(session, world):
    """Open against an award (lodged before the fix to `lodge`): upholding it alone would change
    nothing, so it is refused until an approver revokes the award."""
    tree, person, neighbour, clerk, verifier = world
    from scoring.models import Objection

    c = f.contribution(session, clerk, person, "MED-2")
    workflow.verify_many(session, verifier, [c.id])
    assert _award_all(session) == 1
    stale = Objection(contribution_id=c.id, lodged_by=neighbour.id, text="纠纷并未化解")
    session.add(stale)
    session.flush()
    approver = f.staff(session, "approver", tree.town_a)
    with pytest.raises(Conflict) as err:
        notices.resolve(session, approver, stale.id, uphold=True, resolution="属实")
    assert err.value.code == "already_awarded" and stale.status == "open" and c.state == "awarded"
    workflow.revoke(session, approver, c.id, "异议成立")
    assert notices.resolve(session, approver, stale.id, uphold=True, resolution="属实").status == "upheld"
    assert c.state == "revoked"


def test_outsiders_cannot_object(session, world):
    tree, person, _n, clerk, verifier = world
    from identity.services import participant_principal
    from infra.errors import NotFound

    stranger = f.participant(session, tree.grid_b)
    c = f.contribution(session, clerk, person, "PRO-1")
    workflow.verify_many(session, verifier, [c.id])
    with pytest.raises(NotFound):
        notices.lodge(session, participant_principal(stranger), c.id, "我不认识她")


def test_revoking_an_award_reverses_exactly_its_points(session, world):
    tree, person, _n, clerk, verifier = world
    c = f.contribution(session, clerk, person, "MED-1")
    workflow.verify_many(session, verifier, [c.id])
    _award_all(session)
    f.award(session, f.account_of(session, person).id, 3)
    workflow.revoke(session, f.staff(session, "approver", tree.town_a), c.id, "案卷造假")
    assert c.state == "revoked" and accounts.balance(session, f.account_of(session, person).id) == 3
    reversal = session.scalar(select(Posting).where(Posting.reverses_id == c.posting_id))
    assert sorted(e.amount for e in reversal.entries) == [-5, 5]


def test_mediation_needs_its_eight_step_case_record(session, world):
    _tree, person, _n, clerk, _verifier = world
    with pytest.raises(ValidationFailed) as err:
        f.contribution(session, clerk, person, "MED-1", case_record={"look": "看到了"})
    assert "case_record" in err.value.details and "listen" in err.value.details["case_record"][0]


def test_information_reports_need_a_screening_item_and_colour(session, world):
    _tree, person, _n, clerk, _verifier = world
    with pytest.raises(ValidationFailed) as err:
        f.contribution(session, clerk, person, "INF-1", conflict_item="C9-99")
    assert "conflict_item" in err.value.details
    with pytest.raises(ValidationFailed) as err:
        f.contribution(session, clerk, person, "INF-1", warning_colour=None)
    assert "warning_colour" in err.value.details


def test_same_incident_is_flagged_and_awarded_once_per_indicator(session, world):
    _tree, person, neighbour, clerk, verifier = world
    first = f.contribution(session, clerk, person, "INF-1", incident_ref="GRID-2026-0001")
    second = f.contribution(session, clerk, neighbour, "INF-1", incident_ref="GRID-2026-0001")
    assert second.duplicate_of == [first.id] and second.duplicate_suspect
    workflow.verify_many(session, verifier, [first.id])
    with pytest.raises(Conflict) as err:
        workflow.verify_many(session, verifier, [second.id])
    assert err.value.code == "duplicate_incident"
    follow_up = f.contribution(session, clerk, neighbour, "INF-2", incident_ref="GRID-2026-0001")
    workflow.verify_many(session, verifier, [follow_up.id])  # another indicator for the same incident is fine


@pytest.mark.parametrize("typed", ["GRID-2026-0001 ", " grid-2026-0001", "ＧＲＩＤ－２０２６－０００１"])
def test_one_incident_typed_another_way_is_still_one_incident(session, world, typed):
    """A trailing space, lower case or full-width characters (a Chinese input method) do not make
    a new incident: the key is normalised before it is stored and looked up."""
    _tree, person, neighbour, clerk, verifier = world
    first = f.contribution(session, clerk, person, "INF-3", incident_ref="GRID-2026-0001")
    second = submissions.submit(session, clerk, f.submission("INF-3", [(neighbour.id, 1)], incident_ref=typed))
    assert second.incident_key == first.incident_key == "GRID-2026-0001"
    assert second.duplicate_of == [first.id] and second.duplicate_suspect
    workflow.verify_many(session, verifier, [first.id])
    with pytest.raises(Conflict) as err:
        workflow.verify_many(session, verifier, [second.id])
    assert err.value.code == "duplicate_incident"


def test_a_blank_incident_number_is_no_incident_number(session, world):
    _tree, person, _n, clerk, _v = world
    assert f.contribution(session, clerk, person, "INF-3", incident_ref="   ").incident_key is None


def test_work_done_today_in_the_county_is_not_refused_as_future(session, world, county_clock):
    """01:30 on 11 March in Shanghai is 17:30 on 10 March in UTC: work done this morning is today's."""
    _tree, person, _n, _clerk, _v = world
    county_clock(dt.datetime(2026, 3, 10, 17, 30, tzinfo=dt.timezone.utc))
    today = dt.date(2026, 3, 11)
    mine = submissions.submit(session, participant_principal(person), f.submission("PRO-1", [(person.id, 1)],
                                                                                   work_date=today))
    assert mine.work_date == today
    with pytest.raises(ValidationFailed) as err:  # the county's tomorrow is still the future
        submissions.submit(session, participant_principal(person), f.submission(
            "PRO-1", [(person.id, 1)], work_date=today + dt.timedelta(days=1)))
    assert "work_date" in err.value.details


def test_the_factorys_default_work_date_is_the_countys_yesterday(session, world, county_clock):
    """The tests' default work is dated by the county's calendar, as the service checks it."""
    _tree, person, _n, clerk, _v = world
    county_clock(dt.datetime(2026, 3, 10, 17, 30, tzinfo=dt.timezone.utc))  # 01:30 on 11 March in Shanghai
    assert f.contribution(session, clerk, person, "PRO-1").work_date == dt.date(2026, 3, 10)


def test_joint_mediation_shares_fifteen_points(session, world):
    tree, person, neighbour, clerk, verifier = world
    third = f.participant(session, tree.grid_a)
    c = submissions.submit(session, clerk, f.submission("MED-3", [(person.id, 2), (neighbour.id, 1), (third.id, 1)]))
    workflow.verify_many(session, verifier, [c.id])
    # 15 x 2/4 = 7.5, 15 x 1/4 = 3.75 twice: floors 7+3+3, the two leftovers go to the .75s
    assert {m.participant_id: m.points for m in c.members} == {person.id: 7, neighbour.id: 4, third.id: 4}


def test_a_joint_award_pays_each_member_their_own_points(session, world):
    """The award job gathers a contribution's members in participant order with their accounts
    (migration 0014): each member gets their own points whatever the order they were named in."""
    tree, person, neighbour, clerk, verifier = world
    third = f.participant(session, tree.grid_a)
    named = sorted([(person, 2), (neighbour, 1), (third, 1)], key=lambda m: -m[0].id)
    c = submissions.submit(session, clerk, f.submission("MED-3", [(p.id, share) for p, share in named]))
    workflow.verify_many(session, verifier, [c.id])
    assert _award_all(session) == 1 and c.state == "awarded"
    paid = {p.id: accounts.balance(session, f.account_of(session, p).id) for p, _share in named}
    assert paid == {m.participant_id: m.points for m in c.members} == {person.id: 7, neighbour.id: 4, third.id: 4}


def test_publishing_new_rules_never_changes_a_past_award(session, world):
    tree, person, _n, clerk, verifier = world
    c = f.contribution(session, clerk, person, "PRO-1", work_date=local_date() - dt.timedelta(days=3))
    workflow.verify_many(session, verifier, [c.id])
    _award_all(session)
    admin = f.staff(session, "admin", tree.county)
    draft = rules.draft_from(session, admin, rules.in_force(session, local_date()).version)
    indicators = [{"class": i.class_, **{k: getattr(i, k) for k in rules.INDICATOR_FIELDS if k != "class_"}}
                  for i in draft.indicators]
    for ind in indicators:
        if ind["code"] == "PRO-1":
            ind["base_points"] = 8
    rules.update_draft(session, admin, draft.version, {"indicators": indicators,
                                                       "effective_from": local_date()})
    rules.publish(session, admin, draft.version)
    assert c.proposed_points == 4 and accounts.balance(session, f.account_of(session, person).id) == 4
    newer = f.contribution(session, clerk, person, "PRO-1", work_date=local_date())
    older = f.contribution(session, clerk, person, "PRO-1", work_date=local_date() - dt.timedelta(days=5))
    workflow.verify_many(session, verifier, [newer.id, older.id])
    assert (newer.proposed_points, older.proposed_points) == (8, 4)  # the rules in force on the day of the work


def test_zero_day_notice_awards_at_the_next_run(session, world):
    _tree, person, _n, clerk, verifier = world
    c = f.contribution(session, clerk, person, "PRO-2")
    rule_set = session.get(type(rules.in_force(session, c.work_date)), rules.in_force(session, c.work_date).id)
    now = dt.datetime.now(dt.timezone.utc)
    workflow.verify_many(session, verifier, [c.id], now=now - dt.timedelta(days=rule_set.notice_days))
    assert awards.award_due(session, now=now, shards=f.SHARDS) == 1
    assert session.get(Contribution, c.id).state == "awarded"


def test_a_contribution_award_is_not_reversed_behind_scorings_back(session, world):
    tree, person, _n, clerk, verifier = world
    from ledger.services import corrections

    c = f.contribution(session, clerk, person, "PRO-1")
    workflow.verify_many(session, verifier, [c.id])
    _award_all(session)
    with pytest.raises(Conflict) as err:
        corrections.request_reversal(session, clerk, posting_id=c.posting_id, reason="直接冲正")
    assert err.value.code == "managed_source"


def _publish_today(session, admin, edit):
    """A new version in force from the county's today, its indicators changed by `edit(code, ind)`."""
    draft = rules.draft_from(session, admin, rules.in_force(session, local_date()).version)
    indicators = [{"class": i.class_, **{k: getattr(i, k) for k in rules.INDICATOR_FIELDS if k != "class_"}}
                  for i in draft.indicators]
    for ind in indicators:
        edit(ind["code"], ind)
    rules.update_draft(session, admin, draft.version, {"indicators": indicators, "effective_from": local_date()})
    return rules.publish(session, admin, draft.version)


@pytest.mark.parametrize(("indicator", "change", "submitted", "field"), [
    # The new version weighs INF-4 by warning colour: scoring a visit reported without one failed (a 500).
    ("INF-4", {"multiplier": "warning_colour", "multipliers": {"blue": 1, "yellow": 2, "orange": 3, "red": 5},
               "requires": ["warning_colour"]}, {}, "warning_colour"),
    # PRO-3 no longer counts households: 40 households reported under the old rules scored 40 x 1.
    ("PRO-3", {"requires": []}, {"quantity": 40}, "quantity"),
    ("PRO-1", {"requires": ["case_record"]}, {}, "case_record"),
    ("PRO-2", {"requires": ["conflict_item"]}, {}, "conflict_item"),
])
def test_work_reported_today_is_verified_against_rules_published_today(client, session, world, indicator, change,
                                                                       submitted, field):
    """Work done today and reported this morning is scored by a version published this afternoon
    to take effect today: what that version requires of the work is checked at verification, a
    422 naming the field and the contribution, never a 500 or points the new rules do not give."""
    tree, person, _n, clerk, verifier = world
    c = f.contribution(session, clerk, person, indicator, work_date=local_date(), **submitted)
    other = f.contribution(session, clerk, person, "MED-2", work_date=local_date())
    _publish_today(session, f.staff(session, "admin", tree.county),
                   lambda code, ind: ind.update(change) if code == indicator else None)
    response = client.post("/api/v1/admin/contributions/verify", headers=f.bearer(session, "staff", verifier.id),
                           json={"contribution_ids": [other.id, c.id]})
    assert response.status_code == 422, response.json
    error = response.json["error"]
    assert error["code"] == "invalid_contribution"
    assert set(error["details"]) == {field, "contribution_ids"} and error["details"]["contribution_ids"] == [str(c.id)]
    assert {x.state for x in workflow.load(session, [c.id, other.id])} == {"submitted"}  # all or none
    assert workflow.reject(session, verifier, c.id, "按新规则补充材料后重新提交").state == "rejected"


def test_a_resident_whose_objection_was_dismissed_cannot_hold_the_award_back_again(client, session, world):
    """Regression: once staff dismissed a resident's objection, the same resident could lodge
    another (the same words again) at once, and each held the award back until staff resolved it
    again, to the end of the notice. One resident, one objection per award; others may still object."""
    tree, person, neighbour, clerk, verifier = world
    other = f.participant(session, tree.grid_a, name="李春兰")
    c = f.contribution(session, clerk, person, "MED-2")
    workflow.verify_many(session, verifier, [c.id])
    url = f"/api/v1/notices/{c.id}/objections"
    resident = f.bearer(session, "participant", neighbour.id)
    first = client.post(url, headers=resident, json={"text": "该纠纷并未真正化解"})
    assert first.status_code == 201
    approver = f.staff(session, "approver", tree.town_a)
    notices.resolve(session, approver, first.json["id"], uphold=False, resolution="经回访，纠纷已化解")
    again = client.post(url, headers=resident, json={"text": "该纠纷并未真正化解"})
    assert again.status_code == 409 and again.json["error"]["code"] == "objection_heard", again.json
    assert client.post(url, headers=f.bearer(session, "participant", other.id),
                       json={"text": "调解记录与事实不符"}).status_code == 201


def test_imported_work_is_checked_against_rules_published_while_the_import_ran(app, session, world, monkeypatch):
    """An import reads the rules in force once per work date for the whole file (one transaction).
    A version published to take effect today while it runs is not what its later rows were checked
    against, though they were stored after it was published: verification must check them again."""
    from pathlib import Path

    from scoring.services import imports

    tree, person, _n, clerk, verifier = world
    today = local_date().isoformat()
    body = ("indicator_code,work_date,participant_phones,description,quantity\n"
            f"PRO-2,{today},{person.phone},参加普法宣传,1\n"
            f"PRO-1,{today},{person.phone},矛盾纠纷化解,1\n").encode()
    storage = Path(app.config["SETTINGS"].instance_dir) / "imports"
    job = imports.create_job(session, clerk, "today.csv", body, storage)
    real_submit = imports.submit
    rows = []

    def submit_then_publish(*args, **kwargs):
        rows.append(real_submit(*args, **kwargs))
        if len(rows) == 1:  # another transaction publishes while the import is half-way through
            read = dict(session.info.get("rules_in_force", {}))
            _publish_today(session, f.staff(session, "admin", tree.county),
                           lambda code, ind: ind.update(requires=["case_record"]) if code == "PRO-1" else None)
            session.info["rules_in_force"] = read  # this import's transaction still reads what it read
        return rows[-1]

    monkeypatch.setattr(imports, "submit", submit_then_publish)
    assert imports.run_import(session, job, clerk, storage).status == "done"
    session.info.pop("rules_in_force", None)  # verification is a transaction of its own
    with pytest.raises(ValidationFailed) as err:  # it was: verified, scored by rules it did not meet
        with session.begin_nested():
            workflow.verify_many(session, verifier, [rows[1].id])
    assert err.value.code == "invalid_contribution" and "case_record" in err.value.details


def _cross_village_med3(client, session, tree, person):
    """A county clerk records one MED-3 settled by a village-A grid leader with a county expert
    living in village B (another township): one case, one contribution, in the leader's grid."""
    expert = f.participant(session, tree.grid_b, name="李律师")
    county_clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.county).id)
    made = client.post("/api/v1/admin/contributions", headers=county_clerk, json={
        "indicator_code": "MED-3", "work_date": (local_date() - dt.timedelta(days=1)).isoformat(),
        "description": "专家联合调解宅基地纠纷", "case_record": f.CASE_RECORD, "incident_ref": "WG-2026-0777",
        "members": [{"participant_id": person.id}, {"participant_id": expert.id}]})
    return made, expert


def test_county_staff_record_joint_work_across_villages_and_only_county_staff_decide_on_it(client, session, world):
    """Regression: recording a MED-3 with a village-A grid leader and a county expert of village B
    was a 422 on `members`; recorded per village, the second part was a 409 duplicate_incident
    (one incident ref) or, without a ref, the case scored twice. Now it is one contribution in
    the leader's grid, and staff of town A (to whom the expert is out of sight) get a 404 for it,
    as for work outside their scope: only staff over every member verify, reject or revoke it."""
    tree, person, _neighbour, _clerk, _verifier = world
    made, expert = _cross_village_med3(client, session, tree, person)
    assert made.status_code == 201, made.json
    c = session.get(Contribution, made.json["id"])
    assert c.region_path == tree.grid_a.path  # its notice is shown in the leader's village
    town_a = f.bearer(session, "staff", f.staff(session, "verifier", tree.town_a).id)
    for path, body in ((f"{c.id}/verify", {}), (f"{c.id}/reject", {"reason": "不属实"})):
        refused = client.post(f"/api/v1/admin/contributions/{path}", headers=town_a, json=body)
        assert refused.status_code == 404 and refused.json["error"]["code"] == "not_found"
    session.refresh(c)
    assert c.state == "submitted"
    county = f.bearer(session, "staff", f.staff(session, "verifier", tree.county).id)
    verified = client.post(f"/api/v1/admin/contributions/{c.id}/verify", headers=county, json={})
    assert verified.status_code == 200 and verified.json["state"] == "in_notice"
    assert verified.json["proposed_points"] == 15
    assert c.id in [n.id for n in notices.notices_for(session, participant_principal(person)).items]
    assert _award_all(session) == 1
    balances = {p.id: accounts.balance(session, f.account_of(session, p).id) for p in (person, expert)}
    assert sum(balances.values()) == 15 and all(b > 0 for b in balances.values()), balances
    town_a_approver = f.staff(session, "approver", tree.town_a)
    with pytest.raises(NotFound):  # nor revoke the expert's share
        workflow.revoke(session, town_a_approver, c.id, "重复")


def test_bulk_verify_of_cross_village_work_needs_scope_over_every_member(client, session, world):
    """The same in a batch: a town-A verifier's batch holding the joint work is a 404 naming it
    and verifies nothing (all or none); a county verifier's batch verifies both."""
    tree, person, _neighbour, clerk, _verifier = world
    own = f.contribution(session, clerk, person, "PRO-1")
    made, expert = _cross_village_med3(client, session, tree, person)
    joint = made.json["id"]
    town_a = f.bearer(session, "staff", f.staff(session, "verifier", tree.town_a).id)
    refused = client.post("/api/v1/admin/contributions/verify", headers=town_a,
                          json={"contribution_ids": [own.id, joint]})
    assert refused.status_code == 404, refused.json
    assert refused.json["error"]["details"]["contribution_ids"] == [str(joint)]
    session.expire_all()
    assert [session.get(Contribution, i).state for i in (own.id, joint)] == ["submitted", "submitted"]
    county = f.bearer(session, "staff", f.staff(session, "verifier", tree.county).id)
    verified = client.post("/api/v1/admin/contributions/verify", headers=county,
                           json={"contribution_ids": [own.id, joint]})
    assert verified.status_code == 200 and [v["state"] for v in verified.json] == ["in_notice", "in_notice"]
    shares = dict(session.execute(select(ContributionMember.participant_id, ContributionMember.points)
                                  .where(ContributionMember.contribution_id == joint)).all())
    assert set(shares) == {person.id, expert.id} and sum(shares.values()) == 15 and min(shares.values()) > 0


def test_the_queue_and_detail_tell_staff_whether_they_may_decide_on_cross_village_work(client, session, world):
    """Regression: the queue and the detail showed joint work naming a member of town B to town-A
    staff like any other, whose verify button then failed with a 404. Each now says `in_reach`:
    false for town A on the joint work, true for its own work and for a county verifier."""
    tree, person, _neighbour, clerk, _verifier = world
    own = f.contribution(session, clerk, person, "PRO-1")
    made, _expert = _cross_village_med3(client, session, tree, person)
    joint = made.json["id"]
    assert made.json["in_reach"] is True  # the county clerk who recorded it covers both

    def reach(role_scope) -> tuple[dict[int, bool], bool, bool]:
        headers = f.bearer(session, "staff", f.staff(session, "verifier", role_scope).id)
        page = client.get("/api/v1/admin/contributions", headers=headers, query_string={"state": "submitted"})
        assert page.status_code == 200, page.json
        listed = {item["id"]: item["in_reach"] for item in page.json["items"]}
        details = [client.get(f"/api/v1/admin/contributions/{cid}", headers=headers).json["in_reach"]
                   for cid in (own.id, joint)]
        return {cid: listed[cid] for cid in (own.id, joint)}, details[0], details[1]

    assert reach(tree.town_a) == ({own.id: True, joint: False}, True, False)
    assert reach(tree.county) == ({own.id: True, joint: True}, True, True)


def test_the_queue_finds_what_is_out_of_reach_in_one_query_whatever_the_page(client, session, world):
    """`in_reach` for a page costs one query, not one per item."""
    from sqlalchemy import event

    tree, person, _neighbour, clerk, _verifier = world
    for _ in range(2):
        _cross_village_med3(client, session, tree, person)
    town_a = f.staff(session, "verifier", tree.town_a)
    items = list(session.scalars(select(Contribution).where(town_a.scope_filter(Contribution.region_path))))
    assert len(items) >= 2
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(session.get_bind(), "before_cursor_execute", listen)
    try:
        reached = workflow.with_reach(session, town_a, items)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listen)
    assert len(statements) == 1
    assert [r.in_reach for r in reached] == [False] * len(items)
    assert reached[0].id == items[0].id


def test_an_objection_to_cross_village_work_is_resolved_by_staff_over_all_its_members(client, session, world):
    """Upholding an objection rejects the work: town-A staff may not do that to the expert's share."""
    tree, person, neighbour, _clerk, _verifier = world
    made, _expert = _cross_village_med3(client, session, tree, person)
    c = session.get(Contribution, made.json["id"])
    workflow.verify_many(session, f.staff(session, "verifier", tree.county), [c.id])
    objection = notices.lodge(session, participant_principal(neighbour), c.id, "调解未完成")
    with pytest.raises(NotFound):
        notices.resolve(session, f.staff(session, "verifier", tree.town_a), objection.id, uphold=True,
                        resolution="属实")
    resolved = notices.resolve(session, f.staff(session, "verifier", tree.county), objection.id, uphold=True,
                               resolution="属实")
    assert resolved.status == "upheld" and c.state == "rejected"


def test_a_verifier_is_not_told_the_number_of_work_outside_their_scope(session, world):
    """Regression: a town-B verifier refused for an incident held in town A was told "held by
    contribution 1", a contribution that is a 404 to them. Staff over the holder are told which."""
    tree, person, _n, clerk, _verifier = world
    far = f.participant(session, tree.grid_b)
    held = f.contribution(session, clerk, person, "INF-1", incident_ref="WG-2026-0001")
    workflow.verify_many(session, f.staff(session, "verifier", tree.town_a), [held.id])
    town_b_clerk = f.staff(session, "clerk", tree.town_b)
    again = f.contribution(session, town_b_clerk, far, "INF-1", incident_ref="WG-2026-0001")
    with pytest.raises(Conflict) as err:
        workflow.verify_many(session, f.staff(session, "verifier", tree.town_b), [again.id])
    assert err.value.details == {"incident_ref": ["Incident WG-2026-0001 is held by another contribution, "
                                                  "outside your area."]}
    with pytest.raises(Conflict) as err:
        workflow.verify_many(session, f.staff(session, "verifier", tree.county), [again.id])
    assert err.value.details == {"incident_ref": [f"Incident WG-2026-0001 is held by contribution {held.id}."]}


def test_objecting_to_work_never_on_notice_is_a_404_like_an_unknown_id(client, session, world):
    """Regression: an id of the resident's village that was never on notice answered 409
    `notice_closed`, an unknown id 404, so a resident could find out which work had been
    reported. Work that was on notice was public: its ended notice is still told as such."""
    _tree, person, neighbour, clerk, verifier = world
    resident = f.bearer(session, "participant", neighbour.id)
    waiting = f.contribution(session, clerk, person, "PRO-1")
    rejected_first = f.contribution(session, clerk, person, "PRO-2")
    workflow.reject(session, verifier, rejected_first.id, "材料不全")
    shown = f.contribution(session, clerk, person, "PRO-3", quantity=2)
    workflow.verify_many(session, verifier, [shown.id])
    workflow.reject(session, verifier, shown.id, "与事实不符")
    body = {"text": "活动当天她并未组织"}
    for cid in (waiting.id, rejected_first.id, 10**12):
        answer = client.post(f"/api/v1/notices/{cid}/objections", headers=resident, json=body)
        assert answer.status_code == 404 and answer.json["error"]["message"] == "未找到该公示。", (cid, answer.json)
    ended = client.post(f"/api/v1/notices/{shown.id}/objections", headers=resident, json=body)
    assert ended.status_code == 409 and ended.json["error"]["code"] == "notice_closed"
