"""At the counter: look a code up, redeem a spend scenario or record a privilege, hold then
capture or void, refund. Every write takes an idempotency key scoped to the outlet.

Limits hold under concurrency because each is taken with one conditional statement (`limits`):
usage counters with an upsert that refuses past the limit, the quota with a guarded UPDATE, and the
balance by the ledger's row lock and CHECK; a full refund gives back exactly what its redemption
took, as it recorded it. All happen in the request's transaction, so a refusal anywhere leaves
nothing behind (the code stays unused)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from identity.models import Participant
from identity.services import forget_key
from infra.auth import Principal
from infra.db import utcnow
from infra.driver import in_transaction, on_postgresql
from infra.errors import Conflict, NotFound, Unauthorized, ValidationFailed, sqlstate
from infra.security import mask_name
from ledger.services import accounts
from ledger.services.chain import request_digest
from ledger.services.posting import MAX_REASON, InsufficientBalance, Leg, PostingRequest, post
from ledger.services.posting_sql import INSUFFICIENT
from redemption.models import Hold, Redemption, Refund, Scenario, ScenarioOutlet
from redemption.services import claim, codes, limits, redeem_sql, refusals, rows
from redemption.services.common import IDEM_SCOPE, local_date, require_outlet
from redemption.services.eligibility import Verdict, evaluate, standing, static_reasons
from scoring.services import grades


@dataclass(frozen=True)
class CounterConfig:
    secret_key: str
    timezone: str
    hold_ttl: dt.timedelta
    refund_window: dt.timedelta
    shards: int


@dataclass(frozen=True)
class LookupView:
    masked_name: str
    grade: str | None
    verdicts: list[Verdict]


def outlet_scenarios(session: Session, outlet: Principal) -> list[Scenario]:
    return list(session.scalars(select(Scenario).join(ScenarioOutlet).where(ScenarioOutlet.outlet_id == outlet.id)
                                .order_by(Scenario.code)))


def lookup(session: Session, outlet: Principal, digits: str, cfg: CounterConfig) -> LookupView:
    require_outlet(outlet)
    code = codes.find(session, digits, secret_key=cfg.secret_key)
    person = session.get(Participant, code.participant_id)
    assert person is not None
    who = standing(session, person.id, now=utcnow(), timezone=cfg.timezone)
    return LookupView(masked_name=mask_name(person.name), grade=who.grade,
                      verdicts=evaluate(session, who, outlet_scenarios(session, outlet), reveal_balance=False,
                                        at_counter=True))


def _refuse_unless_eligible(reasons: list[dict[str, Any]], *, ignore: tuple[str, ...] = ()) -> None:
    """Static reasons (suspended, dates, grade) refuse at once; limits, quota and the balance are
    taken atomically afterwards, so a stale read can never let one through."""
    blocking = [r for r in reasons if r["code"] not in ignore]
    if blocking:
        raise refusals.not_usable(blocking)


def _terms(scenario: Any) -> dict[str, Any]:
    return {k: getattr(scenario, k) if not isinstance(getattr(scenario, k), dt.date) else getattr(scenario, k).isoformat()
            for k in ("code", "name_zh", "name_en", "kind", "points_cost", "required_grade", "yuan_value_fen",
                      "limit_day", "limit_month", "limit_year", "terms_zh", "terms_en")}


def redeem(session: Session, outlet: Principal, *, digits: str, scenario_id: int, idem_key: str,
           cfg: CounterConfig) -> tuple[Redemption, bool]:
    """Spend (debit the points) or record the use of a privilege (no debit). Returns (redemption, replayed).

    The hot path of the counter. On PostgreSQL one call (`redeem_sql`) does it all, as a unit of
    work of its own when the session has begun none; when something needs Python it writes
    nothing and the steps below do the redemption, as they do on other databases (`claim` then
    one statement each for limits, posting and record)."""
    require_outlet(outlet)
    code_digest = codes.digest(cfg.secret_key, digits)
    digest = request_digest({"op": "redeem", "code": code_digest, "scenario": scenario_id})
    now = utcnow()
    today = local_date(now, cfg.timezone)
    if on_postgresql(session):
        done = _redeem_in_one_call(session, outlet, scenario_id=scenario_id, code_digest=code_digest,
                                   idem_key=idem_key, digest=digest, now=now, today=today)
        if done is not None:
            return done
    elif outlet.extra.get("check_key") is not None:  # only the PostgreSQL call checks a key itself
        raise Unauthorized("Sign in first.", code="unauthorized")
    got = claim.claim(session, outlet, Redemption, scenario_id=scenario_id, code_digest=code_digest,
                      idem_key=idem_key, now=now)
    if got.prior_id is not None or got.participant_id is None:
        return refusals.replay_or_invalid(session, Redemption, outlet, idem_key, digest), True
    scenario, participant_id = got.scenario, got.participant_id
    # The grade (a sum over a year of entries) only for scenarios that require one. Limits, quota
    # and the balance are taken atomically below, so they are not read here.
    view = grades.grade(session, participant_id) if scenario.required_grade is not None else None
    _refuse_unless_eligible(static_reasons(scenario, today, view.grade["code"] if view and view.grade else None,
                                           view.ladder if view else ()))
    consumed = limits.take(session, participant_id, scenario, today)
    posting_id = None
    if scenario.kind == "spend":
        account_id = got.account_id or accounts.participant_account(session, participant_id).id
        partner_account_id = got.partner_account_id or accounts.partner_account(
            session, scenario.partner_id, cfg.shards).id
        posting_id = _post(session, outlet, cfg, kind="redemption", key=f"redeem:{idem_key}",
                           reason=f"{scenario.name_zh}（{scenario.code}）",
                           legs=[(account_id, -scenario.points_cost), (partner_account_id, scenario.points_cost)],
                           source=None, at=now)
    values = _redemption_values(scenario, outlet, participant_id, posting_id, idem_key, digest, now, consumed)
    return rows.persisted(session, Redemption, values), False


def _redemption_values(scenario: Any, outlet: Principal, participant_id: int, posting_id: int | None, idem_key: str,
                       digest: str, now: dt.datetime, consumed: dict[str, Any]) -> dict[str, Any]:
    return {"scenario_id": scenario.id, "partner_id": scenario.partner_id, "outlet_id": outlet.id,
            "participant_id": participant_id, "kind": scenario.kind,
            "points": scenario.points_cost if scenario.kind == "spend" else 0,
            "yuan_value_fen": scenario.yuan_value_fen, "refunded_points": 0, "refunded_fen": 0,
            "posting_id": posting_id, "terms": _terms(scenario), "consumed": consumed, "idem_key": idem_key,
            "request_digest": digest, "created_at": now}


def _redeem_in_one_call(session: Session, outlet: Principal, *, scenario_id: int, code_digest: str, idem_key: str,
                        digest: str, now: dt.datetime, today: dt.date) -> tuple[Redemption, bool] | None:
    """The answer when `redemption_redeem` gave one; None when it left the redemption to Python
    (having written nothing). Its refusals raise here as the steps would raise them."""
    try:
        got = redeem_sql.redeem(session, outlet, scenario_id=scenario_id, code_digest=code_digest,
                                idem_key=idem_key, request_digest=digest, now=now, today=today)
    except DBAPIError as exc:
        _raise_refusal(session, exc, outlet, idem_key, digest)
        raise
    row = got.row
    if got.outcome == redeem_sql.DONE:
        # What the call took and recorded, worked out here as it did there (`limits.consumption`).
        values = _redemption_values(row, outlet, row.participant_id, row.posting_id, idem_key, digest, now,
                                    limits.consumption(row, today))
        if in_transaction(session):  # written in the session's transaction: part of it
            return rows.attached(session, Redemption, row.redemption_id, values), False
        return rows.loaded(Redemption, row.redemption_id, values), False  # committed on its own
    if got.outcome == "unauthorized":
        forget_key(outlet.extra["check_key"])
        raise Unauthorized("This API key is not valid.", code="unauthorized")
    if got.outcome == "no_scenario":
        claim.no_scenario(scenario_id)
    if got.outcome == "replay" and not in_transaction(session):
        return _replayed(redeem_sql.prior(session, row.prior_id), digest), True
    if got.outcome in ("replay", "code_invalid"):
        return refusals.replay_or_invalid(session, Redemption, outlet, idem_key, digest), True
    return None


def _replayed(values: dict[str, Any], digest: str) -> Redemption:
    """`refusals.replay`'s answer from a row read on its own (`redeem_sql.prior`): the same refusal for
    other content, else the original redemption, bound to no session."""
    if values["request_digest"] != digest:
        refusals.key_reused(Redemption, values["id"])
    return rows.loaded(Redemption, values.pop("id"), values)


def _raise_refusal(session: Session, exc: DBAPIError, outlet: Principal, idem_key: str, digest: str) -> None:
    """A refusal `redemption_redeem` raised (its writes undone with it), as the steps raise it."""
    state = sqlstate(exc)
    if state == INSUFFICIENT:
        raise refusals.not_enough_points() from None
    if state == redeem_sql.REFUSED:
        diag = exc.orig.diag  # type: ignore[union-attr]
        what, limit = diag.message_primary, int(diag.message_detail)
        if what == "quota_exhausted":
            refusals.quota_refused()
        refusals.limit_refused(what.removeprefix("limit_"), limit)
    if state == redeem_sql.POSTING_TAKEN:
        # Another request with this key committed first: other content is a 422; the same content
        # is a retry, to be answered from that request once this one has rolled back.
        refusals.replay(session, Redemption, outlet, idem_key, digest)
        raise Conflict("Duplicate request still in flight; retry.", code="in_flight") from None


def posting_reason(label: str, words: str) -> str:
    """The posting's reason: the counter's label and the clerk's words, cut to what the ledger
    takes. The words were checked against their own field's limit and stay whole on the refund,
    so the label in front must not turn them into a refusal of the ledger's length."""
    text = label + words
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _post(session: Session, outlet: Principal, cfg: CounterConfig, *, kind: str, key: str, reason: str,
          legs: list[tuple[int, int]], source: tuple[str, str] | None, at: dt.datetime | None = None) -> int:
    """`at`: the time of the counter's record (a redemption made step by step, a capture's, a
    refund), which the posting takes as its effective time, so that settlement cuts both into the
    same month: taken a moment later by the ledger, a refund at midnight at a month's end was
    March's line and April's entry."""
    legs = [(a, n) for a, n in legs if n != 0]
    try:
        return post(session, outlet, PostingRequest(
            kind=kind, reason=reason, idempotency_key=f"{outlet.id}:{key}",
            source_type=source[0] if source else None, source_id=source[1] if source else None,
            legs=[Leg(a, n) for a, n in legs], effective_at=at), idem_scope=IDEM_SCOPE).posting_id
    except InsufficientBalance:
        raise refusals.not_enough_points() from None


