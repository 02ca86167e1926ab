"""Identity services: sign-in, tokens and keys, people and organisations, scope, audit."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from infra.auth import STAFF_ROLES, Principal
from infra.db import utcnow
from infra.driver import driver_rows, on_postgresql
from infra.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from infra.security import digest_secret, hash_password, new_secret, password_needs_rehash, verify_password
from identity.models import ApiKey, AuditEntry, AuthToken, Outlet, Participant, Partner, Region, StaffUser


# --- audit -----------------------------------------------------------------------------------

def audit(session: Session, actor: Principal, action: str, *, object_type: str | None = None,
          object_id: Any = None, region_path: str | None = None, details: dict[str, Any] | None = None) -> None:
    """Record a staff (or system) action. Append-only: the table refuses UPDATE and DELETE."""
    session.add(AuditEntry(
        actor_kind=actor.kind, actor_id=actor.id, actor_label=actor.label[:100], action=action,
        object_type=object_type, object_id=None if object_id is None else str(object_id),
        region_path=region_path, details=details or {}, ip=actor.ip, user_agent=actor.user_agent,
    ))


# --- regions ---------------------------------------------------------------------------------

def create_region(session: Session, *, level: str, code: str, name: str, parent: Region | None = None,
                  name_en: str | None = None) -> Region:
    region = Region(level=level, code=code, name=name, name_en=name_en, parent_id=parent.id if parent else None)
    session.add(region)
    session.flush()
    region.path = f"{parent.path if parent else '/'}{region.id}/"
    session.flush()
    return region


def get_region(session: Session, region_id: int, actor: Principal | None = None, *,
               field: str = "region_id") -> Region:
    """The region, if it exists and (given an actor) lies in the actor's scope; one 404 either way.
    `field` is the request's name for the id (scope_region_id, township_id), so the 404 points at it."""
    region = session.get(Region, region_id)
    if region is None or (actor is not None and not actor.in_scope(region.path)):
        raise NotFound("Region not found.", details={field: ["No such region in your scope."]})
    return region


def is_county_scope(actor: Principal) -> bool:
    return actor.is_staff and actor.scope_path is not None and actor.scope_path.count("/") == 2


def sees_full_names(actor: Principal) -> bool:
    """Staff who work with people (clerks, verifiers, approvers, admins) need names in full;
    auditors check the books, not the people, so they read names masked."""
    return actor.is_staff and actor.role != "auditor"


# --- people ----------------------------------------------------------------------------------

MIN_PASSWORD = {"staff": 10, "participant": 8}


def check_password(password: str, account_name: str, *, kind: str, field: str = "password") -> None:
    """Refuse a password too short for the kind of account, or one anyone could guess whatever
    its length: blank or nearly one character over and over ("aaaaaaaaaa", "ababababab"), or
    holding the account's own name (a staff member's username, a participant's phone number).
    `field`: the request's name for it."""
    if len(password) < MIN_PASSWORD[kind]:
        raise ValidationFailed("Password too short.", details={field: [f"At least {MIN_PASSWORD[kind]} characters."]})
    if len(set(password.strip())) < 3 or account_name.casefold() in password.casefold():
        raise ValidationFailed("Password too easy to guess.", details={field: [
            "Use at least three different characters, and not the username or phone number."]})


