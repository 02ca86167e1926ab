"""Sign-in endpoints. Thin: validate, call one service, dump."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, request
from flask.views import MethodView

from infra.api import Blueprint, json_body
from infra.auth import Principal, current_principal, require
from infra.db import db
from infra.errors import Unauthorized
from infra.limits import limiter
from identity import services
from identity.schemas import ParticipantLoginIn, PasswordChangeIn, PrincipalOut, StaffLoginIn, TokenOut

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Sign in and out (staff and participants)")


def _ttl() -> dt.timedelta:
    return dt.timedelta(hours=current_app.config["SETTINGS"].token_ttl_hours)


def _login_limit() -> str:
    return current_app.config["SETTINGS"].login_rate_limit


def _login_name() -> str:
    try:
        body = json_body(request)  # parsed once; the view's arguments reuse it
    except ValueError:  # not JSON: the view's arguments answer that
        body = None
    name = body.get("username") or body.get("phone") if isinstance(body, dict) else None
    return f"login-name:{str(name)[:50]}"


# Per address, and per account name so that guesses spread over many addresses are slowed too.
LOGIN_LIMITS = [limiter.limit(_login_limit, key_func=lambda: f"login:{request.remote_addr}"),
                limiter.limit(_login_limit, key_func=_login_name)]


@blp.route("/staff/login")
class StaffLogin(MethodView):
    decorators = LOGIN_LIMITS

    @blp.errors(401)  # wrong name or password: `bad_credentials`
    @blp.arguments(StaffLoginIn)
    @blp.response(201, TokenOut)
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Staff sign-in with username and password (rate-limited per address and per name)."""
        try:
            token, expires, user = services.login_staff(db.session, args["username"], args["password"], _ttl(),
                                                        ip=request.remote_addr, user_agent=request.user_agent.string)
        except Unauthorized:
            db.session.rollback()  # nothing of the failed attempt is kept, except its audit record
            with db.unit_of_work() as session:
                services.record_failed_login(session, args["username"], request.remote_addr,
                                             request.user_agent.string)
            raise
        return {"token": token, "expires_at": expires, "kind": "staff", "role": user.role}


@blp.route("/participant/login")
class ParticipantLogin(MethodView):
    decorators = LOGIN_LIMITS

    @blp.errors(401)  # wrong name or password: `bad_credentials`
    @blp.arguments(ParticipantLoginIn)
    @blp.response(201, TokenOut)
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Participant sign-in with phone number and password (rate-limited per address)."""
        token, expires, _person = services.login_participant(db.session, args["phone"], args["password"], _ttl())
        return {"token": token, "expires_at": expires, "kind": "participant", "role": None}


# Staff and participants sign in with a bearer token; outlets have an API key and no session.
SIGNED_IN = ("staff", "participant")


def _bearer_token() -> str:
    """The bearer token of this request (`require(SIGNED_IN)` has found whose it is)."""
    return request.headers.get("Authorization", "")[7:].strip()


@blp.route("/logout")
class Logout(MethodView):
    @require(SIGNED_IN)
    @blp.response(204)
    def post(self, actor: Principal) -> None:
        """Revoke the bearer token used for this request."""
        services.logout(db.session, actor, _bearer_token())


def _password_key() -> str:
    actor = current_principal()
    return f"password:{actor.kind}:{actor.id}" if actor else f"password:{request.remote_addr}"


@blp.route("/password")
class Password(MethodView):
    # Guessing the current password with a token left signed in is slowed like guessing at sign-in.
    decorators = [limiter.limit(_login_limit, key_func=_password_key)]

    @require(SIGNED_IN)
    @blp.arguments(PasswordChangeIn)
    @blp.response(204)
    def post(self, args: dict[str, Any], actor: Principal) -> None:
        """Change my password (staff or participant): the current one is required; every other
        session of mine ends, this one stays."""
        services.change_own_password(db.session, actor, args["current_password"], args["new_password"],
                                     keep_token=_bearer_token())


@blp.route("/me")
class Me(MethodView):
    @require(("staff", "participant", "outlet"))
    @blp.response(200, PrincipalOut)
    def get(self, actor: Principal) -> Any:
        """Who the credentials belong to, with their name and, for staff, their scope's name."""
        return services.describe(db.session, actor)
