"""Four-eyes verification with public notice, rejection and revocation.

Verification scores a contribution by the rules in force on the day of the work and *reserves*
its points against the caps (tallies per participant, indicator, month and year, locked in a
fixed order), so caps hold whatever the order in which contributions are verified. A rejection or
revocation releases the reservation. The award itself is a scheduled job (`awards.py`).

Verification is set-based (one id or thousands take the same path): rows are read with Core
selects, scored in Python and written with one statement per table (`bulk_sql`), because
flushing thousands of ORM objects cost far more than the work itself."""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from identity.models import Participant
from identity.services import audit, one_hand
from infra.auth import Principal
from infra.db import utcnow
from infra.driver import driver_rows, execute
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ledger.services import corrections
from ledger.services.posting import MAX_REASON
from scoring.models import HOLDING_STATES, Contribution, ContributionEvent, ContributionMember, Indicator
from scoring.services import bulk_sql, rules
from scoring.services.engine import Facts, IndicatorRule, Score, score
from scoring.services.submissions import missing_steps, record_event, unmet_requirement, village_path

VERIFIER_ROLES = ("verifier", "approver")
AUDIT_EACH_UP_TO = 50  # larger batches get one audit record per village, naming its ids

corrections.register_managed_source(
    "contribution", "Revoke the contribution (POST /api/v1/admin/contributions/{id}/revoke) instead.")


@dataclass(frozen=True)
class Verified:
    """What verification decided for one contribution. The ORM object is not loaded (`load` does
    that for callers who need it), so a batch of thousands stays cheap."""

    id: int
    proposed_points: int
    points: dict[int, int]  # participant id -> points
    verified_at: dt.datetime
    notice_until: dt.datetime


class _InForce(NamedTuple):
    """What the bulk path needs of the rule set in force: plain values, not ORM attributes."""

    id: int
    notice_days: int


def _periods(work_date: dt.date) -> tuple[str, str]:
    return work_date.strftime("%Y-%m"), str(work_date.year)


def _four_eyes(actor: Principal, hand: frozenset[int], submitted_by_staff: int | None,
               submitted_by_participant: int | None, members: Iterable[int]) -> None:
    """`hand`: the staff accounts one person may hold with the actor's (`one_hand`)."""
    if submitted_by_staff == actor.id and actor.is_staff:
        raise Forbidden("You cannot verify a contribution you submitted.", code="four_eyes")
    if submitted_by_staff is not None and submitted_by_staff in hand:
        raise Forbidden("You cannot decide on a contribution submitted by a staff account you created, by the "
                        "one that created yours, or by one the same township or village admin created.",
                        code="four_eyes")
    if actor.participant_id is not None and (actor.participant_id in set(members)
                                             or actor.participant_id == submitted_by_participant):
        raise Forbidden("You cannot verify a contribution you take part in.", code="four_eyes")


def check_four_eyes(session: Session, actor: Principal, contribution: Contribution) -> None:
    hand = one_hand(session, actor) if contribution.submitted_by_staff is not None else frozenset()
    _four_eyes(actor, hand, contribution.submitted_by_staff, contribution.submitted_by_participant,
               (m.participant_id for m in contribution.members))


def lock(session: Session, contribution_id: int) -> Contribution | None:
    """The ORM object and its members as committed now, row locked until the transaction ends.
    Single-row changes (reject, revoke, an objection lodged or resolved) check the state only
    after this, as batches do in SQL (verify, the award claim): a state read without the lock may
    be gone by the time it is acted on (two upholds would release the cap room twice)."""
    return session.scalar(select(Contribution).where(Contribution.id == contribution_id)
                          .with_for_update(of=Contribution).execution_options(populate_existing=True)
                          .options(selectinload(Contribution.members)))


def covers_members(session: Session, actor: Principal, contribution: Contribution) -> bool:
    """Whether the actor's scope covers the contribution's grid and every member's. Joint work
    recorded by county staff may name people of several townships while it sits in the first
    member's grid: staff of that township alone must not verify, reject or revoke the share of
    people their scope does not reach. Bulk verification checks the same in `_load_rows`."""
    if not actor.in_scope(contribution.region_path):
        return False
    pids = [m.participant_id for m in contribution.members]
    paths = session.scalars(select(Participant.region_path).where(Participant.id.in_(pids))).all() if pids else []
    return all(actor.in_scope(path) for path in paths)


