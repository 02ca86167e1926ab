"""Redemption endpoints for outlets (API key) and participants: codes, look-up, redeem, holds,
refunds, eligibility, and the public catalogue."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from flask import Response, current_app, request
from flask.views import MethodView
from sqlalchemy import select

from infra.api import Blueprint, json_body
from infra.auth import Principal, current_principal, require
from infra.db import db, utcnow
from infra.limits import Rule, view_limits
from redemption.models import Redemption
from redemption.schemas import (
    CaptureIn, CatalogueArgs, CodeOut, HoldIn, HoldOut, LookupIn, LookupOut, MonthArgs, RedeemIn, RedemptionOut,
    CatalogueScenarioOut, RefundIn, RefundOut, ScenarioOut, SettlementOut, VerdictOut,
)
from redemption.services import catalogue, codes, counter, eligibility, settlement
from redemption.services.config import counter_config

blp = Blueprint("redemption", __name__, url_prefix="/api/v1",
                description="Scenarios, one-time codes and redemption at the counter")


def _settings() -> Any:
    return current_app.config["SETTINGS"]


def _outlet_key() -> str:
    actor = current_principal(unchecked=True)  # a revoked key is refused by the view; this only counts
    return f"outlet:{actor.id if actor else request.remote_addr}"


def _code_key() -> str:
    try:
        body = json_body(request)  # parsed once; the view's arguments reuse it
    except ValueError:
        body = None
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    return "code:" + hashlib.sha256(code.encode()).hexdigest()[:16]


def _unknown_code(response: Response) -> bool:
    return response.status_code == 404


# Codes are guessed through look-up, redeem and hold alike: one budget shared by the three per
# outlet key, tighter ones for failed attempts (unknown codes: per 10 minutes and per day), and one per code tried. Checked
# before the view and its API-key check (an unknown key counts against its address).
CODE_LIMITS = [view_limits(
    Rule(lambda: _settings().lookup_rate_limit, _outlet_key, scope="counter-code"),
    Rule(lambda: _settings().code_failure_limit, _outlet_key, scope="counter-code-failures",
         deduct_when=_unknown_code),
    Rule(lambda: _settings().code_failure_daily_limit, _outlet_key, scope="counter-code-failures-day",
         deduct_when=_unknown_code),
    Rule(lambda: _settings().code_rate_limit, _code_key, scope="counter-code-tried"),
)]


def _participant_key() -> str:
    actor = current_principal()
    return f"participant:{actor.id}" if actor and actor.kind == "participant" else f"addr:{request.remote_addr}"


def _created(obj: Any, replayed: bool) -> tuple[Any, int]:
    return obj, 200 if replayed else 201


@blp.route("/scenarios")
class Catalogue(MethodView):
    @blp.arguments(CatalogueArgs, location="query")
    @blp.response(200, CatalogueScenarioOut(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """The 信易+ scenarios: what each gives, what it costs or requires, where (open outlets)."""
        return catalogue.list_all(db.session, partner_id=args["partner_id"], family=args["family"])


@blp.route("/me/codes")
class MyCodes(MethodView):
    # Each code is a row whose digits no later code may take (the digest is unique): without a
    # limit one participant could fill the table and shrink the space new codes are drawn from.
    decorators = [view_limits(Rule(lambda: _settings().code_issue_limit, _participant_key, scope="me-codes"))]

    @require("participant")
    @blp.response(201, CodeOut)
    def post(self, actor: Principal) -> dict[str, Any]:
        """A one-time code to show at the counter: its digits and its QR image, valid a few minutes.
        The image comes in this answer, never from an address of its own: such an address held the
        live digits, which every access log and proxy on the way then kept."""
        digits, code = codes.issue(db.session, actor, secret_key=_settings().secret_key,
                                   ttl=dt.timedelta(seconds=_settings().code_ttl_seconds))
        return {"code": digits, "expires_at": code.expires_at, "qr_svg": codes.qr_svg(digits).decode()}


@blp.route("/me/eligibility")
class MyEligibility(MethodView):
    @require("participant")
    @blp.response(200, VerdictOut(many=True))
    def get(self, actor: Principal) -> Any:
        """Which of the scenarios I can use now, and why not for the others."""
        s = _settings()
        who = eligibility.standing(db.session, actor.id, now=utcnow(), timezone=s.local_timezone)
        return eligibility.evaluate(db.session, who, catalogue.list_all(db.session))


@blp.route("/me/redemptions")
class MyRedemptions(MethodView):
    @require("participant")
    @blp.response(200, RedemptionOut(many=True))
    def get(self, actor: Principal) -> Any:
        """My redemptions, newest first."""
        return db.session.scalars(select(Redemption).where(Redemption.participant_id == actor.id)
                                  .order_by(Redemption.id.desc()).limit(100)).all()


@blp.route("/outlet/scenarios")
class OutletScenarios(MethodView):
    @require("outlet")
    @blp.response(200, ScenarioOut(many=True))
    def get(self, actor: Principal) -> Any:
        """The scenarios this outlet honours."""
        return counter.outlet_scenarios(db.session, actor)


@blp.route("/outlet/lookup")
class Lookup(MethodView):
    decorators = CODE_LIMITS

    @blp.errors(404)  # a code that is unknown, used or expired: `code_invalid`
    @require("outlet")
    @blp.arguments(LookupIn)
    @blp.response(200, LookupOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Check a code: masked name, grade, and for each of this outlet's scenarios whether it can
        be used now (and why not). Nothing else about the person."""
        return counter.lookup(db.session, actor, args["code"], counter_config())


