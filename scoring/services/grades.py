"""Credit grades and honours. A grade comes from points *earned* over the trailing 12 months
(awards and adjustments, less their reversals), never from the balance left after spending.
A reversal counts when the posting it cancels took effect, so the pair nets to zero in every window."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from identity.models import Participant, Region
from identity.services import audit, get_participant_in_scope, get_region, sees_full_names
from infra.auth import Principal
from infra.clock import local_date, local_midnight
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed, on_unique_violation
from infra.exports import csv_bytes, xlsx_bytes
from infra.security import mask_name, mask_phone
from ledger.models import Account, Entry, Posting
from scoring.models import HONOURS, Nomination
from scoring.services import rules

EARNING_KINDS = ("award", "adjustment")
REVERSED = aliased(Posting, name="reversed_posting")  # the posting a reversal cancels


def _earnings(stmt: Select[Any], since: dt.datetime, until: dt.datetime) -> Select[Any]:
    """Restrict a query over Entry and Posting to earnings in [since, until): awards and adjustments
    at their effective time, and reversals of them at the *reversed* posting's effective time. So
    revoking an award from before the window leaves the window's points alone (it was never
    counted), and revoking one inside it takes exactly its points back out."""
    earned_at: ColumnElement[dt.datetime] = func.coalesce(REVERSED.effective_at, Entry.effective_at)
    return (stmt.outerjoin(REVERSED, REVERSED.id == Posting.reverses_id)
            .where(earned_at >= since, earned_at < until,
                   or_(Posting.kind.in_(EARNING_KINDS),
                       and_(Posting.kind == "reversal", REVERSED.kind.in_(EARNING_KINDS)))))


def points_earned(session: Session, participant_id: int, since: dt.datetime, until: dt.datetime) -> int:
    return int(session.scalar(_earnings(
        select(func.coalesce(func.sum(Entry.amount), 0))
        .join(Posting, Posting.id == Entry.posting_id).join(Account, Account.id == Entry.account_id)
        .where(Account.participant_id == participant_id), since, until)) or 0)


def points_earned_by(session: Session, participant_ids: list[int], since: dt.datetime,
                     until: dt.datetime) -> dict[int, int]:
    """`points_earned` of several participants in one query (those who earned nothing are absent)."""
    if not participant_ids:
        return {}
    return {pid: int(points) for pid, points in session.execute(_earnings(
        select(Account.participant_id, func.sum(Entry.amount))
        .join(Entry, Entry.account_id == Account.id).join(Posting, Posting.id == Entry.posting_id)
        .where(Account.participant_id.in_(participant_ids)), since, until).group_by(Account.participant_id))}


def grade_of(points: int, grades: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(current grade, next grade up) for a number of points; grades listed highest first."""
    current, above = None, None
    for grade in grades:
        if points >= grade["min_points"]:
            current = grade
            break
        above = grade
    return current, above


@dataclass(frozen=True)
class GradeView:
    participant_id: int
    points_12m: int
    grade: dict[str, Any] | None
    next_grade: dict[str, Any] | None
    points_to_next: int | None
    rule_version: int
    window_from: dt.date
    window_to: dt.date
    # The rule set's grade codes, highest first: how grades rank (a rule set names its own).
    ladder: tuple[str, ...] = ()