def hold(session: Session, outlet: Principal, *, digits: str, scenario_id: int, points: int | None, idem_key: str,
         cfg: CounterConfig) -> tuple[Hold, bool]:
    """Set points aside (they stop counting as available) until capture, void or expiry."""
    require_outlet(outlet)
    code_digest = codes.digest(cfg.secret_key, digits)
    digest = request_digest({"op": "hold", "code": code_digest, "scenario": scenario_id, "points": points})
    now = utcnow()
    got = claim.claim(session, outlet, Hold, scenario_id=scenario_id, code_digest=code_digest, idem_key=idem_key,
                      now=now)
    if got.prior_id is not None:
        return refusals.replay_or_invalid(session, Hold, outlet, idem_key, digest), True
    scenario = got.scenario
    if scenario.kind != "spend":
        raise Conflict("Only spend scenarios take holds.", code="not_a_spend_scenario")
    amount = points or scenario.points_cost
    if amount > scenario.points_cost:
        raise ValidationFailed("A hold cannot exceed the scenario's cost.",
                               details={"points": [f"At most {scenario.points_cost}."]})
    if got.participant_id is None:
        return refusals.replay_or_invalid(session, Hold, outlet, idem_key, digest), True
    participant_id = got.participant_id
    who = standing(session, participant_id, now=now, timezone=cfg.timezone,
                   with_grade=scenario.required_grade is not None)
    _refuse_unless_eligible(evaluate(session, who, [scenario], at_counter=True)[0].reasons,
                            ignore=("insufficient_points",))
    escrow = accounts.system_account(session, accounts.ESCROW, cfg.shards)
    posting_id = _post(session, outlet, cfg, kind="hold", key=f"hold:{idem_key}",
                       reason=f"{scenario.name_zh}（{scenario.code}）积分冻结",
                       legs=[(who.account_id, -amount), (escrow.id, amount)],
                       source=None)
    record = Hold(scenario_id=scenario.id, outlet_id=outlet.id, participant_id=participant_id, points=amount,
                  hold_posting_id=posting_id, terms=_terms(scenario), expires_at=now + cfg.hold_ttl,
                  idem_key=idem_key, request_digest=digest, created_at=now)
    session.add(record)
    session.flush()
    return record, False


