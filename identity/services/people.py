"""Identity services for people: audit, regions and scope, participants and staff, their
passwords and principals."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from infra.auth import STAFF_ROLES, Principal
from infra.db import utcnow
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed, on_unique_violation
from infra.security import digest_secret, hash_password, verify_password
from identity.models import AuditEntry, AuthToken, Outlet, Participant, Region, StaffUser


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


def _phone_taken() -> Conflict:
    return Conflict("This phone number is already registered.", code="phone_taken",
                    details={"phone": ["Already registered."]})


def _username_taken() -> Conflict:
    return Conflict("Username taken.", code="username_taken", details={"username": ["Already taken."]})


# Two enrolments (or corrections) of one number at once both find it free; the second to write
# meets the UNIQUE constraint and answers as it would have a moment later.
on_unique_violation("uq_participants_phone", _phone_taken)
on_unique_violation("uq_staff_users_username", _username_taken)


def refuse_taken_phone(session: Session, phone: str, *, other_than: int | None = None) -> None:
    """A phone number signs one participant in: a second registration of it is a 409 naming it."""
    taken = select(Participant.id).where(Participant.phone == phone)
    if other_than is not None:
        taken = taken.where(Participant.id != other_than)
    if session.scalar(taken):
        raise _phone_taken()


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
                 participant_id: int | None = None, created_by: int | None = None) -> StaffUser:
    if role not in STAFF_ROLES:
        raise ValidationFailed("Unknown role.", details={"role": [f"One of {', '.join(STAFF_ROLES)}."]})
    check_password(password, username, kind="staff")
    if scope.level == "grid":
        raise ValidationFailed("Staff scope is a county, township or village.", details={"scope_region_id": ["Not a grid."]})
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise _username_taken()
    user = StaffUser(username=username, display_name=display_name, role=role, scope_region_id=scope.id,
                     password_hash=hash_password(password), participant_id=participant_id, created_by=created_by)
    session.add(user)
    session.flush()
    return user


def one_hand(session: Session, actor: Principal) -> frozenset[int]:
    """The staff accounts that are no second pair of eyes for the actor: their own, the accounts
    they created, the one that created theirs, and their siblings (accounts created by the same
    admin) when that admin is not county-scope. Whoever creates an account sets its password and
    may hold it, and an admin holds every role: without this, a township admin could create a
    clerk, request as the clerk and approve as the admin, or create a clerk and a verifier and
    work both.

    The county admin is the root of trust: only it may create verifiers, approvers and admins
    (`admin.services.create_staff_user`), so its siblings are not refused here, or every account
    of a county, all descended from the first admin the command line made, would be one hand.
    What guards against a county admin is the audit log: every staff action, the creation of
    each account included (`staff.create`, with creator, role and scope), is recorded there and
    cannot be altered. Empty for anyone but staff."""
    if not actor.is_staff:
        return frozenset()
    created = select(StaffUser.id).where(StaffUser.created_by == actor.id)
    creator = select(StaffUser.created_by).where(StaffUser.id == actor.id, StaffUser.created_by.is_not(None))
    maker = aliased(StaffUser)
    my_maker = select(StaffUser.created_by).where(StaffUser.id == actor.id).scalar_subquery()
    siblings = (select(StaffUser.id).join(maker, maker.id == StaffUser.created_by)
                .join(Region, Region.id == maker.scope_region_id)
                .where(StaffUser.created_by == my_maker, Region.parent_id.is_not(None)))  # not a county admin
    return frozenset({actor.id, *session.scalars(created.union(creator, siblings))})


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