def window(today: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[since, until) of the 12 months that end with the county's `today`, in whole local days."""
    start = today.replace(year=today.year - 1) if not (today.month == 2 and today.day == 29) else \
        today.replace(year=today.year - 1, day=28)
    return local_midnight(start + dt.timedelta(days=1)), local_midnight(today + dt.timedelta(days=1))


def grade(session: Session, participant_id: int, *, today: dt.date | None = None) -> GradeView:
    """The grade on the county's `today` (default: now), from whole local days of the window."""
    today = today or local_date()
    since, until = window(today)
    rule_set = rules.in_force(session, today)
    points = points_earned(session, participant_id, since, until)
    current, above = grade_of(points, rule_set.grades)
    return GradeView(participant_id=participant_id, points_12m=points, grade=current, next_grade=above,
                     points_to_next=(above["min_points"] - points) if above else None,
                     rule_version=rule_set.version, window_from=since.date(), window_to=today,
                     ladder=tuple(g["code"] for g in rule_set.grades))


@dataclass(frozen=True)
class Candidate:
    rank: int
    participant: Participant
    points: int
    grade: str | None
    nominated: bool


def grade_day(year: int) -> dt.date:
    """The day a candidate list of `year` reads grades on: its last day, or today while it runs."""
    return min(dt.date(year, 12, 31), local_date())


def candidates(session: Session, actor: Principal, *, township_id: int, year: int, honour: str) -> list[Candidate]:
    """Participants of a township still on the programme, ranked by points earned in the county's
    calendar year, at or above the honour's thresholds; equal points share a rank (listed by id).
    Someone a clerk took off the programme (deactivated) is no candidate. The grade beside each is
    their credit grade (points earned in the 12 months before, by the rules then in force) as of
    `grade_day`: the year's last day, or today for the year under way. It is the grade the honour's
    `min_grade` is held against, and the one the participant sees as theirs on that day."""
    if honour not in HONOURS:
        raise ValidationFailed("Unknown honour.", details={"honour": [f"One of {', '.join(HONOURS)}."]})
    township = get_region(session, township_id, actor, field="township_id")
    if township.level != "township":
        raise ValidationFailed("Choose a township.", details={"township_id": ["Not a township."]})
    as_of = grade_day(year)
    try:
        rule_set = rules.in_force(session, as_of)
    except ValidationFailed as exc:  # it names the work date of a contribution: here the year is asked for
        raise ValidationFailed("No rules were in force on that date.", code=exc.code,
                               details={"year": [f"No published rule set covers any day of {year}."]}) from exc
    settings = (rule_set.honours or {}).get(honour, {})
    since, until = local_midnight(dt.date(year, 1, 1)), local_midnight(dt.date(year + 1, 1, 1))  # the county's year
    totals = [(person, int(points)) for person, points in session.execute(_earnings(
        select(Participant, func.sum(Entry.amount).label("points"))
        .join(Account, Account.participant_id == Participant.id).join(Entry, Entry.account_id == Account.id)
        .join(Posting, Posting.id == Entry.posting_id)
        .where(Participant.region_path.startswith(township.path), Participant.active.is_(True)), since, until)
        .group_by(Participant.id).having(func.sum(Entry.amount) >= settings.get("min_points", 0))
        .order_by(func.sum(Entry.amount).desc(), Participant.id))]
    # A year gone by: its 12 months are the grade's window, so the year's points are the grade's.
    graded = ({person.id: points for person, points in totals} if window(as_of) == (since, until)
              else points_earned_by(session, [person.id for person, _ in totals], *window(as_of)))
    nominated = set(session.scalars(select(Nomination.participant_id).where(
        Nomination.year == year, Nomination.honour == honour, Nomination.township_id == township.id)))
    order = [g["code"] for g in rule_set.grades]
    min_grade = settings.get("min_grade")
    out: list[Candidate] = []
    for person, points in totals:
        current, _ = grade_of(graded.get(person.id, 0), rule_set.grades)
        code = current["code"] if current else None
        if min_grade and (code is None or order.index(code) > order.index(min_grade)):
            continue
        # Equal points, equal rank (1, 1, 3): who enrolled first is no merit.
        rank = out[-1].rank if out and out[-1].points == points else len(out) + 1
        out.append(Candidate(rank=rank, participant=person, points=points, grade=code,
                             nominated=person.id in nominated))
    return out


def _already_nominated() -> Conflict:
    return Conflict("Already nominated.", code="already_nominated")


on_unique_violation("uq_nominations_year_honour_participant_id", _already_nominated)  # two at once


def nominate(session: Session, actor: Principal, *, year: int, honour: str, participant_id: int,
             note: str | None) -> Nomination:
    if not actor.has_role("verifier", "approver"):
        raise Forbidden("Only a verifier or approver records nominations.", code="role_required")
    person = get_participant_in_scope(session, actor, participant_id, field="participant_id")
    if actor.participant_id == person.id:
        raise Forbidden("You cannot nominate yourself.", code="self_dealing")
    if not person.active:
        raise Conflict("This participant has been taken off the programme and cannot be nominated.",
                       code="participant_inactive",
                       details={"participant_id": ["Taken off the programme (deactivated)."]})
    township_path = "/".join(person.region_path.split("/")[:3]) + "/"
    township = session.scalar(select(Region).where(Region.path == township_path))
    if township is None:
        raise NotFound("Township not found.")
    if not actor.in_scope(township.path):
        # The nomination is against the township's ranking, which only staff of the township (or
        # above) can read: village staff were told that a township_id they never sent was not found.
        raise Forbidden("Nominations are recorded by staff of the participant's township or the county.",
                        code="scope_required", details={"participant_id": [
                            "Your scope is narrower than this participant's township."]})
    ranked = {c.participant.id: c for c in candidates(session, actor, township_id=township.id, year=year,
                                                      honour=honour)}
    if person.id not in ranked:
        raise Conflict("This participant does not meet the honour's thresholds.", code="not_eligible")
    if session.scalar(select(Nomination.id).where(Nomination.year == year, Nomination.honour == honour,
                                                  Nomination.participant_id == person.id)):
        raise _already_nominated()
    nomination = Nomination(year=year, honour=honour, township_id=township.id, participant_id=person.id,
                            points=ranked[person.id].points, note=note, nominated_by=actor.id)
    session.add(nomination)
    session.flush()
    audit(session, actor, "honour.nominate", object_type="nomination", object_id=nomination.id,
          region_path=person.region_path, details={"year": year, "honour": honour, "participant_id": person.id})
    return nomination


EXPORT_HEADER = ["排名 rank", "姓名 name", "手机 phone", "网格 grid", "年度积分 points", "信用等级 grade", "已提名 nominated"]


def export(session: Session, actor: Principal, rows: list[Candidate], *, township_id: int, year: int, honour: str,
           fmt: str) -> list[list[Any]]:
    """The rows of a download, audited where the township's auditors see it. Names are full only
    for staff who work with people; an auditor's copy masks them as the screen does."""
    township = get_region(session, township_id, actor, field="township_id")
    audit(session, actor, "honour.export", object_type="township", object_id=township.id, region_path=township.path,
          details={"year": year, "honour": honour, "format": fmt})
    return export_rows(session, rows, full_names=sees_full_names(actor))


def audit_candidates(session: Session, actor: Principal, rows: list[Candidate], *, township_id: int, year: int,
                     honour: str) -> None:
    """The ranking read on screen, audited as a download is (`export`): one record per request."""
    township = get_region(session, township_id, actor, field="township_id")
    audit(session, actor, "honour.candidates.list", object_type="township", object_id=township.id,
          region_path=township.path, details={"year": year, "honour": honour, "results": len(rows)})


def export_rows(session: Session, rows: list[Candidate], *, full_names: bool = False) -> list[list[Any]]:
    """Phones always masked; names masked unless the reader needs them (`full_names`)."""
    grids = {r.id: r.name for r in session.scalars(select(Region).where(
        Region.id.in_({c.participant.region_id for c in rows})))}
    return [[c.rank, c.participant.name if full_names else mask_name(c.participant.name),
             mask_phone(c.participant.phone), grids.get(c.participant.region_id, ""),
             c.points, c.grade or "", "是 yes" if c.nominated else ""] for c in rows]


def to_csv(rows: list[list[Any]]) -> bytes:
    return csv_bytes(EXPORT_HEADER, rows)


def to_xlsx(rows: list[list[Any]], title: str) -> bytes:
    return xlsx_bytes(EXPORT_HEADER, rows, title, widths=(8, 12, 16, 20, 12, 12, 10))