def _locked_hold(session: Session, outlet: Principal, hold_id: int) -> Hold:
    record = session.get(Hold, hold_id, with_for_update=True, populate_existing=True)
    if record is None or record.outlet_id != outlet.id:
        raise NotFound("Hold not found.")
    return record


def capture(session: Session, outlet: Principal, hold_id: int, *, points: int | None, idem_key: str,
            cfg: CounterConfig) -> tuple[Redemption, bool]:
    """Turn a hold into a redemption of the same or a smaller amount; the rest goes back. Status, dates
    and grade were judged at the hold and, like its terms, stand until it expires (minutes): a sale
    under way completes after a suspension. Limits and quota are taken now."""
    require_outlet(outlet)
    digest = request_digest({"op": "capture", "hold": hold_id, "points": points})
    if (done := refusals.replay(session, Redemption, outlet, idem_key, digest)) is not None:
        return done, True
    record = _locked_hold(session, outlet, hold_id)
    now = utcnow()
    if record.status != "held":
        # A duplicate of this request may have captured it while this one waited on the lock.
        if (done := refusals.replay(session, Redemption, outlet, idem_key, digest)) is not None:
            return done, True
        raise Conflict("This hold is no longer open.", code=f"hold_{record.status}")
    if record.expires_at <= now:
        raise Conflict("This hold has expired; its points are being released.", code="hold_expired")
    amount = record.points if points is None else points
    if not 1 <= amount <= record.points:
        raise ValidationFailed("Capture at most what was held.", details={"points": [f"1 to {record.points}."]})
    scenario = session.get(Scenario, record.scenario_id)
    assert scenario is not None
    # The limits and the quota as they stand now (the counters are now's); the redemption records
    # what was taken, and a full refund gives back exactly that.
    consumed = limits.take(session, record.participant_id, scenario, local_date(now, cfg.timezone))
    escrow = accounts.system_account(session, accounts.ESCROW, cfg.shards)
    posting_id = _post(session, outlet, cfg, kind="redemption", key=f"capture:{idem_key}",
                       reason=f"{scenario.name_zh}（{scenario.code}）",
                       legs=[(escrow.id, -record.points),
                             (accounts.partner_account(session, scenario.partner_id, cfg.shards).id, amount),
                             (accounts.participant_account(session, record.participant_id).id, record.points - amount)],
                       source=("hold", str(record.id)), at=now)
    # Priced by the terms shown when the points were held, not by any change made since.
    value = record.terms["yuan_value_fen"] * amount // record.terms["points_cost"]
    redemption = Redemption(scenario_id=scenario.id, partner_id=scenario.partner_id, outlet_id=outlet.id,
                            participant_id=record.participant_id, kind="spend", points=amount, yuan_value_fen=value,
                            posting_id=posting_id, terms=record.terms, consumed=consumed, idem_key=idem_key,
                            request_digest=digest, created_at=now)
    session.add(redemption)
    session.flush()
    record.status, record.redemption_id, record.closed_at = "captured", redemption.id, now
    session.flush()
    return redemption, False


