"""Staff endpoints for redemption: manage scenarios (audited) and monthly settlement."""
from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from infra.api import Blueprint
from infra.auth import Principal, require
from infra.db import db
from redemption.api import settlement_download
from redemption.schemas import ScenarioIn, ScenarioOut, ScenarioPatch, SettlementArgs, SettlementOut
from redemption.services import catalogue, settlement

blp = Blueprint("admin_redemption", __name__, url_prefix="/api/v1/admin",
                description="Staff: scenarios and settlement")


@blp.route("/scenarios")
class Scenarios(MethodView):
    @require("staff", "admin")
    @blp.arguments(ScenarioIn)
    @blp.response(201, ScenarioOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Add a scenario for a partner in my scope."""
        return catalogue.create(db.session, actor, args)


@blp.route("/scenarios/<int:scenario_id>")
class ScenarioDetail(MethodView):
    @require("staff", "admin")
    @blp.arguments(ScenarioPatch)
    @blp.response(200, ScenarioOut)
    def patch(self, args: dict[str, Any], scenario_id: int, actor: Principal) -> Any:
        """Change future terms; past redemptions keep the terms they were made under."""
        return catalogue.update(db.session, actor, scenario_id, args)


@blp.route("/scenarios/<int:scenario_id>/suspend")
class Suspend(MethodView):
    @require("staff", "admin")
    @blp.response(200, ScenarioOut)
    def post(self, scenario_id: int, actor: Principal) -> Any:
        return catalogue.set_status(db.session, actor, scenario_id, "suspended")


@blp.route("/scenarios/<int:scenario_id>/resume")
class Resume(MethodView):
    @require("staff", "admin")
    @blp.response(200, ScenarioOut)
    def post(self, scenario_id: int, actor: Principal) -> Any:
        return catalogue.set_status(db.session, actor, scenario_id, "active")


@blp.route("/settlement")
class Settlement(MethodView):
    @require("staff", "clerk", "approver", "auditor")
    @blp.arguments(SettlementArgs, location="query")
    @blp.response(200, SettlementOut)
    def get(self, args: dict[str, Any], actor: Principal) -> Any:
        """A partner's month: redemptions, refunds, points and yuan, and whether its ledger account
        reconciles exactly. `format=csv` or `xlsx` to download."""
        result = settlement.settle(db.session, actor, args["partner_id"], args["month"],
                                   current_app.config["SETTINGS"].local_timezone, field="partner_id",
                                   fmt=args["format"])
        if args["format"] == "json":
            return result
        return settlement_download(result, args["month"], args["format"])
