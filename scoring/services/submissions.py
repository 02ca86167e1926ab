"""Submitting contributions: by the participant, by a clerk on their behalf, or from an import.
Everything an indicator needs is checked against the rules in force on the day of the work, and
possible duplicates of the same incident are flagged for the verifier."""
from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity.models import Participant, Region
from identity.services import audit
from infra.auth import Principal
from infra.clock import local_date
from infra.errors import Forbidden, IdempotencyConflict, NotFound, ValidationFailed
from infra.idempotency import sender_key
from scoring.models import COLOURS, DUPLICATE_NOTE, Contribution, ContributionEvent, ContributionMember, Indicator
from scoring.services import rules

EIGHT_STEPS = ("look", "listen", "ask", "help", "report", "analyse", "explain", "record")
SUBMITTER_ROLES = ("clerk", "verifier", "approver")
DUPLICATE_WINDOW = dt.timedelta(days=3)
INCIDENT_REF_MAX = 100
# How many days back work may be dated when it is submitted (`CONTRIBUTION_MAX_AGE_DAYS`).
MAX_AGE_DAYS = 90


def village_path(region_path: str) -> str:
    """"/1/2/3/4/" (grid) -> "/1/2/3/" (its village)."""
    return region_path.rsplit("/", 2)[0] + "/"


def normalise_incident_ref(raw: str | None) -> str | None:
    """One incident, one key, however it was typed or pasted: the grid system's numbers (as
    "WG-2026-0001") are compared width-folded (NFKC: full-width "ＷＧ－" is "WG-"), without
    surrounding spaces and in upper case; nothing left means no reference."""
    if raw is None:
        return None
    return unicodedata.normalize("NFKC", raw).strip().upper() or None


@dataclass
class Submission:
    indicator_code: str
    work_date: dt.date
    description: str
    members: list[tuple[int, int]]  # (participant id, share)
    conflict_item: str | None = None
    warning_colour: str | None = None
    case_record: dict[str, str] = field(default_factory=dict)
    quantity: int = 1
    incident_ref: str | None = None

    def __post_init__(self) -> None:
        # Here, so the API, the import and any other caller store and look up the same key.
        self.incident_ref = normalise_incident_ref(self.incident_ref)


def _fail(field_name: str, message: str) -> ValidationFailed:
    return ValidationFailed("The contribution is incomplete or invalid.", code="invalid_contribution",
                            details={field_name: [message]})


def check(session: Session, actor: Principal, sub: Submission, today: dt.date,
          max_age_days: int = MAX_AGE_DAYS) -> tuple[list[Participant], Region]:
    """Validate a submission; returns the participants and the grid it belongs to: the
    submitting resident's, or for staff the first member's (its notice is shown in that village,
    also when the members come from several villages). Work dated
    more than `max_age_days` before `today` is refused: its month's caps were settled long ago
    (its tallies hold room nobody used then) and it would count towards this year's grade."""
    if sub.work_date > today:
        raise _fail("work_date", "The work date cannot be in the future.")
    earliest = today - dt.timedelta(days=max_age_days)
    if sub.work_date < earliest:
        raise _fail("work_date", f"Work is reported within {max_age_days} days: {earliest.isoformat()} or later.")
    if not sub.description.strip():
        raise _fail("description", "Describe the work.")
    if not sub.members:
        raise _fail("members", "Name at least one participant.")
    ids = [pid for pid, _share in sub.members]
    if len(set(ids)) != len(ids):
        raise _fail("members", "A participant is named twice.")
    if any(share < 1 for _pid, share in sub.members):
        raise _fail("members", "Shares are whole numbers of 1 or more.")
    people = {p.id: p for p in session.scalars(select(Participant).where(Participant.id.in_(ids)))}
    if actor.kind == "participant":
        if actor.id not in people:
            raise Forbidden("You can submit only work you took part in.", code="not_a_member")
        # Co-workers come from the submitter's own village; the work belongs to the submitter's grid.
        home = people[actor.id]
        village: str | None = village_path(home.region_path)
    else:
        if not actor.has_role(*SUBMITTER_ROLES):
            raise Forbidden("Your role does not submit contributions.", code="role_required")
        if actor.participant_id in people:
            raise Forbidden("You cannot record points for yourself.", code="self_dealing")
        home, village = None, None

    def in_reach(path: str) -> bool:
        """A resident names co-workers of their own village; staff, anyone inside their scope."""
        return path.startswith(village) if village is not None else actor.in_scope(path)

    # Staff may name people of several villages (a county clerk records a MED-3 settled by a
    # village's grid leader with a county expert living elsewhere), each within their scope: one
    # case, one contribution. Only staff over every member may verify or decide on it
    # (`workflow.covers_members`), so a township never scores another township's people.
    for pid in ids:
        person = people.get(pid)
        if person is None or not person.active or not in_reach(person.region_path):
            raise _fail("members", "A named participant was not found here.")

    rule_set = rules.in_force(session, sub.work_date)
    indicator, _rule = rules.indicator_rule(rule_set, sub.indicator_code)
    if sub.conflict_item is not None and sub.conflict_item not in rules.conflict_items():
        raise _fail("conflict_item", "Not an item of the screening list.")
    if sub.quantity < 1:
        raise _fail("quantity", "At least 1.")
    if sub.incident_ref is not None and len(sub.incident_ref) > INCIDENT_REF_MAX:
        raise _fail("incident_ref", f"At most {INCIDENT_REF_MAX} characters.")
    missing = unmet_requirement(indicator, conflict_item=sub.conflict_item, warning_colour=sub.warning_colour,
                                quantity=sub.quantity, missing_steps=missing_steps(sub.case_record))
    if missing is not None:
        raise _fail(*missing)
    first = home or people[ids[0]]
    grid = session.get(Region, first.region_id)
    assert grid is not None
    return [people[pid] for pid in ids], grid