def release(session: Session, actor: Principal, record: Hold, status: str, cfg: CounterConfig) -> Hold:
    """Give held points back (void by the outlet, or expiry by the job). Exactly once: the hold
    row is locked and the posting's key is the hold's."""
    escrow = accounts.system_account(session, accounts.ESCROW, cfg.shards)
    scenario = session.get(Scenario, record.scenario_id)
    assert scenario is not None
    record.release_posting_id = post(session, actor, PostingRequest(
        kind="release", reason=f"{scenario.name_zh}（{scenario.code}）冻结释放",
        idempotency_key=f"release:{record.id}", source_type="hold", source_id=str(record.id),
        legs=[Leg(escrow.id, -record.points),
              Leg(accounts.participant_account(session, record.participant_id).id, record.points)]),
        idem_scope=IDEM_SCOPE).posting_id
    record.status, record.closed_at = status, utcnow()
    session.flush()
    return record


def void(session: Session, outlet: Principal, hold_id: int, cfg: CounterConfig) -> Hold:
    require_outlet(outlet)
    record = _locked_hold(session, outlet, hold_id)
    if record.status == "voided":
        return record  # voiding twice is harmless
    if record.status != "held":
        raise Conflict("This hold is no longer open.", code=f"hold_{record.status}")
    return release(session, outlet, record, "voided", cfg)


