"""Sign-in endpoints. Thin: validate, call one service, dump."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, request
from flask.views import MethodView

from infra.api import Blueprint
from infra.auth import current_principal
from infra.db import db
from infra.errors import Unauthorized
from infra.limits import limiter
from identity import services
from identity.schemas import ParticipantLoginIn, PrincipalOut, StaffLoginIn, TokenOut

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Sign in and out (staff and participants)")


def _ttl() -> dt.timedelta:
    return dt.timedelta(hours=current_app.config["SETTINGS"].token_ttl_hours)


def _login_limit() -> str:
    return current_app.config["SETTINGS"].login_rate_limit


@blp.route("/staff/login")
class StaffLogin(MethodView):
    decorators = [limiter.limit(_login_limit, key_func=lambda: f"login:{request.remote_addr}")]

    @blp.arguments(StaffLoginIn)
    @blp.response(201, TokenOut)
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Staff sign-in with username and password (rate-limited per address)."""
        token, expires, user = services.login_staff(db.session, args["username"], args["password"], _ttl(),
                                                    ip=request.remote_addr, user_agent=request.user_agent.string)
        return {"token": token, "expires_at": expires, "kind": "staff", "role": user.role}


@blp.route("/participant/login")
class ParticipantLogin(MethodView):
    decorators = [limiter.limit(_login_limit, key_func=lambda: f"login:{request.remote_addr}")]

    @blp.arguments(ParticipantLoginIn)
    @blp.response(201, TokenOut)
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Participant sign-in with phone number and password (rate-limited per address)."""
        token, expires, _person = services.login_participant(db.session, args["phone"], args["password"], _ttl())
        return {"token": token, "expires_at": expires, "kind": "participant", "role": None}


@blp.route("/logout")
class Logout(MethodView):
    @blp.response(204)
    def post(self) -> None:
        """Revoke the bearer token used for this request."""
        actor = current_principal()
        header = request.headers.get("Authorization", "")
        if actor is None or actor.kind not in ("staff", "participant"):
            raise Unauthorized("Sign in first.")
        services.logout(db.session, actor, header[7:].strip())


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, PrincipalOut)
    def get(self) -> Any:
        """Who the credentials belong to."""
        actor = current_principal()
        if actor is None:
            raise Unauthorized("Sign in first.")
        return actor