@blp.route("/outlet/redemptions")
class Redeem(MethodView):
    decorators = CODE_LIMITS
    init_every_request = False  # stateless: one instance, not one per request

    @blp.errors(404)  # a code that is unknown, used or expired: `code_invalid`
    @require("outlet", checked_by_service=True)  # `counter.redeem` checks the key in its statement
    @blp.arguments(RedeemIn)
    @blp.response(201, RedemptionOut)
    @blp.alt_response(200, schema=RedemptionOut, description="A retry with the same key: the original result")
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Redeem a spend scenario (points deducted) or record the use of a privilege (none deducted)."""
        return _created(*counter.redeem(db.session, actor, digits=args["code"], scenario_id=args["scenario_id"],
                                        idem_key=args["idempotency_key"], cfg=counter_config()))


@blp.route("/outlet/redemptions/month")
class OutletMonth(MethodView):
    @require("outlet")
    @blp.arguments(MonthArgs, location="query")
    @blp.response(200, SettlementOut)
    def get(self, args: dict[str, Any], actor: Principal) -> Any:
        """What this counter redeemed and refunded this month, for settlement. `format=csv` or `xlsx`
        to download."""
        result = settlement.settle(db.session, actor, actor.partner_id, args["month"], _settings().local_timezone,
                                   fmt=args["format"])
        return result if args["format"] == "json" else settlement_download(result, args["month"], args["format"])


def settlement_download(result: settlement.Settlement, month: str, fmt: str) -> Response:
    """A month's settlement as a CSV or XLSX download (a Response passes through flask-smorest as is)."""
    name = f"settlement-{result.partner.code}-{month}.{fmt}"
    if fmt == "csv":
        body, mime = settlement.to_csv(result), "text/csv; charset=utf-8"
    else:
        body = settlement.to_xlsx(result)
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, mimetype=mime, headers={"Content-Disposition": f"attachment; filename={name}"})


@blp.route("/outlet/redemptions/<int:redemption_id>/refunds")
class Refunds(MethodView):
    @require("outlet")
    @blp.arguments(RefundIn)
    @blp.response(201, RefundOut)
    @blp.alt_response(200, schema=RefundOut, description="A retry with the same key: the original result")
    def post(self, args: dict[str, Any], redemption_id: int, actor: Principal) -> Any:
        """Refund a mistake within the window, fully or partly, never more than was redeemed."""
        return _created(*counter.refund(db.session, actor, redemption_id, points=args["points"],
                                        reason=args["reason"], idem_key=args["idempotency_key"], cfg=counter_config()))


@blp.route("/outlet/holds")
class Holds(MethodView):
    decorators = CODE_LIMITS

    @blp.errors(404)  # a code that is unknown, used or expired: `code_invalid`
    @require("outlet")
    @blp.arguments(HoldIn)
    @blp.response(201, HoldOut)
    @blp.alt_response(200, schema=HoldOut, description="A retry with the same key: the original result")
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Hold points (they stop being available) until capture, void or expiry."""
        return _created(*counter.hold(db.session, actor, digits=args["code"], scenario_id=args["scenario_id"],
                                      points=args["points"], idem_key=args["idempotency_key"], cfg=counter_config()))


@blp.route("/outlet/holds/<int:hold_id>/capture")
class Capture(MethodView):
    @require("outlet")
    @blp.arguments(CaptureIn)
    @blp.response(201, RedemptionOut)
    @blp.alt_response(200, schema=RedemptionOut, description="A retry with the same key: the original result")
    def post(self, args: dict[str, Any], hold_id: int, actor: Principal) -> Any:
        """Capture the same or a smaller amount; the rest goes back to the participant."""
        return _created(*counter.capture(db.session, actor, hold_id, points=args["points"],
                                         idem_key=args["idempotency_key"], cfg=counter_config()))


@blp.route("/outlet/holds/<int:hold_id>/void")
class Void(MethodView):
    @require("outlet")
    @blp.response(200, HoldOut)
    def post(self, hold_id: int, actor: Principal) -> Any:
        """Release a hold at once."""
        return counter.void(db.session, actor, hold_id, counter_config())
