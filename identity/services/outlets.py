"""Partners, their outlets and the outlets' API keys."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from infra.auth import Principal
from infra.db import utcnow
from infra.errors import Conflict, Forbidden, IdempotencyConflict, NotFound, on_unique_violation
from infra.idempotency import sender_key
from infra.security import digest_secret, new_secret
from identity.models import ApiKey, Outlet, Partner, Region
from identity.services.people import audit, get_region


def _partner_code_taken() -> Conflict:
    return Conflict("Partner code taken.", details={"code": ["Already taken."]})


def _outlet_name_taken() -> Conflict:
    """A race's answer: without the outlet's id, which the service gives only to whom may see it."""
    return Conflict("This partner already has an outlet of that name.", code="outlet_exists",
                    details={"name": ["Already taken."]})


on_unique_violation("uq_partners_code", _partner_code_taken)
on_unique_violation("uq_outlets_partner_id_name", _outlet_name_taken)


def create_partner(session: Session, *, code: str, name: str, region: Region, name_en: str | None = None) -> Partner:
    if session.scalar(select(Partner.id).where(Partner.code == code)):
        raise _partner_code_taken()
    partner = Partner(code=code, name=name, name_en=name_en, region_id=region.id)
    session.add(partner)
    session.flush()
    return partner


def create_outlet(session: Session, partner: Partner, *, name: str, region: Region, address: str | None = None,
                  actor: Principal | None = None) -> Outlet:
    """A partner's outlets have distinct names: a retried registration is a 409, not a twin. The
    409 names the outlet only to an `actor` who may see it (`get_outlet_in_scope`): a township's
    admin is not told the id of the partner's outlet in another township."""
    taken = session.scalar(select(Outlet).where(Outlet.partner_id == partner.id, Outlet.name == name))
    if taken is not None:
        details: dict[str, Any] = {"name": [name]}
        if actor is None or actor.in_scope(_outlet_path(session, taken)):
            details["outlet_id"] = taken.id
        raise Conflict("This partner already has an outlet of that name.", code="outlet_exists", details=details)
    outlet = Outlet(partner_id=partner.id, name=name, region_id=region.id, address=address)
    session.add(outlet)
    session.flush()
    return outlet




def issue_api_key(session: Session, actor: Principal, outlet_id: int, label: str | None = None, *,
                  idempotency_key: str | None = None) -> tuple[str | None, ApiKey]:
    """The key itself and its row. The key is never stored and never shown again, so a request
    that timed out and is sent again with the same `idempotency_key` must not issue a second live
    key nobody saw: it gets the first request's key row and None for the key itself. The same
    idempotency key with another outlet or label is a 422 naming the key it issued."""
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin issues API keys.")
    outlet = get_outlet_in_scope(session, actor, outlet_id)
    stored = sender_key(actor, idempotency_key) if idempotency_key else None
    if stored and (earlier := _issued_before(session, stored, idempotency_key, outlet.id, label)) is not None:
        return None, earlier
    secret = new_secret("jy_key")
    key = ApiKey(outlet_id=outlet.id, prefix=secret[:10], key_digest=digest_secret(secret), label=label,
                 created_by=actor.id if actor.is_staff else None, idem_key=stored)
    try:
        with session.begin_nested():  # a retry that raced its first attempt: that one's key, not a 409
            session.add(key)
            session.flush()
    except IntegrityError:
        if stored and (earlier := _issued_before(session, stored, idempotency_key, outlet.id, label)) is not None:
            return None, earlier
        raise
    audit(session, actor, "api_key.issue", object_type="api_key", object_id=key.id,
          region_path=_outlet_path(session, outlet), details={"outlet_id": outlet.id, "prefix": key.prefix})
    return secret, key


def _issued_before(session: Session, stored: str, key: str | None, outlet_id: int, label: str | None) -> ApiKey | None:
    """The key an earlier request with this idempotency key issued, if it asked for the same."""
    earlier = session.scalar(select(ApiKey).where(ApiKey.idem_key == stored))
    if earlier is not None and (earlier.outlet_id, earlier.label) != (outlet_id, label):
        raise IdempotencyConflict("This idempotency key was already used for a different request.", details={
            "idempotency_key": [f"Key {key!r} was used for API key {earlier.id} with other content."]})
    return earlier


def revoke_api_key(session: Session, actor: Principal, key_id: int) -> ApiKey:
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin revokes API keys.")
    key = session.get(ApiKey, key_id)
    if key is None or not actor.in_scope(_outlet_path(session, key.outlet)):
        raise NotFound("API key not found.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit(session, actor, "api_key.revoke", object_type="api_key", object_id=key.id,
              region_path=_outlet_path(session, key.outlet), details={"outlet_id": key.outlet_id, "prefix": key.prefix})
    session.flush()
    return key


def _outlet_path(session: Session, outlet: Outlet) -> str:
    region = session.get(Region, outlet.region_id)
    return region.path if region else "/"


def get_outlet_in_scope(session: Session, actor: Principal, outlet_id: int) -> Outlet:
    outlet = session.get(Outlet, outlet_id)
    if outlet is None or not actor.in_scope(_outlet_path(session, outlet)):
        raise NotFound("Outlet not found.")
    return outlet


def partner_path(session: Session, partner: Partner) -> str:
    """The partner's region path: its scope, and where its changes are audited, so that the
    auditors of that area (not only the county's) see what changes for their residents."""
    return get_region(session, partner.region_id).path


def get_partner_in_scope(session: Session, actor: Principal, partner_id: int, *, field: str | None = None) -> Partner:
    """One 404 for missing and out of scope; it names `field` when the id came in the body."""
    partner = session.get(Partner, partner_id)
    if partner is None or not actor.in_scope(partner_path(session, partner)):
        raise NotFound("Partner not found.", details={field: ["No such partner in your scope."]} if field else None)
    return partner
