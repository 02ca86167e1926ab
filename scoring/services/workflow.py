"""Four-eyes verification with public notice, rejection and revocation.

Verification scores a contribution by the rules in force on the day of the work and *reserves*
its points against the caps (tallies per participant, indicator, month and year, locked in a
fixed order), so caps hold whatever the order in which contributions are verified. A rejection or
revocation releases the reservation. The award itself is a scheduled job (`awards.py`)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from identity.services import audit
from infra.auth import Principal
from infra.db import dialect_insert, utcnow
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ledger.services import corrections
from scoring.models import HOLDING_STATES, AwardTally, Contribution, RuleSet
from scoring.services import rules
from scoring.services.engine import Facts, score
from scoring.services.submissions import record_event

VERIFIER_ROLES = ("verifier", "approver")

corrections.register_managed_source(
    "contribution", "Revoke the contribution (POST /api/v1/admin/contributions/{id}/revoke) instead.")


def _periods(contribution: Contribution) -> tuple[str, str]:
    return contribution.work_date.strftime("%Y-%m"), str(contribution.work_date.year)


def check_four_eyes(actor: Principal, contribution: Contribution) -> None:
    if contribution.submitted_by_staff == actor.id and actor.is_staff:
        raise Forbidden("You cannot verify a contribution you submitted.", code="four_eyes")
    members = {m.participant_id for m in contribution.members}
    if actor.participant_id is not None and (actor.participant_id in members
                                             or actor.participant_id == contribution.submitted_by_participant):
        raise Forbidden("You cannot verify a contribution you take part in.", code="four_eyes")


def _lock_tallies(session: Session, keys: set[tuple[int, str, str]]) -> dict[tuple[int, str, str], int]:
    ordered = sorted(keys)
    if not ordered:
        return {}
    session.execute(dialect_insert(session)(AwardTally.__table__).on_conflict_do_nothing(),
                    [{"participant_id": p, "indicator_code": i, "period": d, "points": 0} for p, i, d in ordered])
    rows = session.execute(
        select(AwardTally.participant_id, AwardTally.indicator_code, AwardTally.period, AwardTally.points)
        .where(tuple_(AwardTally.participant_id, AwardTally.indicator_code, AwardTally.period).in_(ordered))
        .order_by(AwardTally.participant_id, AwardTally.indicator_code, AwardTally.period)
        .with_for_update()).all()
    return {(r.participant_id, r.indicator_code, r.period): r.points for r in rows}


def _write_tallies(session: Session, tallies: dict[tuple[int, str, str], int], changed: set[tuple[int, str, str]]) -> None:
    if changed:
        table = AwardTally.__table__
        session.execute(update(table).where(table.c.participant_id == bindparam("k_p"),
                                            table.c.indicator_code == bindparam("k_i"),
                                            table.c.period == bindparam("k_d")).values(points=bindparam("v")),
                        [{"k_p": p, "k_i": i, "k_d": d, "v": tallies[(p, i, d)]} for p, i, d in sorted(changed)])


def _load_visible(session: Session, actor: Principal, ids: Sequence[int]) -> list[Contribution]:
    """One query for the lot, rows locked in id order so that two verifiers, or a verifier and
    the award job, never act on the same contribution at once. Missing or out of scope: 404."""
    if len(set(ids)) != len(ids):
        raise ValidationFailed("A contribution is listed twice.", details={"contribution_ids": ["Repeated ids."]})
    found = {c.id: c for c in session.scalars(
        select(Contribution).where(Contribution.id.in_(sorted(ids))).order_by(Contribution.id)
        .with_for_update(of=Contribution).execution_options(populate_existing=True)
        .options(selectinload(Contribution.members)))}
    for cid in ids:
        c = found.get(cid)
        if c is None or not actor.in_scope(c.region_path):
            raise NotFound("Contribution not found.", details={"contribution_ids": [str(cid)]})
    return [found[cid] for cid in ids]


def _refuse_duplicate_incidents(session: Session, items: list[Contribution]) -> None:
    seen: set[tuple[str, str]] = set()
    for c in items:
        if c.incident_key is None:
            continue
        key = (c.indicator_code, c.incident_key)
        holder = session.scalar(select(Contribution.id).where(
            Contribution.indicator_code == c.indicator_code, Contribution.incident_key == c.incident_key,
            Contribution.state.in_(HOLDING_STATES), Contribution.id != c.id))
        if holder is not None or key in seen:
            raise Conflict("This incident has already been verified for this indicator.", code="duplicate_incident",
                           details={"incident_ref": [f"Incident {c.incident_key} is held by contribution "
                                                     f"{holder or 'in this batch'}."]})
        seen.add(key)


def _score_and_reserve(session: Session, actor: Principal, items: list[Contribution], now: dt.datetime) -> None:
    rule_cache: dict[dt.date, RuleSet] = {}
    keys: set[tuple[int, str, str]] = set()
    for c in items:
        month, year = _periods(c)
        for m in c.members:
            keys.add((m.participant_id, c.indicator_code, month))
            keys.add((m.participant_id, c.indicator_code, year))
    tallies = _lock_tallies(session, keys)
    changed: set[tuple[int, str, str]] = set()
    for c in items:
        rule_set = rule_cache.get(c.work_date) or rule_cache.setdefault(c.work_date, rules.in_force(session, c.work_date))
        _indicator, rule = rules.indicator_rule(rule_set, c.indicator_code)
        month, year = _periods(c)
        members = [(m.participant_id, m.share) for m in c.members]
        result = score(rule, Facts(members=members, quantity=c.quantity, warning_colour=c.warning_colour),
                       {pid: tallies[(pid, c.indicator_code, month)] for pid, _ in members},
                       {pid: tallies[(pid, c.indicator_code, year)] for pid, _ in members})
        for m in c.members:
            m.points = result.points[m.participant_id]
            for period in (month, year):
                tallies[(m.participant_id, c.indicator_code, period)] += m.points
                changed.add((m.participant_id, c.indicator_code, period))
        c.rule_set_id, c.proposed_points, c.explanation = rule_set.id, result.total, result.explanation
        c.state, c.verified_by, c.verified_at = "in_notice", actor.id, now
        c.notice_until = now + dt.timedelta(days=rule_set.notice_days)
    _write_tallies(session, tallies, changed)
    session.flush()


def verify_many(session: Session, actor: Principal, contribution_ids: Sequence[int], *, note: str | None = None,
                now: dt.datetime | None = None) -> list[Contribution]:
    """Verify contributions (one or thousands) in one pass: check, score, reserve, open notice."""
    if not actor.has_role(*VERIFIER_ROLES):
        raise Forbidden("Only a verifier or approver verifies contributions.", code="role_required")
    now = now or utcnow()
    items = _load_visible(session, actor, contribution_ids)
    for c in items:
        if c.state != "submitted":
            raise Conflict("Only a submitted contribution can be verified.", code="wrong_state",
                           details={"state": [c.state], "contribution_id": c.id})
        check_four_eyes(actor, c)
    _refuse_duplicate_incidents(session, items)
    try:
        with session.begin_nested():  # a race on the incident index rolls back only this
            _score_and_reserve(session, actor, items, now)
    except IntegrityError as exc:
        raise Conflict("This incident has already been verified for this indicator.", code="duplicate_incident",
                       details={"incident_ref": ["One incident earns one award per indicator."]}) from exc
    for c in items:
        record_event(session, c, actor, "in_notice", note=note, from_state="submitted")
    if len(items) <= 50:
        for c in items:
            audit(session, actor, "contribution.verify", object_type="contribution", object_id=c.id,
                  region_path=c.region_path, details={"points": c.proposed_points})
    else:  # one record naming every id, rather than thousands of rows
        audit(session, actor, "contribution.verify_bulk", region_path=actor.scope_path,
              details={"count": len(items), "ids": [c.id for c in items]})
    return items


def _release(session: Session, contribution: Contribution) -> None:
    month, year = _periods(contribution)
    keys = {(m.participant_id, contribution.indicator_code, p) for m in contribution.members for p in (month, year)}
    tallies = _lock_tallies(session, keys)
    for m in contribution.members:
        for period in (month, year):
            tallies[(m.participant_id, contribution.indicator_code, period)] -= m.points or 0
    _write_tallies(session, tallies, keys)


def reject(session: Session, actor: Principal, contribution_id: int, reason: str) -> Contribution:
    if not actor.has_role(*VERIFIER_ROLES):
        raise Forbidden("Only a verifier or approver rejects contributions.", code="role_required")
    (c,) = _load_visible(session, actor, [contribution_id])
    if c.state not in ("submitted", "in_notice"):
        raise Conflict("This contribution can no longer be rejected.", code="wrong_state", details={"state": [c.state]})
    check_four_eyes(actor, c)
    return reject_unchecked(session, actor, c, reason)


def reject_unchecked(session: Session, actor: Principal, c: Contribution, reason: str) -> Contribution:
    previous = c.state
    if previous == "in_notice":
        _release(session, c)
    c.state, c.decision_reason = "rejected", reason
    session.flush()
    record_event(session, c, actor, "rejected", note=reason, from_state=previous)
    audit(session, actor, "contribution.reject", object_type="contribution", object_id=c.id,
          region_path=c.region_path, details={"reason": reason})
    return c


def revoke(session: Session, actor: Principal, contribution_id: int, reason: str) -> Contribution:
    """Reverse an award exactly (a reversal posting of the award) and free its cap room."""
    if not actor.has_role("approver"):
        raise Forbidden("Only an approver revokes awards.", code="role_required")
    (c,) = _load_visible(session, actor, [contribution_id])
    if c.state != "awarded":
        raise Conflict("Only an awarded contribution can be revoked.", code="wrong_state", details={"state": [c.state]})
    check_four_eyes(actor, c)
    if c.posting_id is not None:
        corrections.reverse(session, actor, c.posting_id, f"撤销积分奖励：{reason}",
                            idempotency_key=f"revoke:{c.id}", idem_scope="scoring")
    _release(session, c)
    c.state, c.decision_reason, c.revoked_at, c.revoked_by = "revoked", reason, utcnow(), actor.id
    session.flush()
    record_event(session, c, actor, "revoked", note=reason, from_state="awarded")
    audit(session, actor, "contribution.revoke", object_type="contribution", object_id=c.id,
          region_path=c.region_path, details={"reason": reason, "posting_id": c.posting_id})
    return c