@dataclass(frozen=True)
class Reached:
    """A contribution as a staff list or detail shows it, with `in_reach`: whether the reader's
    scope covers every member, so the console offers a decision only where the API would take it
    (others get 404 from verify, reject and revoke: `covers_members`)."""

    contribution: Contribution
    in_reach: bool

    def __getattr__(self, name: str) -> object:
        return getattr(self.contribution, name)


def with_reach(session: Session, actor: Principal, contributions: Sequence[Contribution]) -> list[Reached]:
    """`covers_members` for a page at once: one query for the members living outside the actor's
    scope, whatever the page's size."""
    if not contributions:
        return []
    cm = ContributionMember
    beyond = set(session.scalars(
        select(cm.contribution_id).distinct().join(Participant, Participant.id == cm.participant_id)
        .where(bulk_sql.any_of(cm.contribution_id, [c.id for c in contributions], session),
               ~actor.scope_filter(Participant.region_path))))
    return [Reached(c, actor.in_scope(c.region_path) and c.id not in beyond) for c in contributions]


def _load_one(session: Session, actor: Principal, contribution_id: int) -> Contribution:
    """The ORM object, row locked (single-item paths: reject, revoke). Out of scope (its grid or
    any member's): 404."""
    c = lock(session, contribution_id)
    if c is None or not covers_members(session, actor, c):
        raise NotFound("Contribution not found.", details={"contribution_ids": [str(contribution_id)]})
    return c


def load(session: Session, contribution_ids: Sequence[int]) -> list[Contribution]:
    """ORM objects with their members, in the order given (for responses after a bulk change)."""
    found = {c.id: c for c in session.scalars(
        select(Contribution).where(bulk_sql.any_of(Contribution.id, contribution_ids, session))
        .execution_options(populate_existing=True).options(selectinload(Contribution.members)))}
    return [found[cid] for cid in contribution_ids]


_VERIFY_COLUMNS = (Contribution.id, Contribution.state, Contribution.region_path, Contribution.indicator_code,
                   Contribution.work_date, Contribution.quantity, Contribution.warning_colour,
                   Contribution.incident_key, Contribution.submitted_by_staff, Contribution.submitted_by_participant,
                   Contribution.conflict_item, Contribution.submitted_at)


# PostgreSQL: the rows, locked in id order, and each one's members (by participant) in one round trip,
# with whether the actor's scope covers every member's home (`covers`; scope path as a literal prefix).
_LOAD_PG = """
WITH c AS (
    SELECT id, state, region_path, indicator_code, work_date, quantity, warning_colour, incident_key,
           submitted_by_staff, submitted_by_participant, conflict_item, submitted_at
    FROM contributions WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id FOR UPDATE),
m AS (
    SELECT cm.contribution_id, array_agg(cm.participant_id ORDER BY cm.participant_id) AS pids,
           array_agg(cm.share ORDER BY cm.participant_id) AS shares,
           bool_and(coalesce(starts_with(p.region_path, %(scope)s), false)) AS covers
    FROM contribution_members cm JOIN participants p ON p.id = cm.participant_id
    WHERE cm.contribution_id = ANY(%(ids)s::bigint[]) GROUP BY cm.contribution_id)
SELECT c.*, m.pids, m.shares, coalesce(m.covers, true) AS covers
FROM c LEFT JOIN m ON m.contribution_id = c.id ORDER BY c.id
"""