def missing_steps(case_record: dict[str, Any]) -> list[str]:
    """The steps of the eight a case record leaves out or blank."""
    return [s for s in EIGHT_STEPS if not str(case_record.get(s, "")).strip()]


def unmet_requirement(indicator: Indicator, *, conflict_item: str | None, warning_colour: str | None, quantity: int,
                      missing_steps: list[str]) -> tuple[str, str] | None:
    """What the indicator requires of the work that it lacks, as (field, reason); None if nothing.
    Checked at submission and again at verification, against the version then in force on the
    day of the work (a version published to take effect today may require more than the one the
    work was reported under)."""
    needs = set(indicator.requires or [])
    if "conflict_item" in needs and conflict_item not in rules.conflict_items():
        return "conflict_item", "Choose an item of the screening list (8 categories, 26 items)."
    if ("warning_colour" in needs or indicator.multiplier == "warning_colour") and warning_colour not in COLOURS:
        return "warning_colour", "Choose red, orange, yellow or blue."
    if "case_record" in needs and missing_steps:
        return "case_record", ("A mediation needs its case record following the eight steps; missing: "
                               + ", ".join(missing_steps))
    if "quantity" not in needs and quantity != 1:
        return "quantity", f"{indicator.code} counts one {indicator.unit} per contribution."
    return None


def find_duplicates(session: Session, sub: Submission, grid: Region, exclude_id: int | None = None) -> list[int]:
    """Contributions that may describe the same incident: the same reference, or the same
    indicator and screening item in the same village within a few days."""
    village = village_path(grid.path)
    stmt = select(Contribution.id).where(Contribution.indicator_code == sub.indicator_code,
                                         Contribution.state.notin_(("rejected", "revoked")))
    if sub.incident_ref:
        stmt = stmt.where(Contribution.incident_key == sub.incident_ref)
    elif sub.conflict_item:
        stmt = stmt.where(Contribution.conflict_item == sub.conflict_item,
                          Contribution.region_path.startswith(village),
                          Contribution.work_date.between(sub.work_date - DUPLICATE_WINDOW,
                                                         sub.work_date + DUPLICATE_WINDOW))
    else:
        return []
    if exclude_id is not None:
        stmt = stmt.where(Contribution.id != exclude_id)
    return list(session.scalars(stmt.order_by(Contribution.id).limit(20)))


def record_event(session: Session, contribution: Contribution, actor: Principal, to_state: str,
                 note: str | None = None, from_state: str | None = None) -> None:
    session.add(ContributionEvent(contribution_id=contribution.id, from_state=from_state, to_state=to_state,
                                  actor_kind=actor.kind, actor_id=actor.id, actor_label=actor.label[:100], note=note))