def expire_holds(session: Session, actor: Principal, cfg: CounterConfig, *, now: dt.datetime | None = None,
                 limit: int = 500) -> int:
    """Scheduled: release every hold past its time. SKIP LOCKED lets several workers share it."""
    now = now or utcnow()
    due = session.scalars(select(Hold).where(Hold.status == "held", Hold.expires_at <= now).order_by(Hold.id)
                          .limit(limit).with_for_update(skip_locked=True)).all()
    for record in due:
        release(session, actor, record, "expired", cfg)
    return len(due)


def refund(session: Session, outlet: Principal, redemption_id: int, *, points: int | None, reason: str,
           idem_key: str, cfg: CounterConfig) -> tuple[Refund, bool]:
    """Give points back for a mistaken redemption: within the window, never beyond what was
    redeemed (a guarded UPDATE and a CHECK), so never twice in full."""
    require_outlet(outlet)
    digest = request_digest({"op": "refund", "redemption": redemption_id, "points": points, "reason": reason})
    if (done := refusals.replay(session, Refund, outlet, idem_key, digest)) is not None:
        return done, True
    # Refunds of one redemption take turns on its row: a duplicate in flight then replays the first.
    redemption = session.get(Redemption, redemption_id, with_for_update={"key_share": True}, populate_existing=True)
    if redemption is None or redemption.outlet_id != outlet.id:
        raise NotFound("Redemption not found.")
    if (done := refusals.replay(session, Refund, outlet, idem_key, digest)) is not None:
        return done, True
    if redemption.kind != "spend":
        raise Conflict("A privilege deducts no points; there is nothing to refund.", code="nothing_to_refund")
    now = utcnow()
    if redemption.created_at + cfg.refund_window < now:
        raise Conflict("The refund window for this redemption has closed.", code="refund_window_closed",
                       details={"window_days": [str(cfg.refund_window.days)]})
    remaining = redemption.points - redemption.refunded_points
    amount = remaining if points is None else points
    if amount < 1:
        raise Conflict("This redemption has already been refunded in full.", code="already_refunded")
    value = redemption.yuan_value_fen * amount // redemption.points if redemption.points else 0
    taken = session.execute(update(Redemption).where(
        Redemption.id == redemption.id, Redemption.refunded_points + amount <= Redemption.points)
        .values(refunded_points=Redemption.refunded_points + amount)
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        session.refresh(redemption)
        raise Conflict("A refund cannot exceed what was redeemed.", code="refund_exceeds",
                       details={"points": [f"At most {redemption.points - redemption.refunded_points}."]})
    session.refresh(redemption)
    if redemption.refunded_points == redemption.points:
        value = redemption.yuan_value_fen - redemption.refunded_fen  # the last refund squares the yuan exactly
        limits.give_back(session, redemption, local_date(redemption.created_at, cfg.timezone))
    redemption.refunded_fen += value
    scenario = session.get(Scenario, redemption.scenario_id)
    assert scenario is not None
    posting_id = _post(session, outlet, cfg, kind="refund", key=f"refund:{idem_key}",
                       reason=posting_reason(f"{scenario.name_zh}（{scenario.code}）退回：", reason),
                       legs=[(accounts.partner_account(session, redemption.partner_id, cfg.shards).id, -amount),
                             (accounts.participant_account(session, redemption.participant_id).id, amount)],
                       source=("redemption", str(redemption.id)), at=now)
    record = Refund(redemption_id=redemption.id, outlet_id=outlet.id, points=amount, yuan_value_fen=value,
                    reason=reason, posting_id=posting_id, idem_key=idem_key, request_digest=digest, created_at=now)
    session.add(record)
    session.flush()
    return record, False
