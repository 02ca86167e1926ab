"""Staff operations that span domains: enrolling people and partners (with their ledger
accounts), and reading the audit log within the reader's scope."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import false, or_, select, update
from sqlalchemy.orm import Session

from infra.auth import Principal
from infra.db import utcnow
from infra.errors import Conflict, Forbidden, ValidationFailed
from identity import services as identity
from identity.models import ApiKey, AuditEntry, Outlet, Participant, Partner, Region, StaffUser
from ledger.models import Account, ApprovalRequest, Entry
from ledger.services import accounts
from redemption.services import codes


def enrol_participant(session: Session, actor: Principal, *, name: str, phone: str, region_id: int,
                      password: str | None, role: str) -> Participant:
    if not actor.has_role("clerk"):
        raise Forbidden("Only a clerk or admin enrols participants.", code="role_required")
    region = identity.get_region(session, region_id, actor)
    person = identity.create_participant(session, name=name, phone=phone, region=region, password=password, role=role)
    accounts.participant_account(session, person.id)
    identity.audit(session, actor, "participant.enrol", object_type="participant", object_id=person.id,
                   region_path=person.region_path, details={"region_id": region.id, "role": role})
    return person


def _record_to_change(session: Session, actor: Principal, participant_id: int) -> Participant:
    """Participants' records are kept by clerks (and admins), each within their scope."""
    if not actor.has_role("clerk"):
        raise Forbidden("Only a clerk or admin changes participants' records.", code="role_required")
    return identity.get_participant_in_scope(session, actor, participant_id)


def change_participant(session: Session, actor: Principal, participant_id: int, *, name: str | None = None,
                       phone: str | None = None, region_id: int | None = None) -> Participant:
    """Correct a participant's record: name, phone number (which they sign in with) or grid, the
    new grid also in the clerk's scope. The audit log names the fields changed, not the values."""
    person = _record_to_change(session, actor, participant_id)
    changed: dict[str, object] = {}
    if name is not None and name != person.name:
        person.name = changed["name"] = name
    if phone is not None and phone != person.phone:
        identity.refuse_taken_phone(session, phone, other_than=person.id)
        person.phone = phone
        changed["phone"] = True
    if region_id is not None and region_id != person.region_id:
        region = identity.get_region(session, region_id, actor, field="region_id")
        if region.level != "grid":
            raise ValidationFailed("Participants belong to a grid.", details={"region_id": ["Choose a grid."]})
        changed["region_id"] = {"from": person.region_id, "to": region.id}
        _follow_to(session, person, region.path)
        person.region_id, person.region_path = region.id, region.path
    if not changed:
        raise ValidationFailed("Nothing to change.", code="nothing_to_change",
                               details={"name": ["Give a new name, phone or region_id."]})
    session.flush()
    identity.audit(session, actor, "participant.change", object_type="participant", object_id=person.id,
                   region_path=person.region_path, details={"changed": sorted(changed),
                                                            **({"region": changed["region_id"]}
                                                               if "region_id" in changed else {})})
    return person


def _follow_to(session: Session, person: Participant, new_path: str) -> None:
    """Corrections of a moved participant's points that still wait for an approver go with them:
    the new area's approvers decide them (and see them), as they would a request made today."""
    account_id = session.scalar(select(Account.id).where(Account.participant_id == person.id))
    if account_id is None:
        return
    touches = select(Entry.posting_id).where(Entry.account_id == account_id)
    session.execute(update(ApprovalRequest).where(
        ApprovalRequest.status == "pending", ApprovalRequest.region_path == person.region_path,
        or_(ApprovalRequest.account_id == account_id, ApprovalRequest.posting_id.in_(touches)))
        .values(region_path=new_path).execution_options(synchronize_session=False))


def set_participant_active(session: Session, actor: Principal, participant_id: int, *, active: bool,
                           reason: str) -> Participant:
    """Take a participant off the programme, or back on. Off: they can no longer sign in, their
    tokens stop at once and their unused codes end, so a code shown a minute before no longer
    redeems; their points, history and contributions stay as they are (the ledger keeps them)."""
    person = _record_to_change(session, actor, participant_id)
    if person.active == active:
        raise Conflict("The participant is already in that state.", code="already_in_state",
                       details={"active": [str(active).lower()]})
    person.active = active
    withdrawn = 0
    if not active:
        identity.revoke_tokens(session, "participant", person.id)
        withdrawn = codes.withdraw(session, person.id, utcnow())
    session.flush()
    identity.audit(session, actor, "participant.deactivate" if not active else "participant.reactivate",
                   object_type="participant", object_id=person.id, region_path=person.region_path,
                   details={"reason": reason, **({"codes_withdrawn": withdrawn} if not active else {})})
    return person


