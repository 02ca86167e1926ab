"""Participant-facing ledger endpoints: my balance, my statement."""
from __future__ import annotations

from typing import Any

from flask.views import MethodView

from infra.api import Blueprint
from infra.auth import Principal, require
from infra.db import db, utcnow
from ledger.schemas import BalanceArgs, BalanceOut, StatementArgs, StatementOut
from ledger.services import accounts

blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="A participant's own points")


@blp.route("/balance")
class MyBalance(MethodView):
    @require("participant")
    @blp.arguments(BalanceArgs, location="query")
    @blp.response(200, BalanceOut)
    def get(self, args: dict[str, Any], actor: Principal) -> dict[str, Any]:
        """My current balance, or my balance at a past moment (`at`)."""
        account = accounts.my_account(db.session, actor)
        if args["at"] is not None:
            return {"account_id": account.id, "balance": accounts.balance_at(db.session, account.id, args["at"]),
                    "as_of": args["at"]}
        return {"account_id": account.id, "balance": accounts.balance(db.session, account.id), "as_of": utcnow()}


@blp.route("/statement")
class MyStatement(MethodView):
    @require("participant")
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, StatementOut)
    def get(self, args: dict[str, Any], actor: Principal) -> dict[str, Any]:
        """Every movement of my points, newest first, with its reason."""
        account = accounts.my_account(db.session, actor)
        lines, nxt = accounts.statement(db.session, account, limit=args["limit"], before_id=args["before"],
                                        since=args["since"], until=args["until"])
        return {"items": lines, "next": nxt}
