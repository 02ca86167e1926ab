"""Reporting work safely: a report sent again (a phone that lost the answer, a clerk's double
click) is one contribution, never two awards; and work is reported within a window, so that work
dated long ago cannot slip past monthly caps settled long ago into this year's grade."""
from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from sqlalchemy import func, select

from identity.models import AuditEntry
from identity.services import participant_principal
from infra.clock import local_date
from scoring.models import Contribution
from scoring.services import submissions
from tests import factories as f
from tests.concurrency import while_holding


def _people(session: Any) -> tuple[Any, Any, Any, Any]:
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="张秀梅")
    neighbour = f.participant(session, tree.grid_a, name="王桂英")
    clerk = f.staff(session, "clerk", tree.town_a)
    return tree, person, neighbour, clerk


def _report(**overrides: Any) -> dict[str, Any]:
    body = {"indicator_code": "PRO-1", "work_date": (local_date() - dt.timedelta(days=1)).isoformat(),
            "description": "组织反家暴法宣讲活动", "idempotency_key": "report-2026-0001"}
    body.update(overrides)
    return body


def _made_by(session: Any, **submitter: int) -> list[int]:
    column = {"participant": Contribution.submitted_by_participant, "staff": Contribution.submitted_by_staff}
    (kind, who), = submitter.items()
    return list(session.scalars(select(Contribution.id).where(column[kind] == who).order_by(Contribution.id)))


def test_a_participants_report_sent_again_is_the_same_contribution(client, session):
    """Regression: the same report posted twice made two contributions (201, 201, no duplicate
    flag), and so two awards. Now the retry answers 200 with the first; the key with other content
    is a 422 naming `idempotency_key`; the key is required of participants (their reports come
    from phones); and it is the sender's own: a neighbour choosing the same one reports her own."""
    _tree, person, neighbour, _clerk = _people(session)
    me = f.bearer(session, "participant", person.id)
    first = client.post("/api/v1/me/contributions", headers=me, json=_report())
    assert first.status_code == 201, first.json
    again = client.post("/api/v1/me/contributions", headers=me, json=_report())
    assert again.status_code == 200 and again.json == first.json
    assert _made_by(session, participant=person.id) == [first.json["id"]]

    changed = client.post("/api/v1/me/contributions", headers=me, json=_report(description="另一场宣讲活动"))
    assert changed.status_code == 422 and changed.json["error"]["code"] == "idempotency_key_reused"
    assert changed.json["error"]["details"] == {
        "idempotency_key": [f"幂等键 'report-2026-0001' 已用于内容不同的贡献 {first.json['id']} 号。"]}
    keyless = {k: v for k, v in _report(idempotency_key="unused").items() if k != "idempotency_key"}
    missing = client.post("/api/v1/me/contributions", headers=me, json=keyless)
    assert missing.status_code == 422 and set(missing.json["error"]["details"]) == {"idempotency_key"}
    assert _made_by(session, participant=person.id) == [first.json["id"]]

    theirs = client.post("/api/v1/me/contributions", headers=f.bearer(session, "participant", neighbour.id),
                         json=_report())
    assert theirs.status_code == 201 and theirs.json["id"] != first.json["id"]


def test_a_clerks_submission_sent_again_is_recorded_and_audited_once(client, session):
    """Staff may send a key (as with adjustments): a retry answers 200 with the first and is not a
    second staff action; the key with other members is a 422."""
    _tree, person, neighbour, clerk = _people(session)
    staff = f.bearer(session, "staff", clerk.id)
    body = _report(members=[{"participant_id": person.id}], idempotency_key="clerk-entry-0001")
    first = client.post("/api/v1/admin/contributions", headers=staff, json=body)
    assert first.status_code == 201, first.json
    again = client.post("/api/v1/admin/contributions", headers=staff, json=body)
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    other = client.post("/api/v1/admin/contributions", headers={**staff, "Accept-Language": "en"},
                        json={**body, "members": [{"participant_id": neighbour.id}]})
    assert other.status_code == 422 and other.json["error"]["details"]["idempotency_key"] == [
        f"Key 'clerk-entry-0001' was used for contribution {first.json['id']} with other content."]
    assert _made_by(session, staff=clerk.id) == [first.json["id"]]
    assert session.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "contribution.submit",
                                                              AuditEntry.actor_id == clerk.id)).all() \
        == [str(first.json["id"])]


