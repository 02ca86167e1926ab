"""Grades from points earned (not the balance), and honour candidates with exports."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from identity.models import AuditEntry
from infra.auth import SYSTEM
from infra.clock import local_midnight
from infra.errors import Conflict
from ledger.services import accounts, corrections
from ledger.services.posting import Leg, PostingRequest, post
from scoring.services import grades
from tests import factories as f


def _earn(session, account_id: int, points: int, days_ago: int = 10) -> int:
    return _earn_at(session, account_id, points, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days_ago))


# Honours rank a calendar year of the county's: the tests rank a year gone by, with awards placed on
# explicit dates inside it, so they pass on any day (the first days of January, 00:00-08:00 local).
HONOURS_YEAR = 2025


def _earn_in(session, account_id: int, points: int, year: int = HONOURS_YEAR) -> int:
    """An award at noon on 15 June of the county's `year`."""
    return _earn_at(session, account_id, points, local_midnight(dt.date(year, 6, 15)) + dt.timedelta(hours=12))


def _earn_at(session, account_id: int, points: int, at: dt.datetime) -> int:
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    return post(session, SYSTEM, PostingRequest(
        kind="award", reason="调解成功", effective_at=at,
        legs=[Leg(account_id, points), Leg(issuance.id, -points)])).posting_id


