"""Identity services: sign-in, tokens and keys, people and organisations, scope, audit.

Kept in three modules (people and scope; sign-in; partners, outlets and their keys) and named
here as one, as callers have always imported them (`from identity.services import audit`)."""
from __future__ import annotations

# The models, as reachable here as they were from the one module (`identity.StaffUser` in tests).
from identity.models import ApiKey, AuditEntry, AuthToken, Outlet, Participant, Partner, Region, StaffUser
from identity.services.outlets import (
    create_outlet, create_partner, get_outlet_in_scope, get_partner_in_scope, issue_api_key, partner_path,
    revoke_api_key,
)
from identity.services.people import (
    MIN_PASSWORD, audit, change_own_password, check_password, create_participant, create_region, create_staff,
    deactivate_staff, describe, get_participant_in_scope, get_region, is_county_scope, one_hand,
    participant_principal, refuse_taken_phone, revoke_tokens, sees_full_names, set_participant_password,
    staff_principal,
)
from identity.services.signin import (
    distrust_outlet, forget_key, issue_token, login_participant, login_staff, logout, mask_typed_name,
    principal_for, record_failed_login, unchecked_outlet,
)

__all__ = [
    "ApiKey", "AuditEntry", "AuthToken", "Outlet", "Participant", "Partner", "Region", "StaffUser",
    "MIN_PASSWORD", "audit", "change_own_password", "check_password", "create_outlet", "create_partner",
    "create_participant", "create_region", "create_staff", "deactivate_staff", "describe", "distrust_outlet",
    "forget_key", "get_outlet_in_scope", "get_participant_in_scope", "get_partner_in_scope", "get_region",
    "is_county_scope", "issue_api_key", "issue_token", "login_participant", "login_staff", "logout",
    "mask_typed_name", "one_hand", "participant_principal", "partner_path", "principal_for", "record_failed_login",
    "refuse_taken_phone", "revoke_api_key", "revoke_tokens", "sees_full_names", "set_participant_password",
    "staff_principal", "unchecked_outlet",
]