def _load_rows(session: Session, actor: Principal, ids: Sequence[int]) -> tuple[list[Any], dict[int, list[tuple[int, int]]]]:
    """One query for the lot, rows locked in id order so that two verifiers, or a verifier and
    the award job, never act on the same contribution at once. Missing or out of scope: 404;
    out of scope is also a member living outside the actor's scope (joint work across townships,
    recorded by county staff, is verified by staff over all its members: `covers_members`).
    Returns the rows in the order given and each one's (participant, share) by participant."""
    if len(set(ids)) != len(ids):
        raise ValidationFailed("A contribution is listed twice.", details={"contribution_ids": ["Repeated ids."]})
    members: dict[int, list[tuple[int, int]]] = defaultdict(list)
    beyond: set[int] = set()  # contributions with a member outside the actor's scope
    if bulk_sql.is_postgres(session):
        found = {}
        # No scope path matches nothing (`in_scope`): the contribution's own check refuses it anyway.
        for r in driver_rows(session, _LOAD_PG, {"ids": bulk_sql.int_array(ids), "scope": actor.scope_path or ""}):
            found[r.id] = r
            if r.pids:
                members[r.id] = list(zip(r.pids, r.shares))
            if not r.covers:
                beyond.add(r.id)
    else:
        found = {r.id: r for r in session.execute(
            select(*_VERIFY_COLUMNS).where(bulk_sql.any_of(Contribution.id, ids, session)).order_by(Contribution.id)
            .with_for_update(of=Contribution))}
        cm = ContributionMember
        for cid, pid, share, home in session.execute(
                select(cm.contribution_id, cm.participant_id, cm.share, Participant.region_path)
                .join(Participant, Participant.id == cm.participant_id)
                .where(bulk_sql.any_of(cm.contribution_id, ids, session))
                .order_by(cm.contribution_id, cm.participant_id)):
            members[cid].append((pid, share))
            if not actor.in_scope(home):
                beyond.add(cid)
    for cid in ids:
        r = found.get(cid)
        if r is None or not actor.in_scope(r.region_path) or cid in beyond:
            raise NotFound("Contribution not found.", details={"contribution_ids": [str(cid)]})
    return [found[cid] for cid in ids], members


def _refuse_duplicate_incidents(session: Session, actor: Principal, items: list[Any]) -> None:
    """One incident earns one award per indicator: refuse one already held, or twice in the batch.
    The holder is named only to a reader who may open it: outside their scope it is a 404, and
    naming it would tell them of work they cannot see."""
    keyed = [r for r in items if r.incident_key is not None]
    if not keyed:
        return
    batch = {r.id for r in items}
    holders: dict[tuple[str, str], tuple[int, str]] = {}
    for hid, code, key, path in session.execute(
            select(Contribution.id, Contribution.indicator_code, Contribution.incident_key, Contribution.region_path)
            .where(Contribution.indicator_code.in_(sorted({r.indicator_code for r in keyed})),
                   bulk_sql.any_of(Contribution.incident_key, sorted({r.incident_key for r in keyed}), session),
                   Contribution.state.in_(HOLDING_STATES)).order_by(Contribution.id)):
        if hid not in batch:
            holders.setdefault((code, key), (hid, path))
    seen: set[tuple[str, str]] = set()
    for r in keyed:
        key = (r.indicator_code, r.incident_key)
        holder = holders.get(key)
        if holder is None and key not in seen:
            seen.add(key)
            continue
        if holder is None:
            why = f"Incident {r.incident_key} is named twice in this batch."
        elif actor.in_scope(holder[1]):
            why = f"Incident {r.incident_key} is held by contribution {holder[0]}."
        else:
            why = f"Incident {r.incident_key} is held by another contribution, outside your area."
        raise Conflict("This incident has already been verified for this indicator.", code="duplicate_incident",
                       details={"incident_ref": [why]})


def _recheck(session: Session, pending: list[tuple[Any, Indicator]]) -> None:
    """What the version scoring the work requires of it, checked again for the work that version
    was published after: its submission was checked against the version then in force (the
    same check, `unmet_requirement`), and a version published since to take effect on the day of
    the work may require more. Everything else passed this very check when it was submitted."""
    if not pending:
        return
    records = dict(session.execute(select(Contribution.id, Contribution.case_record).where(
        bulk_sql.any_of(Contribution.id, [r.id for r, _indicator in pending], session))).all())
    for r, indicator in pending:
        unmet = unmet_requirement(indicator, conflict_item=r.conflict_item, warning_colour=r.warning_colour,
                                  quantity=r.quantity, missing_steps=missing_steps(records[r.id] or {}))
        if unmet is not None:
            field_name, reason = unmet
            raise ValidationFailed("The contribution is incomplete or invalid.", code="invalid_contribution",
                                   details={field_name: [reason], "contribution_ids": [str(r.id)]})


def _capped(rule: IndicatorRule) -> bool:
    return rule.cap_month is not None or rule.cap_year is not None