def change_own_password(session: Session, actor: Principal, current: str, new: str, *, keep_token: str) -> None:
    """A signed-in staff member or participant changes their password. The current one proves it
    is the holder (a token alone, left signed in on a shared phone, must not be enough); every
    other session of theirs ends, the one in hand (`keep_token`) stays."""
    holder: StaffUser | Participant | None
    # The row stays locked to the commit: a sign-in with the old password waits, then fails.
    if actor.kind == "staff":
        holder = session.get(StaffUser, actor.id, with_for_update=True, populate_existing=True)
        name = holder.username if holder else ""
    elif actor.kind == "participant":
        holder = session.get(Participant, actor.id, with_for_update=True, populate_existing=True)
        name = holder.phone if holder else ""
    else:
        raise Forbidden("Only staff and participants have passwords.", code="no_password")
    if holder is None or not verify_password(holder.password_hash, current):
        raise ValidationFailed("The current password is wrong.", code="bad_credentials",
                               details={"current_password": ["Wrong password."]})
    check_password(new, name, kind=actor.kind, field="new_password")
    if new == current:
        raise ValidationFailed("Choose a new password.", details={"new_password": ["The same as the current one."]})
    holder.password_hash = hash_password(new)
    revoke_tokens(session, actor.kind, actor.id, keep=keep_token)
    session.flush()
    if isinstance(holder, StaffUser):
        audit(session, actor, "staff.password_change", object_type="staff_user", object_id=holder.id,
              region_path=actor.scope_path)


def set_participant_password(session: Session, person: Participant, password: str) -> None:
    """Set a participant's password (the first, for someone enrolled without one, or a reset when
    it is forgotten): every session of theirs ends. The caller checks who may and audits it."""
    check_password(password, person.phone, kind="participant")
    session.refresh(person, with_for_update=True)  # as change_own_password: sign-ins wait for it
    person.password_hash = hash_password(password)
    revoke_tokens(session, "participant", person.id)
    session.flush()


def refuse_taken_phone(session: Session, phone: str, *, other_than: int | None = None) -> None:
    """A phone number signs one participant in: a second registration of it is a 409 naming it."""
    taken = select(Participant.id).where(Participant.phone == phone)
    if other_than is not None:
        taken = taken.where(Participant.id != other_than)
    if session.scalar(taken):
        raise Conflict("This phone number is already registered.", code="phone_taken",
                       details={"phone": ["Already registered."]})


def create_participant(session: Session, *, name: str, phone: str, region: Region, password: str | None = None,
                       role: str = "grid_leader") -> Participant:
    if region.level != "grid":
        raise ValidationFailed("Participants belong to a grid.", details={"region_id": ["Choose a grid."]})
    refuse_taken_phone(session, phone)
    if password:
        check_password(password, phone, kind="participant")
    participant = Participant(name=name, phone=phone, region_id=region.id, region_path=region.path, role=role,
                              password_hash=hash_password(password) if password else None)
    session.add(participant)
    session.flush()
    return participant


def create_staff(session: Session, *, username: str, display_name: str, role: str, scope: Region, password: str,
                 participant_id: int | None = None) -> StaffUser:
    if role not in STAFF_ROLES:
        raise ValidationFailed("Unknown role.", details={"role": [f"One of {', '.join(STAFF_ROLES)}."]})
    check_password(password, username, kind="staff")
    if scope.level == "grid":
        raise ValidationFailed("Staff scope is a county, township or village.", details={"scope_region_id": ["Not a grid."]})
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise Conflict("Username taken.", code="username_taken", details={"username": ["Already taken."]})
    user = StaffUser(username=username, display_name=display_name, role=role, scope_region_id=scope.id,
                     password_hash=hash_password(password), participant_id=participant_id)
    session.add(user)
    session.flush()
    return user


def deactivate_staff(session: Session, actor: Principal, user_id: int) -> StaffUser:
    """Cut a staff member off at once: inactive, and every token revoked."""
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin deactivates staff.", code="role_required")
    user = session.get(StaffUser, user_id)
    if user is None or not actor.in_scope(user.scope_region.path):
        raise NotFound("Staff user not found.")
    if user.id == actor.id:
        raise Conflict("You cannot deactivate yourself.", code="self_deactivation")
    if user.role in ("admin", "approver") and not is_county_scope(actor):  # as only one creates them
        raise Forbidden("Only a county admin deactivates admins and approvers.", code="scope_required")
    user.active = False
    revoke_tokens(session, "staff", user.id)
    session.flush()
    audit(session, actor, "staff.deactivate", object_type="staff_user", object_id=user.id,
          region_path=user.scope_region.path)
    return user