@pytest.mark.concurrency
def test_a_retry_arriving_while_the_first_is_in_flight_makes_no_second(committed_factory):
    """The phone gave up waiting and sent the report again while the first was still being
    written: the retry waits for the first (the unique index on the key) and answers with it."""
    with committed_factory() as s:
        _tree, person, _neighbour, _clerk = _people(s)
        s.commit()
    actor = participant_principal(person)
    key = f"race-{f.unique('r')}"
    sub = submissions.Submission(indicator_code="PRO-1", work_date=local_date(), description="组织宣讲活动",
                                 members=[(person.id, 1)])
    (first, first_replayed), (retried, retry_replayed) = while_holding(
        committed_factory,
        lambda s: submissions.submit_once(s, actor, sub, idempotency_key=key),
        lambda s: submissions.submit_once(s, actor, sub, idempotency_key=key))
    assert (first_replayed, retry_replayed) == (False, True) and retried.id == first.id
    with committed_factory() as s:
        assert _made_by(s, participant=person.id) == [first.id]


# --- the submission window ------------------------------------------------------------------

def test_work_dated_before_the_window_is_refused_naming_work_date(client, session):
    """Regression: work dated 2024-01-15 was accepted in November 2026: its month's caps were long
    settled (their room unused) and its points counted towards this year's grade. Work is
    reported within CONTRIBUTION_MAX_AGE_DAYS (90) days, by participants and staff alike; a
    future date stays refused."""
    _tree, person, _neighbour, clerk = _people(session)
    me = f.bearer(session, "participant", person.id)
    staff = f.bearer(session, "staff", clerk.id)
    today = local_date()
    earliest = today - dt.timedelta(days=90)
    for n, day in enumerate((dt.date(2024, 1, 15), earliest - dt.timedelta(days=1))):
        old = client.post("/api/v1/me/contributions", headers=me,
                          json=_report(work_date=day.isoformat(), idempotency_key=f"old-work-{n:04d}"))
        assert old.status_code == 422 and old.json["error"]["code"] == "invalid_contribution"
        assert old.json["error"]["details"] == {"work_date": [f"工作须在 90 天内上报：工作日期不早于 {earliest}。"]}
        by_staff = client.post("/api/v1/admin/contributions", headers=staff, json=_report(
            work_date=day.isoformat(), members=[{"participant_id": person.id}], idempotency_key=f"old-entry-{n:04d}"))
        assert by_staff.status_code == 422 and set(by_staff.json["error"]["details"]) == {"work_date"}
    future = client.post("/api/v1/me/contributions", headers=me,
                         json=_report(work_date=(today + dt.timedelta(days=1)).isoformat(), idempotency_key="future-01"))
    assert future.status_code == 422 and set(future.json["error"]["details"]) == {"work_date"}
    assert _made_by(session, participant=person.id) == [] and _made_by(session, staff=clerk.id) == []
    last_day = client.post("/api/v1/me/contributions", headers=me,
                           json=_report(work_date=earliest.isoformat(), idempotency_key="in-window-01"))
    assert last_day.status_code == 201, last_day.json


def test_the_window_is_the_settings(client, session, app, monkeypatch):
    _tree, person, _neighbour, _clerk = _people(session)
    me = f.bearer(session, "participant", person.id)
    monkeypatch.setattr(app.config["SETTINGS"], "contribution_max_age_days", 7)
    week_ago = local_date() - dt.timedelta(days=7)
    refused = client.post("/api/v1/me/contributions", headers={**me, "Accept-Language": "en"}, json=_report(
        work_date=(week_ago - dt.timedelta(days=1)).isoformat(), idempotency_key="window-7-a"))
    assert refused.status_code == 422 and refused.json["error"]["details"] == {
        "work_date": [f"Work is reported within 7 days: {week_ago} or later."]}
    accepted = client.post("/api/v1/me/contributions", headers=me,
                           json=_report(work_date=week_ago.isoformat(), idempotency_key="window-7-b"))
    assert accepted.status_code == 201


def test_an_import_reports_each_row_outside_the_window_with_its_line(client, session):
    _tree, person, _neighbour, clerk = _people(session)
    staff = f.bearer(session, "staff", clerk.id)
    today = local_date()
    rows = [(today - dt.timedelta(days=3)), dt.date(2024, 1, 15), today - dt.timedelta(days=91),
            today + dt.timedelta(days=1)]
    body = ("indicator_code,work_date,participant_phones,description\n"
            + "".join(f"PRO-1,{day},{person.phone},组织宣讲活动 {n}\n" for n, day in enumerate(rows))).encode()
    job = client.post("/api/v1/admin/imports", headers=staff, data={"file": (io.BytesIO(body), "export.csv")},
                      content_type="multipart/form-data")
    assert job.status_code == 202
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=staff).json
    assert status["status"] == "failed" and status["imported_rows"] == 0
    assert [(e["line"], e["field"]) for e in status["errors"]] == [(3, "work_date"), (4, "work_date"),
                                                                  (5, "work_date")]
    assert "90" in status["errors"][0]["reason"]
    assert session.scalar(select(func.count()).select_from(Contribution).where(
        Contribution.import_id == job.json["id"])) == 0