# PostgreSQL: the contributions (scored, on notice) and their members' points in one statement.
# The contributions travel as one JSON array of [id, rule set, points, explanation, notice end]
# (one dump on each side instead of one per explanation); the members as three integer arrays.
_WRITE_SCORES_PG = """
WITH v AS (SELECT (r->>0)::bigint AS id, (r->>1)::bigint AS rule_set_id, (r->>2)::int AS proposed_points,
                  r->3 AS explanation, (r->>4)::timestamptz AS notice_until
           FROM jsonb_array_elements(%(rows)s::jsonb) AS r),
scored AS (
    UPDATE contributions t SET rule_set_id = v.rule_set_id, proposed_points = v.proposed_points,
           explanation = v.explanation, notice_until = v.notice_until, state = 'in_notice',
           verified_by = %(actor)s, verified_at = %(now)s
    FROM v WHERE t.id = v.id)
UPDATE contribution_members t SET points = m.points
FROM unnest(%(m_contribution)s::bigint[], %(m_participant)s::bigint[], %(m_points)s::int[])
     AS m(contribution_id, participant_id, points)
WHERE t.contribution_id = m.contribution_id AND t.participant_id = m.participant_id
"""


def _write_scores(session: Session, actor: Principal, now: dt.datetime, decided: list[tuple[Any, Any, Score]]) -> None:
    """Contributions (scored, on notice) and their members' points: one statement on PostgreSQL,
    one per table elsewhere."""
    if not decided:
        return
    m_contribution: list[int] = []
    m_participant: list[int] = []
    m_points: list[int] = []
    notice_ends: dict[int, dt.datetime] = {}
    for r, rule_set, result in decided:
        for pid, got in result.points.items():
            m_contribution.append(r.id)
            m_participant.append(pid)
            m_points.append(got)
        if rule_set.notice_days not in notice_ends:
            notice_ends[rule_set.notice_days] = now + dt.timedelta(days=rule_set.notice_days)
    if bulk_sql.is_postgres(session):
        iso = {days: end.isoformat() for days, end in notice_ends.items()}
        rows = [[r.id, rule_set.id, result.total, result.explanation, iso[rule_set.notice_days]]
                for r, rule_set, result in decided]
        execute(session, _WRITE_SCORES_PG, {
            "rows": json.dumps(rows, ensure_ascii=False, separators=(",", ":")), "actor": actor.id, "now": now,
            "m_contribution": bulk_sql.int_array(m_contribution), "m_participant": bulk_sql.int_array(m_participant),
            "m_points": bulk_sql.int_array(m_points)})
        return
    contributions: dict[str, list[Any]] = {
        "id": [r.id for r, _rs, _res in decided], "rule_set_id": [rs.id for _r, rs, _res in decided],
        "proposed_points": [res.total for _r, _rs, res in decided],
        "explanation": [res.explanation for _r, _rs, res in decided],
        "notice_until": [notice_ends[rs.notice_days] for _r, rs, _res in decided]}
    bulk_sql.update_rows(session, Contribution.__table__, ("id",), contributions,  # type: ignore[arg-type]
                         {"state": "in_notice", "verified_by": actor.id, "verified_at": now})
    bulk_sql.update_rows(session, ContributionMember.__table__, ("contribution_id", "participant_id"),  # type: ignore[arg-type]
                         {"contribution_id": m_contribution, "participant_id": m_participant, "points": m_points})


