"""Staff endpoints for people, partners, outlet keys and the audit log."""
from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from flask.views import MethodView

from admin import services
from admin.schemas import (
    ApiKeyIn, ApiKeyOut, AuditArgs, AuditPageOut, IssuedKeyOut, MaskedParticipantOut, OutletIn, OutletOut,
    ParticipantChangeIn, ParticipantContactOut, ParticipantIn, ParticipantOut,
    ParticipantPasswordIn, ParticipantStateIn, PartnerIn, PartnerOut, StaffIn, StaffOut,
)
from identity import services as identity
from infra.api import Blueprint
from infra.auth import Principal, require
from infra.db import db

blp = Blueprint("admin_people", __name__, url_prefix="/api/v1/admin",
                description="Staff: participants, staff users, partners, outlet keys, audit log")


@blp.route("/participants")
class Participants(MethodView):
    @require("staff", "clerk")
    @blp.arguments(ParticipantIn)
    @blp.response(201, ParticipantOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Enrol a participant in a grid of my scope; opens their points account."""
        return services.enrol_participant(db.session, actor, **args)


@blp.route("/participants/<int:participant_id>")
class ParticipantDetail(MethodView):
    @require("staff", "clerk", "verifier", "approver", "auditor")
    @blp.response(200, ParticipantOut)
    def get(self, participant_id: int, actor: Principal) -> Any:
        """A participant in my scope (phone masked; the name too, for auditors)."""
        person = identity.get_participant_in_scope(db.session, actor, participant_id)
        identity.audit(db.session, actor, "participant.view", object_type="participant", object_id=person.id,
                       region_path=person.region_path)
        schema = ParticipantOut() if identity.sees_full_names(actor) else MaskedParticipantOut()
        return jsonify(schema.dump(person))  # a Response passes through flask-smorest as is


    @require("staff", "clerk")
    @blp.arguments(ParticipantChangeIn)
    @blp.response(200, ParticipantOut)
    def patch(self, args: dict[str, Any], participant_id: int, actor: Principal) -> Any:
        """Correct a participant's name, phone number or grid (audited)."""
        return services.change_participant(db.session, actor, participant_id, **args)


@blp.route("/participants/<int:participant_id>/<any(deactivate, reactivate):action>")
class ParticipantState(MethodView):
    @require("staff", "clerk")
    @blp.arguments(ParticipantStateIn)
    @blp.response(200, ParticipantOut)
    def post(self, args: dict[str, Any], participant_id: int, action: str, actor: Principal) -> Any:
        """Take a participant off the programme (sign-in refused, tokens and unused codes end at
        once; points and history stay) or back on; a reason is required and audited."""
        return services.set_participant_active(db.session, actor, participant_id, active=action == "reactivate",
                                               reason=args["reason"])


@blp.route("/participants/<int:participant_id>/password")
class ParticipantPassword(MethodView):
    @require("staff", "clerk")
    @blp.arguments(ParticipantPasswordIn)
    @blp.response(204)
    def post(self, args: dict[str, Any], participant_id: int, actor: Principal) -> None:
        """Set a participant's password: the first for someone enrolled without one, or a reset;
        their sessions end; audited without the password."""
        services.set_participant_password(db.session, actor, participant_id, args["password"])


@blp.route("/participants/<int:participant_id>/contact")
class ParticipantContact(MethodView):
    @require("staff", "clerk", "verifier", "approver")
    @blp.response(200, ParticipantContactOut)
    def get(self, participant_id: int, actor: Principal) -> Any:
        """Full phone number, for staff who must call; every look-up is audited."""
        return services.reveal_participant(db.session, actor, participant_id)


@blp.route("/staff")
class Staff(MethodView):
    @require("staff", "admin", "auditor")
    @blp.response(200, StaffOut(many=True))
    def get(self, actor: Principal) -> Any:
        """Staff users within my scope."""
        return services.list_staff(db.session, actor)

    @require("staff", "admin")
    @blp.arguments(StaffIn)
    @blp.response(201, StaffOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Create a staff user with a role and a scope inside mine. Verifiers, approvers and admins
        only a county admin creates (a township or village admin: 403 `scope_required` naming `role`)."""
        return services.create_staff_user(db.session, actor, **args)


@blp.route("/staff/<int:user_id>/deactivate")
class StaffDeactivate(MethodView):
    @require("staff", "admin")
    @blp.response(200, StaffOut)
    def post(self, user_id: int, actor: Principal) -> Any:
        """Deactivate a staff member and revoke every token they hold, at once."""
        return identity.deactivate_staff(db.session, actor, user_id)


@blp.route("/partners")
class Partners(MethodView):
    @require("staff", "admin", "auditor")
    @blp.response(200, PartnerOut(many=True))
    def get(self, actor: Principal) -> Any:
        """Partners and their outlets, within my scope."""
        return services.list_partners(db.session, actor)

    @require("staff", "admin")
    @blp.arguments(PartnerIn)
    @blp.response(201, PartnerOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Register a partner organisation; opens its ledger account for redeemed points."""
        return services.create_partner(db.session, actor, shards=current_app.config["SETTINGS"].system_account_shards,
                                       **args)


@blp.route("/partners/<int:partner_id>/outlets")
class Outlets(MethodView):
    @require("staff", "admin")
    @blp.arguments(OutletIn)
    @blp.response(201, OutletOut)
    def post(self, args: dict[str, Any], partner_id: int, actor: Principal) -> Any:
        """Add an outlet (shop, counter, window) to a partner."""
        return services.create_outlet(db.session, actor, partner_id, **args)


@blp.route("/partners/<int:partner_id>/<any(suspend, resume):action>")
class PartnerStatus(MethodView):
    @require("staff", "admin")
    @blp.response(200, PartnerOut)
    def post(self, partner_id: int, action: str, actor: Principal) -> Any:
        """Suspend or resume a partner: its outlets' keys are refused from the next request on."""
        return services.set_partner_active(db.session, actor, partner_id, action == "resume")


@blp.route("/outlets/<int:outlet_id>/<any(suspend, resume):action>")
class OutletStatus(MethodView):
    @require("staff", "admin")
    @blp.response(200, OutletOut)
    def post(self, outlet_id: int, action: str, actor: Principal) -> Any:
        """Suspend or resume one outlet: its keys are refused from the next request on."""
        return services.set_outlet_active(db.session, actor, outlet_id, action == "resume")


@blp.route("/outlets/<int:outlet_id>/api-keys")
class OutletKeys(MethodView):
    @require("staff", "admin")
    @blp.arguments(ApiKeyIn)
    @blp.response(201, IssuedKeyOut)
    @blp.alt_response(200, schema=IssuedKeyOut, description="A retry with the same idempotency key: the key the "
                      "first request issued, `replayed` true and `key` null (shown in the first answer only)")
    def post(self, args: dict[str, Any], outlet_id: int, actor: Principal) -> tuple[dict[str, Any], int]:
        """Issue an API key for an outlet. The key is in this response only. Send an
        `idempotency_key`: a retry with it (after a timeout) issues no second key but answers 200
        with the first one's id and metadata, the key itself null; if the first answer never
        arrived, revoke that key and issue another with a new idempotency key."""
        secret, key = identity.issue_api_key(db.session, actor, outlet_id, args["label"],
                                             idempotency_key=args["idempotency_key"])
        return {**{c: getattr(key, c) for c in ("id", "outlet_id", "prefix", "label", "created_at", "revoked_at",
                                                "last_used_at")}, "key": secret,
                "replayed": secret is None}, 200 if secret is None else 201


@blp.route("/api-keys/<int:key_id>")
class OutletKey(MethodView):
    @require("staff", "admin")
    @blp.response(200, ApiKeyOut)
    def delete(self, key_id: int, actor: Principal) -> Any:
        """Revoke a key at once."""
        return identity.revoke_api_key(db.session, actor, key_id)


@blp.route("/audit")
class AuditLog(MethodView):
    @require("staff", "auditor")
    @blp.arguments(AuditArgs, location="query")
    @blp.response(200, AuditPageOut)
    def get(self, args: dict[str, Any], actor: Principal) -> dict[str, Any]:
        """Who did what, when, from where, newest first, within my scope."""
        before = args.pop("before")
        rows, nxt = services.audit_log(db.session, actor, before_id=before, **args)
        return {"items": rows, "next": nxt}
