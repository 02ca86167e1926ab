"""How the counter refuses, the same whichever path found the refusal (the one-statement
redemption or the step-by-step code): a limit or the quota reached, points that do not suffice,
an idempotency key reused for other content, or a code that is not valid."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.auth import Principal
from infra.errors import Conflict, IdempotencyConflict, NotFound


def not_usable(reasons: list[dict[str, Any]]) -> Conflict:
    """The first reason a scenario cannot be used now, in words the clerk can read out (the same
    reasons the participant's eligibility list gives; all of them stay in `details`)."""
    code, details = reasons[0]["code"], {"reasons": reasons}
    if code == "suspended":
        return Conflict("This scenario is suspended.", code=code, details=details)
    if code == "not_started":
        return Conflict("This scenario has not started yet.", code=code, details=details)
    if code == "ended":
        return Conflict("This scenario has ended.", code=code, details=details)
    if code == "grade_required":
        return Conflict("This scenario needs a higher credit grade.", code=code, details=details)
    if code == "grade_not_defined":
        return Conflict("The rules in force define no such grade.", code=code, details=details)
    if code == "insufficient_points":
        return not_enough_points()
    if code == "quota_exhausted":
        return Conflict("This scenario's quota is used up.", code=code, details=details)
    if code.startswith("limit_"):
        return Conflict("The participant has reached this scenario's limit.", code=code, details=details)
    return Conflict("The participant cannot use this scenario now.", code=code, details=details)


def limit_refused(period: str, limit: int) -> None:
    raise Conflict("The participant has reached this scenario's limit.", code=f"limit_{period}",
                   details={"reasons": [{"code": f"limit_{period}", "limit": limit}]})


def quota_refused() -> None:
    raise Conflict("This scenario's quota is used up.", code="quota_exhausted",
                   details={"reasons": [{"code": "quota_exhausted"}]})


def replay(session: Session, model: type, outlet: Principal, key: str, digest: str) -> Any:
    found = session.scalar(select(model).where(model.outlet_id == outlet.id, model.idem_key == key))
    if found is not None and found.request_digest != digest:
        key_reused(model, found.id)
    return found


def key_reused(model: type, used_by: int) -> None:
    """The idempotency key names an earlier request with other content: a 422, never a replay."""
    raise IdempotencyConflict("This idempotency key was already used for a different request.",
                              details={"idempotency_key": [f"Used for {model.__tablename__} {used_by}."]})


def replay_or_invalid(session: Session, model: type, outlet: Principal, key: str, digest: str) -> Any:
    """A retry with a used key, or a code that was not claimed: a duplicate of this very request
    may have won the race on the code (its result is visible now), else one 404 for every cause."""
    if (done := replay(session, model, outlet, key, digest)) is not None:
        return done
    raise code_invalid()


def code_invalid() -> NotFound:
    """One answer for every code that cannot be used (unknown, expired, used), naming the body's
    field, so that the clerk knows what to ask for again and a guess learns nothing more."""
    return NotFound("This code is not valid. Ask for a new one.", code="code_invalid",
                    details={"code": ["Unknown, expired or already used."]})


def not_enough_points() -> Conflict:
    # The counter learns that the points do not suffice, never the balance itself.
    return Conflict("The participant does not have enough points.", code="insufficient_points",
                    details={"reasons": [{"code": "insufficient_points"}]})