def _score_and_reserve(session: Session, actor: Principal, items: list[Any], members: dict[int, list[tuple[int, int]]],
                       now: dt.datetime) -> list[Verified]:
    """Score each contribution and reserve its points in the tallies, in the order given (caps
    fill in that order). Work under an indicator without month or year cap scores the same
    whatever the tallies hold, so it is scored and written before the tallies are locked: the
    locks, which every concurrent verifier of the same people waits for, are held only while the
    capped work is scored and written."""
    # Per (work date, indicator): the rule set in force (as plain values), the rule and the periods,
    # looked up once per batch rather than once per contribution.
    found: dict[tuple[dt.date, str], tuple[_InForce, Indicator, IndicatorRule, str, str, dt.datetime]] = {}
    plan: list[tuple[Any, _InForce, IndicatorRule, Facts, str, str]] = []
    keys: set[bulk_sql.TallyKey] = set()
    recheck: list[tuple[Any, Indicator]] = []
    for r in items:  # rules first: an unknown indicator or unmet requirement fails before any tally is locked
        code = r.indicator_code
        got = found.get((r.work_date, code))
        if got is None:
            rule_set = rules.in_force(session, r.work_date)
            got = found[(r.work_date, code)] = (_InForce(rule_set.id, rule_set.notice_days),
                                                *rules.indicator_rule(rule_set, code), *_periods(r.work_date),
                                                rule_set.published_at or now)
        in_force, indicator, rule, month, year, published_at = got
        if published_at >= r.submitted_at:
            recheck.append((r, indicator))
        mine = members[r.id]
        plan.append((r, in_force, rule, Facts(mine, r.quantity, r.warning_colour), month, year))
        for pid, _share in mine:
            keys.add((pid, code, month))
            keys.add((pid, code, year))
    _recheck(session, recheck)
    results: list[Score | None] = [None if _capped(rule) else score(rule, facts, {}, {})
                                   for _r, _rs, rule, facts, _m, _y in plan]
    _write_scores(session, actor, now, [(p[0], p[1], res) for p, res in zip(plan, results) if res is not None])
    # Tallies that only uncapped work touches get its points added by the statement that locks
    # them; those that capped work reads are read under the lock and filled in order below.
    running: set[bulk_sql.TallyKey] = set()
    for (r, _rs, _rule, facts, month, year), result in zip(plan, results):
        if result is None:
            for pid, _share in facts.members:
                running.add((pid, r.indicator_code, month))
                running.add((pid, r.indicator_code, year))
    deltas: dict[bulk_sql.TallyKey, int] = dict.fromkeys(keys - running, 0)
    for (r, _rs, _rule, _facts, month, year), result in zip(plan, results):
        if result is not None:
            code = r.indicator_code
            for pid, got in result.points.items():
                for key in ((pid, code, month), (pid, code, year)):
                    if key in deltas:
                        deltas[key] += got
    tallies = bulk_sql.add_to_tallies(session, deltas, running)
    capped: list[tuple[Any, Any, Score]] = []
    out: list[Verified] = []
    notice_ends: dict[int, dt.datetime] = {}
    for i, (r, rule_set, rule, facts, month, year) in enumerate(plan):
        code = r.indicator_code
        result = results[i]
        if result is None:
            result = score(rule, facts, {pid: tallies[(pid, code, month)] for pid, _ in facts.members},
                           {pid: tallies[(pid, code, year)] for pid, _ in facts.members})
            capped.append((r, rule_set, result))
        if running:
            for pid, got in result.points.items():
                for key in ((pid, code, month), (pid, code, year)):
                    if key in running:
                        tallies[key] += got
        ends = notice_ends.get(rule_set.notice_days)
        if ends is None:
            ends = notice_ends[rule_set.notice_days] = now + dt.timedelta(days=rule_set.notice_days)
        out.append(Verified(r.id, result.total, result.points, now, ends))
    _write_scores(session, actor, now, capped)
    bulk_sql.write_tallies(session, tallies, running)
    return out


def verify_many(session: Session, actor: Principal, contribution_ids: Sequence[int], *, note: str | None = None,
                now: dt.datetime | None = None) -> list[Verified]:
    """Verify contributions (one or thousands) in one pass: check, score, reserve, open notice.
    All or none; returns what was decided, in the order given (`load` gives ORM objects)."""
    if not actor.has_role(*VERIFIER_ROLES):
        raise Forbidden("Only a verifier or approver verifies contributions.", code="role_required")
    now = now or utcnow()
    session.flush()  # pending ORM changes first: what follows reads and writes the tables directly
    items, members = _load_rows(session, actor, contribution_ids)
    hand = one_hand(session, actor) if any(r.submitted_by_staff is not None for r in items) else frozenset()
    for r in items:
        if r.state != "submitted":
            raise Conflict("Only a submitted contribution can be verified.", code="wrong_state",
                           details={"state": [r.state], "contribution_ids": [str(r.id)]})
        _four_eyes(actor, hand, r.submitted_by_staff, r.submitted_by_participant, (pid for pid, _s in members[r.id]))
    _refuse_duplicate_incidents(session, actor, items)
    try:
        with session.begin_nested():  # a race on the incident index rolls back only this
            bulk_sql.insert_rows(session, ContributionEvent.__table__,  # type: ignore[arg-type]
                                 {"contribution_id": [r.id for r in items]},
                                 {"from_state": "submitted", "to_state": "in_notice", "actor_kind": actor.kind,
                                  "actor_id": actor.id, "actor_label": actor.label[:100], "at": utcnow(),
                                  "note": note})
            verified = _score_and_reserve(session, actor, items, members, now)
    except IntegrityError as exc:
        raise Conflict("This incident has already been verified for this indicator.", code="duplicate_incident",
                       details={"incident_ref": ["One incident earns one award per indicator."]}) from exc
    finally:
        bulk_sql.expire(session, contribution_ids)
    if len(items) <= AUDIT_EACH_UP_TO:
        for r, v in zip(items, verified):
            audit(session, actor, "contribution.verify", object_type="contribution", object_id=r.id,
                  region_path=r.region_path, details={"points": v.proposed_points})
    else:  # one record per village touched naming its ids, rather than thousands of rows
        for area, ids in _by_village(items).items():
            audit(session, actor, "contribution.verify_bulk", region_path=area, details={"count": len(ids), "ids": ids})
    session.flush()
    return verified


