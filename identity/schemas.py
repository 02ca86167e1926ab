"""Sign-in and identity schemas. Load and dump kept apart; personal data masked on the way out."""
from __future__ import annotations

from marshmallow import fields, validate

from infra.api import DumpSchema, LoadSchema

PHONE = validate.Regexp(r"^1[0-9]{10}\Z", error="A mainland mobile number: 11 digits starting with 1.")


class StaffLoginIn(LoadSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=50))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)


class ParticipantLoginIn(LoadSchema):
    phone = fields.String(required=True, validate=PHONE)
    password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)


class PasswordChangeIn(LoadSchema):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)
    new_password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True, metadata={
        "description": "Staff at least 10 characters, participants 8; at least three different characters, "
                       "not the username or phone number"})


class TokenOut(DumpSchema):
    token = fields.String(metadata={"description": "Send as `Authorization: Bearer <token>`. Shown once."})
    expires_at = fields.DateTime()
    kind = fields.String()
    role = fields.String(allow_none=True)


class PrincipalOut(DumpSchema):
    kind = fields.String()
    id = fields.Integer()
    label = fields.String()
    role = fields.String(allow_none=True)
    scope_region_id = fields.Integer(allow_none=True)
    partner_id = fields.Integer(allow_none=True)
    display_name = fields.String(allow_none=True, metadata={
        "description": "The staff member's display name, the participant's own name, or the outlet's name"})
    scope_name = fields.String(allow_none=True, metadata={"description": "Staff: the region their scope covers"})
    scope_level = fields.String(allow_none=True, metadata={
        "description": "Staff: that region's level (county, township, village, grid); whole-ledger work is "
                       "for county staff"})