def set_participant_password(session: Session, actor: Principal, participant_id: int, password: str) -> Participant:
    """A clerk sets a participant's password: the first one for someone enrolled without, or a new
    one when it is forgotten (after checking who is asking, as the programme's office does). Every
    session of theirs ends; the log records that it was set, never the password."""
    person = _record_to_change(session, actor, participant_id)
    first = person.password_hash is None
    identity.set_participant_password(session, person, password)
    identity.audit(session, actor, "participant.password_set", object_type="participant", object_id=person.id,
                   region_path=person.region_path, details={"first": first})
    return person


def reveal_participant(session: Session, actor: Principal, participant_id: int) -> Participant:
    """Full contact details for staff who must call the person; the look-up itself is audited."""
    person = identity.get_participant_in_scope(session, actor, participant_id)
    if not actor.has_role("clerk", "verifier", "approver"):
        raise Forbidden("Your role does not see contact details.", code="role_required")
    identity.audit(session, actor, "participant.reveal_contact", object_type="participant", object_id=person.id,
                   region_path=person.region_path)
    return person


# The roles that are a second pair of eyes (verifier, approver) or hand out power (admin): the
# county admin, the root of trust, gives them; a township or village admin could otherwise make
# a clerk and a verifier, hold both passwords, and submit and verify as one person.
TRUSTED_ROLES = ("verifier", "approver", "admin")


def create_staff_user(session: Session, actor: Principal, *, username: str, display_name: str, role: str,
                      scope_region_id: int, password: str, participant_id: int | None) -> StaffUser:
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin creates staff users.", code="role_required")
    scope = identity.get_region(session, scope_region_id, actor, field="scope_region_id")
    if role in TRUSTED_ROLES and not identity.is_county_scope(actor):
        raise Forbidden("Only a county admin creates verifiers, approvers and admins.", code="scope_required",
                        details={"role": ["A township or village admin creates clerks and auditors only."]})
    if participant_id is not None:
        identity.get_participant_in_scope(session, actor, participant_id, field="participant_id")
    user = identity.create_staff(session, username=username, display_name=display_name, role=role, scope=scope,
                                 password=password, participant_id=participant_id, created_by=actor.id)
    identity.audit(session, actor, "staff.create", object_type="staff_user", object_id=user.id,
                   region_path=scope.path, details={"username": username, "role": role})
    return user


def list_staff(session: Session, actor: Principal) -> list[StaffUser]:
    if not actor.has_role("admin", "auditor"):
        raise Forbidden("Your role does not list staff.", code="role_required")
    return [u for u in session.scalars(select(StaffUser).order_by(StaffUser.id)) if actor.in_scope(u.scope_region.path)]


def create_partner(session: Session, actor: Principal, *, code: str, name: str, name_en: str | None, region_id: int,
                   shards: int) -> Partner:
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin registers partners.", code="role_required")
    region = identity.get_region(session, region_id, actor)
    partner = identity.create_partner(session, code=code, name=name, name_en=name_en, region=region)
    accounts.partner_account(session, partner.id, shards)
    identity.audit(session, actor, "partner.create", object_type="partner", object_id=partner.id,
                   region_path=region.path, details={"code": code, "name": name})
    return partner


def create_outlet(session: Session, actor: Principal, partner_id: int, *, name: str, region_id: int,
                  address: str | None) -> Outlet:
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin registers outlets.", code="role_required")
    partner = identity.get_partner_in_scope(session, actor, partner_id)
    region = identity.get_region(session, region_id, actor)
    outlet = identity.create_outlet(session, partner, name=name, region=region, address=address, actor=actor)
    identity.audit(session, actor, "outlet.create", object_type="outlet", object_id=outlet.id,
                   region_path=region.path, details={"partner_id": partner.id, "name": name})
    return outlet