def _by_village(items: list[Any]) -> dict[str, list[int]]:
    """Ids by the village of their grid, in the order given. A bulk record sits at the path of
    what it names, as each single record does: at the actor's scope path, a township auditor
    would not see the county verifier's batch in their township, nor a village auditor any.
    The village is the narrowest scope staff have (never a grid), so each one sees its records."""
    grouped: dict[str, list[int]] = defaultdict(list)
    for r in items:
        grouped[village_path(r.region_path)].append(r.id)
    return grouped


def _release(session: Session, contribution: Contribution) -> None:
    month, year = _periods(contribution.work_date)
    keys = {(m.participant_id, contribution.indicator_code, p) for m in contribution.members for p in (month, year)}
    tallies = bulk_sql.lock_tallies(session, keys)
    for m in contribution.members:
        for period in (month, year):
            tallies[(m.participant_id, contribution.indicator_code, period)] -= m.points or 0
    bulk_sql.write_tallies(session, tallies, keys)


def reject(session: Session, actor: Principal, contribution_id: int, reason: str) -> Contribution:
    if not actor.has_role(*VERIFIER_ROLES):
        raise Forbidden("Only a verifier or approver rejects contributions.", code="role_required")
    c = _load_one(session, actor, contribution_id)
    if c.state not in ("submitted", "in_notice"):
        raise Conflict("This contribution can no longer be rejected.", code="wrong_state", details={"state": [c.state]})
    check_four_eyes(session, actor, c)
    return reject_unchecked(session, actor, c, reason)


def reject_unchecked(session: Session, actor: Principal, c: Contribution, reason: str) -> Contribution:
    """Reject without the role and four-eyes checks. `c` must have been loaded by `lock` in
    this transaction, so that its state is current: an in_notice one releases its cap room."""
    previous = c.state
    if previous == "in_notice":
        _release(session, c)
    c.state, c.decision_reason = "rejected", reason
    session.flush()
    record_event(session, c, actor, "rejected", note=reason, from_state=previous)
    audit(session, actor, "contribution.reject", object_type="contribution", object_id=c.id,
          region_path=c.region_path, details={"reason": reason})
    return c


def _reversal_reason(reason: str) -> str:
    """The reversal's reason: the label and the approver's words (up to 500, kept whole on the
    contribution), cut to what the ledger takes, so that a reason the request accepted is not
    refused by the ledger's own length."""
    text = f"撤销积分奖励：{reason}"
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def revoke(session: Session, actor: Principal, contribution_id: int, reason: str) -> Contribution:
    """Reverse an award exactly (a reversal posting of the award) and free its cap room."""
    if not actor.has_role("approver"):
        raise Forbidden("Only an approver revokes awards.", code="role_required")
    c = _load_one(session, actor, contribution_id)
    if c.state != "awarded":
        raise Conflict("Only an awarded contribution can be revoked.", code="wrong_state", details={"state": [c.state]})
    check_four_eyes(session, actor, c)
    if c.posting_id is not None:
        corrections.reverse(session, actor, c.posting_id, _reversal_reason(reason),
                            idempotency_key=f"revoke:{c.id}", idem_scope="scoring")
    _release(session, c)
    c.state, c.decision_reason, c.revoked_at, c.revoked_by = "revoked", reason, utcnow(), actor.id
    session.flush()
    record_event(session, c, actor, "revoked", note=reason, from_state="awarded")
    audit(session, actor, "contribution.revoke", object_type="contribution", object_id=c.id,
          region_path=c.region_path, details={"reason": reason, "posting_id": c.posting_id})
    return c