def test_grade_comes_from_points_earned_not_the_balance(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    _earn(session, account.id, 160)
    f.spend(session, account.id, 150, f.partner_account(session, tree.town_a).id)
    view = grades.grade(session, person.id)
    assert view.points_12m == 160 and view.grade["code"] == "AA"
    assert view.next_grade["code"] == "AAA" and view.points_to_next == 140


def test_old_points_and_reversed_awards_do_not_count(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    _earn(session, account.id, 200, days_ago=400)
    wrong = _earn(session, account.id, 60)
    _earn(session, account.id, 30)
    corrections.reverse(session, SYSTEM, wrong, "错误奖励")
    view = grades.grade(session, person.id)
    assert view.points_12m == 30 and view.grade is None and view.next_grade["code"] == "A"


def test_revoking_an_award_older_than_the_window_does_not_eat_this_years_earnings(session):
    """160 earned in the window (AA); an award of 200 from 400 days ago, never counted, is reversed
    today. The reversal counts when the award took effect, outside the window: still 160 and AA."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    old = _earn(session, account.id, 200, days_ago=400)
    _earn(session, account.id, 160, days_ago=10)
    assert grades.grade(session, person.id).points_12m == 160
    corrections.reverse(session, SYSTEM, old, "错误奖励")
    view = grades.grade(session, person.id)
    assert (view.points_12m, view.grade["code"], view.next_grade["code"], view.points_to_next) == (160, "AA", "AAA", 140)


def test_the_window_is_whole_days_of_the_countys_calendar(session, county_clock):
    """At 01:30 on 11 March 2026 in Shanghai (17:30 UTC on the 10th) the window is 12 March 2025
    to 11 March 2026, local days: 00:30 on 12 March 2025 counts, 23:30 on the 11th does not."""
    county_clock(dt.datetime(2026, 3, 10, 17, 30, tzinfo=dt.timezone.utc))
    person = f.participant(session, f.region_tree(session).grid_a)
    account = f.account_of(session, person)
    _earn_at(session, account.id, 50, dt.datetime(2025, 3, 11, 16, 30, tzinfo=dt.timezone.utc))
    _earn_at(session, account.id, 70, dt.datetime(2025, 3, 11, 15, 30, tzinfo=dt.timezone.utc))
    view = grades.grade(session, person.id)
    assert (view.window_from, view.window_to, view.points_12m) == (dt.date(2025, 3, 12), dt.date(2026, 3, 11), 50)


def test_revoking_last_years_award_leaves_this_years_ranking_alone(session):
    """Honours rank points earned in the county's calendar year; a reversal belongs to the year of
    the award it cancels."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="赵秀英")
    account = f.account_of(session, person)
    year = HONOURS_YEAR
    last_year = _earn_at(session, account.id, 300, local_midnight(dt.date(year - 1, 6, 1)))
    _earn_at(session, account.id, 200, local_midnight(dt.date(year, 1, 1)))  # the county's new year, 00:00
    corrections.reverse(session, SYSTEM, last_year, "错误奖励")
    verifier = f.staff(session, "verifier", tree.county)
    ranked = {y: [(c.participant.id, c.points) for c in grades.candidates(
        session, verifier, township_id=tree.town_a.id, year=y, honour="most_beautiful_family")] for y in (year - 1, year)}
    assert ranked == {year - 1: [], year: [(person.id, 200)]}


def test_honour_candidates_are_ranked_and_exported(session, client):
    tree = f.region_tree(session)
    people = [f.participant(session, tree.grid_a, name=n) for n in ("赵秀英", "钱玉兰", "孙丽娟")]
    for person, points in zip(people, (260, 320, 90)):
        _earn_in(session, f.account_of(session, person).id, points)
    verifier = f.staff(session, "verifier", tree.county)
    year = HONOURS_YEAR
    ranked = grades.candidates(session, verifier, township_id=tree.town_a.id, year=year, honour="most_beautiful_family")
    assert [(c.rank, c.participant.name, c.points) for c in ranked] == [(1, "钱玉兰", 320), (2, "赵秀英", 260)]
    nomination = grades.nominate(session, verifier, year=year, honour="most_beautiful_family",
                                 participant_id=people[1].id, note="调解成效突出")
    assert nomination.points == 320
    assert session.scalar(select(AuditEntry.action).where(  # ids of other kinds (committed by other tests) differ
        AuditEntry.object_type == "nomination", AuditEntry.object_id == str(nomination.id))) == "honour.nominate"
    with pytest.raises(Conflict):
        grades.nominate(session, verifier, year=year, honour="most_beautiful_family", participant_id=people[2].id,
                        note=None)
    headers = f.bearer(session, "staff", verifier.id)
    query = {"township_id": tree.town_a.id, "year": year, "honour": "most_beautiful_family"}
    csv_body = client.get("/api/v1/admin/honours/candidates", headers=headers,
                          query_string={**query, "format": "csv"}).data.decode("utf-8-sig")
    assert "钱玉兰" in csv_body and people[1].phone not in csv_body
    xlsx = client.get("/api/v1/admin/honours/candidates", headers=headers, query_string={**query, "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet["B2"].value == "钱玉兰" and sheet["G2"].value == "是 yes"


def test_auditors_see_honour_candidates_masked_on_screen_and_in_downloads(session, client):
    tree = f.region_tree(session)
    people = [f.participant(session, tree.grid_a, name=n) for n in ("赵秀英", "钱玉兰")]
    for person, points in zip(people, (260, 320)):
        _earn_in(session, f.account_of(session, person).id, points)
    auditor = f.staff(session, "auditor", tree.town_a)
    headers = f.bearer(session, "staff", auditor.id)
    query = {"township_id": tree.town_a.id, "year": HONOURS_YEAR, "honour": "most_beautiful_family"}
    listed = client.get("/api/v1/admin/honours/candidates", headers=headers, query_string=query)
    assert [(c["rank"], c["name"], c["points"]) for c in listed.json] == [(1, "钱*兰", 320), (2, "赵*英", 260)]
    csv_body = client.get("/api/v1/admin/honours/candidates", headers=headers,
                          query_string={**query, "format": "csv"}).data.decode("utf-8-sig")
    assert "钱*兰" in csv_body and "钱玉兰" not in csv_body and people[1].phone not in csv_body
    xlsx = client.get("/api/v1/admin/honours/candidates", headers=headers, query_string={**query, "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert [sheet["B2"].value, sheet["B3"].value] == ["钱*兰", "赵*英"]
    # Those who record nominations work with the people: they keep the names in full.
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    assert [c["name"] for c in client.get("/api/v1/admin/honours/candidates", headers=clerk,
                                          query_string=query).json] == ["钱玉兰", "赵秀英"]
    # The export is audited in the township, where its own auditors read it.
    log = client.get("/api/v1/admin/audit", headers=headers, query_string={"action": "honour.export"}).json["items"]
    assert [(e["actor_id"], e["details"]["format"]) for e in log] == [(auditor.id, "xlsx"), (auditor.id, "csv")]
    assert set(session.scalars(select(AuditEntry.region_path).where(AuditEntry.action == "honour.export",
                                                                    AuditEntry.actor_id == auditor.id))) \
        == {tree.town_a.path}


def test_a_year_before_any_rules_is_refused_naming_the_year(session, client):
    """Regression: asking for the candidates or nominating for 2021 (the rules start in 2024) was
    a 422 naming `work_date`, a field neither request has."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    headers = f.bearer(session, "staff", f.staff(session, "verifier", tree.county).id)
    listed = client.get("/api/v1/admin/honours/candidates", headers=headers, query_string={
        "township_id": tree.town_a.id, "year": 2021, "honour": "loan_priority"})
    nominated = client.post("/api/v1/admin/honours/nominations", headers=headers, json={
        "year": 2021, "honour": "loan_priority", "participant_id": person.id})
    for response in (listed, nominated):
        assert response.status_code == 422, response.json
        assert response.json["error"]["code"] == "no_rules_in_force"
        assert set(response.json["error"]["details"]) == {"year"}


def test_candidates_with_equal_points_share_their_rank(session):
    """Equal points, equal rank (1, 1, 3): the list went 1, 2 by who enrolled first, so the
    township's list put one of two equals ahead of the other for nothing she did."""
    tree = f.region_tree(session)
    people = [f.participant(session, tree.grid_a, name=n) for n in ("赵秀英", "钱玉兰", "孙丽娟")]
    for person, points in zip(people, (260, 260, 220)):
        _earn_in(session, f.account_of(session, person).id, points)
    ranked = grades.candidates(session, f.staff(session, "verifier", tree.county), township_id=tree.town_a.id,
                               year=HONOURS_YEAR, honour="most_beautiful_family")
    assert [(c.rank, c.points) for c in ranked] == [(1, 260), (1, 260), (3, 220)]


def _deactivate(session, tree, person) -> None:
    from admin.services import set_participant_active
    set_participant_active(session, f.staff(session, "clerk", tree.county), person.id, active=False, reason="离开本县")


@pytest.mark.parametrize("honour", ["most_beautiful_family", "loan_priority"])
def test_participants_taken_off_the_programme_are_not_ranked_and_ranks_close_up(session, client, honour):
    """Someone a clerk took off the programme is no candidate for an honour: the list, its ties
    and its downloads are those of the people still on it (an equal of hers no longer shares a
    rank with her, and the next one moves up)."""
    tree = f.region_tree(session)
    people = [f.participant(session, tree.grid_a, name=n) for n in ("赵秀英", "钱玉兰", "孙丽娟", "李淑珍")]
    for person, points in zip(people, (300, 300, 260, 260)):
        _earn_in(session, f.account_of(session, person).id, points)
    _deactivate(session, tree, people[1])
    verifier = f.staff(session, "verifier", tree.county)
    ranked = grades.candidates(session, verifier, township_id=tree.town_a.id, year=HONOURS_YEAR, honour=honour)
    assert [(c.rank, c.participant.name, c.points) for c in ranked] == [(1, "赵秀英", 300), (2, "孙丽娟", 260),
                                                                        (2, "李淑珍", 260)]
    headers = f.bearer(session, "staff", verifier.id)
    query = {"township_id": tree.town_a.id, "year": HONOURS_YEAR, "honour": honour}
    listed = client.get("/api/v1/admin/honours/candidates", headers=headers, query_string=query).json
    assert people[1].id not in [c["participant_id"] for c in listed] and len(listed) == 3
    csv_body = client.get("/api/v1/admin/honours/candidates", headers=headers,
                          query_string={**query, "format": "csv"}).data.decode("utf-8-sig")
    assert "钱玉兰" not in csv_body and "赵秀英" in csv_body
    sheet = load_workbook(io.BytesIO(client.get("/api/v1/admin/honours/candidates", headers=headers, query_string={
        **query, "format": "xlsx"}).data)).active
    assert [sheet[f"B{row}"].value for row in range(2, 6)] == ["赵秀英", "孙丽娟", "李淑珍", None]
    # A township's staff still see only their township; another township's list stays empty.
    town_b = f.bearer(session, "staff", f.staff(session, "verifier", tree.town_b).id)
    assert client.get("/api/v1/admin/honours/candidates", headers=town_b, query_string=query).status_code == 404
    assert client.get("/api/v1/admin/honours/candidates", headers=headers, query_string={
        **query, "township_id": tree.town_b.id}).json == []


def test_nominating_someone_taken_off_the_programme_is_refused_naming_the_participant(session, client):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="钱玉兰")
    _earn_in(session, f.account_of(session, person).id, 320)
    _deactivate(session, tree, person)
    headers = f.bearer(session, "staff", f.staff(session, "verifier", tree.county).id)
    body = {"year": HONOURS_YEAR, "honour": "loan_priority", "participant_id": person.id}
    for language, words in (("zh", "已退出"), ("en", "taken off the programme")):
        refused = client.post("/api/v1/admin/honours/nominations", headers={**headers, "Accept-Language": language},
                              json=body)
        assert refused.status_code == 409, refused.json
        assert refused.json["error"]["code"] == "participant_inactive"
        assert set(refused.json["error"]["details"]) == {"participant_id"}
        assert words in refused.json["error"]["message"]
    assert not session.scalar(select(AuditEntry.id).where(AuditEntry.action == "honour.nominate"))


def test_a_candidates_grade_is_their_credit_grade_as_of_the_years_end_or_today(session, county_clock):
    """The grade beside a candidate is the participant's credit grade (points earned in the 12
    months before): for this year as of today, for a year gone by as of its last day. This year's
    200 points with last summer's 120 make AAA today, as the participant's own grade says; it was
    shown as AA, from this year's points alone."""
    county_clock(dt.datetime(2026, 3, 10, 4, 0, tzinfo=dt.timezone.utc))  # noon, 10 March 2026, Shanghai
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="赵秀英")
    account = f.account_of(session, person).id
    _earn_at(session, account, 120, local_midnight(dt.date(2025, 7, 1)))
    _earn_at(session, account, 200, local_midnight(dt.date(2026, 2, 1)))
    verifier = f.staff(session, "verifier", tree.county)
    this_year = grades.candidates(session, verifier, township_id=tree.town_a.id, year=2026,
                                  honour="most_beautiful_family")
    assert [(c.points, c.grade) for c in this_year] == [(200, "AAA")]
    assert grades.grade(session, person.id).grade["code"] == "AAA"
    # A year gone by: the grade on 31 December 2025, from that year's 12 months (120: A, under the AA asked).
    assert grades.candidates(session, verifier, township_id=tree.town_a.id, year=2025, honour="loan_priority") == []
    _earn_at(session, account, 100, local_midnight(dt.date(2025, 12, 31)) + dt.timedelta(hours=23))
    last_year = grades.candidates(session, verifier, township_id=tree.town_a.id, year=2025, honour="loan_priority")
    assert [(c.points, c.grade) for c in last_year] == [(220, "AA")]
    assert grades.grade(session, person.id, today=dt.date(2025, 12, 31)).grade["code"] == "AA"


def test_this_years_candidates_need_the_grade_they_hold_today(session, county_clock):
    """The honour's minimum grade is read against the same grade the list shows: 200 points this
    year meet the points asked, but a correction of -120 last spring (of an award before the 12
    months) leaves 80 in them (grade A), under the AA asked, so she is not listed today."""
    county_clock(dt.datetime(2026, 3, 10, 4, 0, tzinfo=dt.timezone.utc))
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="赵秀英")
    account = f.account_of(session, person).id
    _earn_at(session, account, 150, local_midnight(dt.date(2025, 2, 1)))  # before the 12 months
    adjustment = accounts.system_account(session, accounts.ADJUSTMENT, f.SHARDS)
    post(session, SYSTEM, PostingRequest(kind="adjustment", reason="重复记分更正",
                                         effective_at=local_midnight(dt.date(2025, 5, 1)),
                                         legs=[Leg(account, -120), Leg(adjustment.id, 120)]))
    _earn_at(session, account, 50, local_midnight(dt.date(2026, 1, 5)))
    _earn_at(session, account, 150, local_midnight(dt.date(2026, 2, 5)))
    assert grades.grade(session, person.id).grade["code"] == "A"
    ranked = grades.candidates(session, f.staff(session, "verifier", tree.county), township_id=tree.town_a.id,
                               year=2026, honour="most_beautiful_family")
    assert ranked == []


def test_village_staff_asking_to_nominate_are_told_their_scope_not_a_missing_township(session, client):
    """Regression: a village verifier nominating a participant of their own village got a 404 naming
    `township_id`, a field the request does not have (the nomination is checked against the
    township's ranking, which village staff cannot read). Now it is a 403 scope_required naming
    participant_id, and township staff still nominate her."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="钱玉兰")
    _earn_in(session, f.account_of(session, person).id, 320)
    body = {"year": HONOURS_YEAR, "honour": "loan_priority", "participant_id": person.id}
    village = f.bearer(session, "staff", f.staff(session, "verifier", tree.village_a).id)
    refused = client.post("/api/v1/admin/honours/nominations", headers=village, json=body)
    assert refused.status_code == 403, refused.json
    assert refused.json["error"]["code"] == "scope_required"
    assert set(refused.json["error"]["details"]) == {"participant_id"}
    township = f.bearer(session, "staff", f.staff(session, "verifier", tree.town_a).id)
    assert client.post("/api/v1/admin/honours/nominations", headers=township, json=body).status_code == 201
