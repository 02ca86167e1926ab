"""Sign-in: bearer tokens for staff and participants, and the outlet behind an API key (with the
keys this process has seen valid kept in memory for the counter's hot path)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from infra.auth import Principal
from infra.db import utcnow
from infra.driver import driver_rows, on_postgresql
from infra.errors import Unauthorized
from infra.security import digest_secret, hash_password, new_secret, password_needs_rehash, verify_password
from identity.models import ApiKey, AuthToken, Outlet, Participant, Partner, StaffUser
from identity.services.people import audit, participant_principal, staff_principal


def issue_token(session: Session, kind: str, subject_id: int, ttl: dt.timedelta) -> tuple[str, dt.datetime]:
    token = new_secret("jy_st" if kind == "staff" else "jy_pt")
    expires = utcnow() + ttl
    session.add(AuthToken(token_digest=digest_secret(token), subject_kind=kind, subject_id=subject_id, expires_at=expires))
    session.flush()
    return token, expires


def login_staff(session: Session, username: str, password: str, ttl: dt.timedelta, *, ip: str | None = None,
                user_agent: str | None = None) -> tuple[str, dt.datetime, StaffUser]:
    # Locked while the password is checked: a password change committing meanwhile is waited for
    # and its new hash checked, so the old password cannot open a session it has just ended.
    user = session.scalar(select(StaffUser).where(StaffUser.username == username).with_for_update())
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.active:
        raise Unauthorized("Wrong username or password.", code="bad_credentials")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token, expires = issue_token(session, "staff", user.id, ttl)
    actor = Principal(**{**staff_principal(user).__dict__, "ip": ip, "user_agent": user_agent})
    audit(session, actor, "staff.login", object_type="staff_user", object_id=user.id,
          region_path=user.scope_region.path)
    return token, expires, user


def record_failed_login(session: Session, username: str, ip: str | None, user_agent: str | None) -> None:
    """Audit a failed staff sign-in (in its own unit of work: the failed request rolls back).

    What was typed is kept only when it is an existing username: people sometimes type their
    password in the username field, and the audit log must not keep it. Any other name keeps its
    first character only; the address, agent and time still show a brute-force run."""
    user = session.scalar(select(StaffUser).where(StaffUser.username == username))
    who = Principal(kind="system", id=0, label="login", ip=ip, user_agent=user_agent)
    details: dict[str, Any] = {"username": user.username, "known": True} if user else \
        {"username": mask_typed_name(username), "known": False}
    audit(session, who, "staff.login_failed", object_type="staff_user", object_id=user.id if user else None,
          region_path=user.scope_region.path if user else None, details=details)


def mask_typed_name(typed: str) -> str:
    """`s***` whatever was typed: a fixed number of stars, so not even its length is kept."""
    typed = typed.strip()
    return f"{typed[:1]}***" if typed else ""


def login_participant(session: Session, phone: str, password: str, ttl: dt.timedelta) -> tuple[str, dt.datetime, Participant]:
    person = session.scalar(select(Participant).where(Participant.phone == phone).with_for_update())  # as login_staff
    if not verify_password(person.password_hash if person else None, password) or person is None or not person.active:
        raise Unauthorized("Wrong phone number or password.", code="bad_credentials")
    token, expires = issue_token(session, "participant", person.id, ttl)
    return token, expires, person


def logout(session: Session, actor: Principal, token: str) -> None:
    session.execute(update(AuthToken).where(AuthToken.token_digest == digest_secret(token), AuthToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))
    if actor.is_staff:
        audit(session, actor, "staff.logout", object_type="staff_user", object_id=actor.id,
              region_path=actor.scope_path)  # where the login was recorded: the same auditors see both


# One query on the hot path of every counter request: key, outlet and partner together. Built
# once, so a request pays for executing it, not for constructing and cache-keying it again.
_API_KEY_PRINCIPAL = (
    select(ApiKey.id, ApiKey.revoked_at, ApiKey.last_used_at, Outlet.id.label("outlet_id"), Outlet.partner_id,
           Outlet.active.label("outlet_active"), Partner.active.label("partner_active"))
    .join(Outlet, Outlet.id == ApiKey.outlet_id).join(Partner, Partner.id == Outlet.partner_id)
    .where(ApiKey.key_digest == bindparam("digest")))
_API_KEY_PRINCIPAL_PG = (
    "SELECT k.id, k.revoked_at, k.last_used_at, o.id AS outlet_id, o.partner_id, o.active AS outlet_active, "
    "p.active AS partner_active FROM api_keys k JOIN outlets o ON o.id = k.outlet_id "
    "JOIN partners p ON p.id = o.partner_id WHERE k.key_digest = %(digest)s")


def principal_for(session: Session, scheme: str, credential: str) -> Principal | None:
    """Resolve a bearer token or an outlet API key; None when unknown, expired or revoked."""
    digest = digest_secret(credential)
    now = utcnow()
    if scheme == "bearer":
        token = session.scalar(select(AuthToken).where(AuthToken.token_digest == digest))
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            return None
        if token.subject_kind == "staff":
            user = session.get(StaffUser, token.subject_id)
            return staff_principal(user) if user and user.active else None
        person = session.get(Participant, token.subject_id)
        return participant_principal(person) if person and person.active else None
    if on_postgresql(session):
        rows = driver_rows(session, _API_KEY_PRINCIPAL_PG, {"digest": digest})
        row = rows[0] if rows else None
    else:
        row = session.execute(_API_KEY_PRINCIPAL, {"digest": digest}).first()
    if row is None or row.revoked_at is not None or not row.outlet_active or not row.partner_active:
        _KNOWN_KEYS.pop(digest, None)
        return None
    if row.last_used_at is None or row.last_used_at < now - dt.timedelta(hours=1):
        # committed with the request; hourly, so that reads stay cheap
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    if len(_KNOWN_KEYS) >= _KNOWN_KEYS_MAX:
        _KNOWN_KEYS.clear()
    _KNOWN_KEYS[digest] = (row.id, row.outlet_id, row.partner_id)
    return _outlet_principal(row.id, row.outlet_id, row.partner_id)


def _outlet_principal(key_id: int, outlet_id: int, partner_id: int, **extra: Any) -> Principal:
    return Principal(kind="outlet", id=outlet_id, label=f"outlet:{outlet_id}", partner_id=partner_id,
                     extra={"api_key_id": key_id, **extra})


# Keys this process has seen valid: digest -> (key id, outlet id, partner id). What a key belongs
# to never changes, so this can only be stale about whether it is still valid, which is exactly
# what `unchecked_outlet` leaves to the service's statement (`extra["check_key"]`).
_KNOWN_KEYS: dict[str, tuple[int, int, int]] = {}
_KNOWN_KEYS_MAX = 10_000


def unchecked_outlet(scheme: str, credential: str) -> Principal | None:
    """The outlet of an API key seen valid before, from memory, without a query; None otherwise.
    Its validity now (not revoked, outlet and partner active) is for the service to check."""
    if scheme != "apikey":
        return None
    known = _KNOWN_KEYS.get(digest_secret(credential))
    return None if known is None else _outlet_principal(*known, check_key=known[0])


def distrust_outlet(principal: Principal) -> None:
    """`infra.auth`'s hook: a request with an outlet from memory did not succeed."""
    if (key_id := principal.extra.get("check_key")) is not None:
        forget_key(key_id)


def forget_key(key_id: int) -> None:
    """A key found invalid by a service's own check: the next request resolves it afresh."""
    for digest, known in list(_KNOWN_KEYS.items()):
        if known[0] == key_id:
            _KNOWN_KEYS.pop(digest, None)