def revoke_tokens(session: Session, subject_kind: str, subject_id: int, *, keep: str | None = None) -> None:
    """Revoke every live bearer token of a staff user or participant (they stop at once), but
    `keep`, the token in hand, when one's own password change ends only the other sessions."""
    stmt = update(AuthToken).where(AuthToken.subject_kind == subject_kind, AuthToken.subject_id == subject_id,
                                   AuthToken.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(AuthToken.token_digest != digest_secret(keep))
    session.execute(stmt.values(revoked_at=utcnow()))


def staff_principal(user: StaffUser) -> Principal:
    return Principal(kind="staff", id=user.id, label=user.username, role=user.role,
                     scope_region_id=user.scope_region_id, scope_path=user.scope_region.path,
                     participant_id=user.participant_id)


def participant_principal(p: Participant) -> Principal:
    return Principal(kind="participant", id=p.id, label=f"participant:{p.id}", participant_id=p.id)


# --- sign-in ---------------------------------------------------------------------------------

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


# --- partners, outlets, keys -----------------------------------------------------------------

def create_partner(session: Session, *, code: str, name: str, region: Region, name_en: str | None = None) -> Partner:
    if session.scalar(select(Partner.id).where(Partner.code == code)):
        raise Conflict("Partner code taken.", details={"code": ["Already taken."]})
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


def issue_api_key(session: Session, actor: Principal, outlet_id: int, label: str | None = None) -> tuple[str, ApiKey]:
    """Returns the key itself, which is never stored and never shown again."""
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin issues API keys.")
    outlet = get_outlet_in_scope(session, actor, outlet_id)
    secret = new_secret("jy_key")
    key = ApiKey(outlet_id=outlet.id, prefix=secret[:10], key_digest=digest_secret(secret), label=label,
                 created_by=actor.id if actor.is_staff else None)
    session.add(key)
    session.flush()
    audit(session, actor, "api_key.issue", object_type="api_key", object_id=key.id,
          region_path=_outlet_path(session, outlet), details={"outlet_id": outlet.id, "prefix": key.prefix})
    return secret, key


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


def get_participant_in_scope(session: Session, actor: Principal, participant_id: int, *,
                             field: str | None = None) -> Participant:
    """Object-level check: a participant sees only themselves; staff only inside their scope.
    Given the body field the id came in (`field`), the 404 names it; an id in the URL needs none."""
    person = session.get(Participant, participant_id)
    visible = person is not None and (
        (actor.kind == "participant" and actor.id == person.id) or actor.in_scope(person.region_path))
    if not visible:
        raise NotFound("Participant not found.",
                       details={field: ["No such participant in your scope."]} if field else None)
    return person  # type: ignore[return-value]


def describe(session: Session, actor: Principal) -> dict[str, Any]:
    """Who the credentials belong to, in words a screen can show: the principal's fields, its own
    name (a staff member's display name, the participant's name, the outlet's) and, for staff,
    the name of the region their scope covers."""
    name: str | None = None
    scope_name: str | None = None
    scope_level: str | None = None
    if actor.kind == "staff":
        user = session.get(StaffUser, actor.id)
        name = user.display_name if user else None
        region = session.get(Region, actor.scope_region_id) if actor.scope_region_id else None
        scope_name = region.name if region else None
        scope_level = region.level if region else None
    elif actor.kind == "participant":
        person = session.get(Participant, actor.id)
        name = person.name if person else None
    elif actor.kind == "outlet":
        outlet = session.get(Outlet, actor.id)
        name = outlet.name if outlet else None
    return {"kind": actor.kind, "id": actor.id, "label": actor.label, "role": actor.role,
            "scope_region_id": actor.scope_region_id, "partner_id": actor.partner_id,
            "display_name": name, "scope_name": scope_name, "scope_level": scope_level}