def submit(session: Session, actor: Principal, sub: Submission, *, today: dt.date | None = None,
           import_id: int | None = None, submitted_at: dt.datetime | None = None,
           max_age_days: int = MAX_AGE_DAYS, idem_key: str | None = None) -> Contribution:
    """`submitted_at`: for a batch that read the rules once for many rows (an import), when it
    began: verification checks again the work of any version published after it (`_recheck`).
    `idem_key`: the request's key as stored (`submit_once`)."""
    today = today or local_date(dt.datetime.now(dt.timezone.utc))  # the county's day, not UTC's
    _people, grid = check(session, actor, sub, today, max_age_days)
    duplicates = find_duplicates(session, sub, grid)
    contribution = Contribution(
        indicator_code=sub.indicator_code, work_date=sub.work_date, region_id=grid.id, region_path=grid.path,
        description=sub.description.strip(), conflict_item=sub.conflict_item, warning_colour=sub.warning_colour,
        case_record=_case_record(sub), quantity=sub.quantity,
        incident_key=sub.incident_ref, duplicate_of=duplicates, duplicate_suspect=bool(duplicates),
        import_id=import_id, idem_key=idem_key,
        **({"submitted_at": submitted_at} if submitted_at is not None else {}),
        submitted_by_participant=actor.id if actor.kind == "participant" else None,
        submitted_by_staff=actor.id if actor.is_staff else None,
        members=[ContributionMember(participant_id=pid, share=share) for pid, share in sub.members],
    )
    session.add(contribution)
    session.flush()
    record_event(session, contribution, actor, "submitted",
                 note=f"{DUPLICATE_NOTE}{duplicates}" if duplicates else None)
    if actor.is_staff:
        audit(session, actor, "contribution.submit", object_type="contribution", object_id=contribution.id,
              region_path=grid.path, details={"indicator": sub.indicator_code, "import_id": import_id})
    return contribution


def submit_once(session: Session, actor: Principal, sub: Submission, *, idempotency_key: str | None,
                max_age_days: int = MAX_AGE_DAYS, today: dt.date | None = None) -> tuple[Contribution, bool]:
    """(the contribution, whether it was submitted before). A submission sent again with the same
    `idempotency_key` (a phone that lost the answer, a double click) gets the first contribution
    back, even if that one is still in flight: the unique index on the key makes the retry wait
    for it. The same key with other content is a 422 naming `idempotency_key`. The key is the
    submitter's: another person's choice of the same one is theirs."""
    if idempotency_key is None:
        return submit(session, actor, sub, max_age_days=max_age_days, today=today), False
    stored = sender_key(actor, idempotency_key)
    if (earlier := _submitted_before(session, stored, idempotency_key, sub)) is not None:
        return earlier, True
    try:
        with session.begin_nested():  # a retry that raced its first attempt: that one, not a twin
            contribution = submit(session, actor, sub, max_age_days=max_age_days, today=today, idem_key=stored)
    except IntegrityError:
        if (earlier := _submitted_before(session, stored, idempotency_key, sub)) is not None:
            return earlier, True
        raise
    return contribution, False


def _case_record(sub: Submission) -> dict[str, str]:
    """The case record as a contribution keeps it: the eight steps' texts only."""
    return {k: str(v) for k, v in sub.case_record.items() if k in EIGHT_STEPS}


def _submitted_before(session: Session, stored: str, key: str, sub: Submission) -> Contribution | None:
    """The contribution an earlier request with this key made, if it reported the same work."""
    earlier = session.scalar(select(Contribution).where(Contribution.idem_key == stored))
    if earlier is None:
        return None
    same = (earlier.indicator_code, earlier.work_date, earlier.description, earlier.conflict_item,
            earlier.warning_colour, earlier.case_record, earlier.quantity, earlier.incident_key,
            sorted((m.participant_id, m.share) for m in earlier.members)) == (
        sub.indicator_code, sub.work_date, sub.description.strip(), sub.conflict_item, sub.warning_colour,
        _case_record(sub), sub.quantity, sub.incident_ref, sorted(sub.members))
    if not same:
        raise IdempotencyConflict("This idempotency key was already used for a different request.", details={
            "idempotency_key": [f"Key {key!r} was used for contribution {earlier.id} with other content."]})
    return earlier


def get_visible(session: Session, actor: Principal, contribution_id: int) -> Contribution:
    """Members see their own contributions; staff those in their scope; anyone else gets 404."""
    contribution = session.get(Contribution, contribution_id)
    if contribution is None:
        raise NotFound("Contribution not found.")
    if actor.kind == "participant":
        if actor.id not in {m.participant_id for m in contribution.members}:
            raise NotFound("Contribution not found.")
    elif not actor.in_scope(contribution.region_path):
        raise NotFound("Contribution not found.")
    return contribution


def to_submission(data: dict[str, Any]) -> Submission:
    return Submission(
        indicator_code=data["indicator_code"], work_date=data["work_date"], description=data["description"],
        members=[(m["participant_id"], m.get("share", 1)) for m in data["members"]],
        conflict_item=data.get("conflict_item"), warning_colour=data.get("warning_colour"),
        case_record=data.get("case_record") or {}, quantity=data.get("quantity", 1),
        incident_ref=data.get("incident_ref"))
