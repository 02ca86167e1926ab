"""Schemas for staff administration: people, partners, keys and the audit log."""
from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from identity.schemas import PHONE
from identity.services import mask_typed_name
from infra.api import DumpSchema, Id, IdempotentArgs, Int4, LoadSchema, UtcDateTime, names, page_schema, words
from infra.auth import STAFF_ROLES
from infra.security import mask_name, mask_phone
from ledger.services.accounts import query_for_audit

PARTICIPANT_ROLES = ("grid_leader", "part_time_mediator", "family_representative", "silver_mediator", "expert")


class ParticipantIn(LoadSchema):
    name = fields.String(required=True, validate=names(max=50))
    phone = fields.String(required=True, validate=PHONE)
    region_id = Id(required=True, metadata={"description": "The participant's grid"})
    role = fields.String(load_default="grid_leader", validate=validate.OneOf(PARTICIPANT_ROLES))
    password = fields.String(load_default=None, validate=validate.Length(min=8, max=200), load_only=True)


class ParticipantChangeIn(LoadSchema):
    """Only the fields to change."""

    name = fields.String(validate=names(max=50))
    phone = fields.String(validate=PHONE, metadata={"description": "The number they sign in with"})
    region_id = Id(metadata={"description": "The participant's new grid, in your scope"})


class ParticipantPasswordIn(LoadSchema):
    password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True, metadata={
        "description": "At least 8 characters, three different ones, not the phone number"})


class ParticipantStateIn(LoadSchema):
    reason = fields.String(required=True, validate=words(max=500))


class ParticipantOut(DumpSchema):
    id = fields.Integer()
    name = fields.String(metadata={"description": "Full for staff who work with people; masked for auditors"})
    phone = fields.Function(lambda p: mask_phone(p.phone))
    region_id = fields.Integer()
    role = fields.String()
    active = fields.Boolean()
    created_at = fields.DateTime()


class MaskedParticipantOut(ParticipantOut):
    """As auditors see a participant: they check the books, not the people."""

    name = fields.Function(lambda p: mask_name(p.name))


class ParticipantContactOut(ParticipantOut):
    phone = fields.String()


class StaffIn(LoadSchema):
    username = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_.-]{3,50}\Z",
                                                                     error="3-50 lowercase letters, digits, _ . -"))
    display_name = fields.String(required=True, validate=names(max=50))
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    scope_region_id = Id(required=True)
    password = fields.String(required=True, validate=validate.Length(min=10, max=200), load_only=True)
    participant_id = Id(load_default=None)


class StaffOut(DumpSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    scope_region_id = fields.Integer()
    active = fields.Boolean()
    created_by = fields.Integer(allow_none=True, metadata={
        "description": "The admin who created the account (null: the command line); never its second pair of eyes"})


class PartnerIn(LoadSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{2,32}\Z"))
    name = fields.String(required=True, validate=names(max=100))
    name_en = fields.String(load_default=None, validate=validate.Length(max=100))
    region_id = Id(required=True)


class OutletIn(LoadSchema):
    name = fields.String(required=True, validate=names(max=100))
    region_id = Id(required=True)
    address = fields.String(load_default=None, validate=validate.Length(max=200))


class OutletOut(DumpSchema):
    id = fields.Integer()
    partner_id = fields.Integer()
    name = fields.String()
    address = fields.String(allow_none=True)
    region_id = fields.Integer()
    active = fields.Boolean()


class PartnerOut(DumpSchema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    region_id = fields.Integer()
    active = fields.Boolean()
    outlets = fields.List(fields.Nested(OutletOut))


class ApiKeyIn(IdempotentArgs):
    label = fields.String(load_default=None, validate=validate.Length(max=100))


class ApiKeyOut(DumpSchema):
    id = fields.Integer()
    outlet_id = fields.Integer()
    prefix = fields.String()
    label = fields.String(allow_none=True)
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)


class IssuedKeyOut(ApiKeyOut):
    key = fields.String(allow_none=True, metadata={
        "description": "The key itself. Shown once, in the answer that issued it; only its digest is kept, so a "
                       "retry with the same idempotency key answers null here."})
    replayed = fields.Boolean(metadata={
        "description": "True when this answers a retry with the same idempotency key: the key was issued by the "
                       "first request and shown in its answer only; if that answer was lost, revoke the key and "
                       "issue a new one."})


class AuditArgs(LoadSchema):
    action = fields.String(load_default=None)
    actor_kind = fields.String(load_default=None, validate=validate.OneOf(["staff", "participant", "outlet", "system"]))
    actor_id = Id(load_default=None, min=0, metadata={"description": "0: the system"})
    object_type = fields.String(load_default=None)
    object_id = fields.String(load_default=None)
    since = UtcDateTime(load_default=None)
    until = UtcDateTime(load_default=None)
    limit = Int4(load_default=50, min=1, max=200)
    before = Id(load_default=None)


def masked_details(entry: Any) -> dict[str, Any]:
    """An entry's details as they are recorded now. Searches and failed sign-ins recorded before
    queries and typed usernames were masked kept them as typed; the log is append-only, so they
    are masked when read."""
    details = dict(entry.details or {})
    if entry.action == "ledger.accounts.search" and "kind" not in details and details.get("q"):
        details.update(query_for_audit(str(details["q"])))
    elif entry.action == "staff.login_failed" and "known" not in details and entry.object_id is None:
        details.update(username=mask_typed_name(str(details.get("username", ""))), known=False)
    return details


class AuditOut(DumpSchema):
    id = fields.Integer()
    at = fields.DateTime()
    actor_kind = fields.String()
    actor_id = fields.Integer()
    actor_label = fields.String()
    action = fields.String()
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    details = fields.Function(masked_details, metadata={"type": "object"})
    ip = fields.String(allow_none=True)


AuditPageOut = page_schema(AuditOut, "AuditPageOut")