def set_partner_active(session: Session, actor: Principal, partner_id: int, active: bool) -> PartnerView:
    """Suspend or resume a partner: every key of its outlets is refused from the next request on
    (each request checks the partner, the counter's redeem in its own statement), audited."""
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin suspends partners.", code="role_required")
    partner = identity.get_partner_in_scope(session, actor, partner_id)
    partner.active = active
    session.flush()
    _forget_keys(session, [o.id for o in partner.outlets])
    identity.audit(session, actor, f"partner.{'resume' if active else 'suspend'}", object_type="partner",
                   object_id=partner.id, region_path=identity.partner_path(session, partner),
                   details={"code": partner.code})
    return _partner_view(session, actor, partner)


def set_outlet_active(session: Session, actor: Principal, outlet_id: int, active: bool) -> Outlet:
    """Suspend or resume one outlet (its keys stop at once; the partner's others go on), audited."""
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin suspends outlets.", code="role_required")
    outlet = identity.get_outlet_in_scope(session, actor, outlet_id)
    outlet.active = active
    session.flush()
    _forget_keys(session, [outlet.id])
    identity.audit(session, actor, f"outlet.{'resume' if active else 'suspend'}", object_type="outlet",
                   object_id=outlet.id, region_path=identity.get_region(session, outlet.region_id).path,
                   details={"partner_id": outlet.partner_id})
    return outlet


def _forget_keys(session: Session, outlet_ids: list[int]) -> None:
    """This process's memory of the keys, so that none is taken on trust (others check in SQL)."""
    for key_id in session.scalars(select(ApiKey.id).where(ApiKey.outlet_id.in_(outlet_ids))):
        identity.forget_key(key_id)


@dataclass(frozen=True)
class PartnerView:
    """A partner as one staff member sees it: a partner in their scope may have outlets outside
    it (a township's shop with a branch in the next township), and those are not theirs to see.
    A copy rather than the `Partner` row, so `Partner.outlets` stays whole for the session."""

    id: int
    code: str
    name: str
    name_en: str | None
    region_id: int
    active: bool
    outlets: list[Outlet]


def list_partners(session: Session, actor: Principal) -> list[PartnerView]:
    """Partners whose region is in my scope, each with only its outlets located in my scope."""
    if not actor.has_role("admin", "auditor"):
        raise Forbidden("Your role does not list partners.", code="role_required")
    partners = list(session.scalars(select(Partner).join(Region, Region.id == Partner.region_id)
                                    .where(actor.scope_filter(Region.path)).order_by(Partner.id)))
    outlets: dict[int, list[Outlet]] = defaultdict(list)
    for outlet in session.scalars(select(Outlet).join(Region, Region.id == Outlet.region_id)
                                  .where(Outlet.partner_id.in_([p.id for p in partners]),
                                         actor.scope_filter(Region.path)).order_by(Outlet.id)):
        outlets[outlet.partner_id].append(outlet)
    return [PartnerView(id=p.id, code=p.code, name=p.name, name_en=p.name_en, region_id=p.region_id,
                        active=p.active, outlets=outlets[p.id]) for p in partners]


def _partner_view(session: Session, actor: Principal, p: Partner) -> PartnerView:
    """One partner with only its outlets in my scope, as `list_partners` shows it."""
    mine = list(session.scalars(select(Outlet).join(Region, Region.id == Outlet.region_id)
                                .where(Outlet.partner_id == p.id, actor.scope_filter(Region.path)).order_by(Outlet.id)))
    return PartnerView(id=p.id, code=p.code, name=p.name, name_en=p.name_en, region_id=p.region_id,
                       active=p.active, outlets=mine)


def audit_log(session: Session, actor: Principal, *, action: str | None = None, actor_kind: str | None = None,
              actor_id: int | None = None, object_type: str | None = None, object_id: str | None = None,
              since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 50,
              before_id: int | None = None) -> tuple[list[AuditEntry], int | None]:
    """Auditors and admins read actions on objects inside their scope (and their own)."""
    if not actor.has_role("auditor"):
        raise Forbidden("Only an auditor or admin reads the audit log.", code="role_required")
    stmt = (select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
            .where(or_(actor.scope_filter(AuditEntry.region_path),
                       AuditEntry.region_path.is_(None) if identity.is_county_scope(actor) else false(),
                       (AuditEntry.actor_kind == "staff") & (AuditEntry.actor_id == actor.id))))
    for column, value in ((AuditEntry.action, action), (AuditEntry.actor_kind, actor_kind),
                          (AuditEntry.actor_id, actor_id), (AuditEntry.object_type, object_type),
                          (AuditEntry.object_id, object_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at <= until)
    if before_id:
        stmt = stmt.where(AuditEntry.id < before_id)
    rows = list(session.scalars(stmt))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)
