"""Participant-facing scoring endpoints: submit my work, follow it, my grade, the public notices
of my village and objections, and the reference lists (screening list, rules in force)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, request, send_file
from flask.views import MethodView
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from infra.api import Blueprint
from infra.auth import Principal, require
from infra.clock import local_date
from infra.db import db
from infra.errors import ValidationFailed, too_large
from infra.security import CONTROL_CHARACTERS
from scoring.models import Contribution, ContributionMember
from scoring.schemas import (
    EvidenceOut, GradeOut, MemberContributionDetailOut, MemberContributionPageOut, MineArgs, MyContributionIn,
    NoticeArgs,
    NoticePageOut, ObjectionIn, ObjectionOut, RuleSetOut, ScreeningOut,
)
from scoring.services import evidence, grades, notices, rules, submissions

blp = Blueprint("scoring", __name__, url_prefix="/api/v1", description="Contributions, grades and public notices")


def storage(kind: str) -> Path:
    return Path(current_app.config["SETTINGS"].instance_dir) / kind


# What `uploaded_file` reads, for the spec (so /api/docs offers a file picker): `blp.doc(**FILE_UPLOAD)`.
FILE_UPLOAD = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


def uploaded_file(max_bytes: int) -> tuple[str, bytes]:
    """The multipart field `file`, at most `max_bytes`. Too large is a 413 naming `file` and its
    limit, whether the file alone is over it or the whole request is over what the app reads
    (MAX_CONTENT_LENGTH, `jieyou.app.MAX_REQUEST_BYTES`: the body is then not read at all)."""
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        raise too_large("file", max_bytes) from None
    if upload is None:
        raise ValidationFailed("Attach a file.", details={"file": ["Send it as multipart field `file`."]})
    content = upload.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise too_large("file", max_bytes)
    # A name is only a label: control characters (NUL, which PostgreSQL text refuses) are dropped.
    return CONTROL_CHARACTERS.sub("", upload.filename or "") or "upload", content


def submitted(actor: Principal, args: dict[str, Any]) -> tuple[Any, int]:
    """Submit the work once per idempotency key: 201 with a new contribution, 200 with the one
    an earlier request with the key made."""
    contribution, replayed = submissions.submit_once(
        db.session, actor, submissions.to_submission(args), idempotency_key=args["idempotency_key"],
        max_age_days=current_app.config["SETTINGS"].contribution_max_age_days)
    return contribution, 200 if replayed else 201


@blp.route("/me/contributions")
class MyContributions(MethodView):
    @require("participant")
    @blp.arguments(MineArgs, location="query")
    @blp.response(200, MemberContributionPageOut)
    def get(self, args: dict[str, Any], actor: Principal) -> dict[str, Any]:
        """The work I took part in, newest first, with its state and points."""
        stmt = (select(Contribution).join(ContributionMember).where(ContributionMember.participant_id == actor.id)
                .order_by(Contribution.id.desc()).limit(args["limit"] + 1))
        if args["state"] != "all":
            stmt = stmt.where(Contribution.state == args["state"])
        if args["after"]:
            stmt = stmt.where(Contribution.id < args["after"])
        rows = list(db.session.scalars(stmt))
        return {"items": rows[: args["limit"]], "next": rows[args["limit"] - 1].id if len(rows) > args["limit"] else None}

    @require("participant")
    @blp.arguments(MyContributionIn)
    @blp.response(201, MemberContributionDetailOut)
    @blp.alt_response(200, schema=MemberContributionDetailOut,
                      description="Sent again with the same idempotency key: the contribution the first made")
    def post(self, args: dict[str, Any], actor: Principal) -> tuple[Any, int]:
        """Report my work. Members default to me; joint work names everyone with their shares. The
        `idempotency_key` (one per report) makes sending it again safe: the same key and content
        answer 200 with the first contribution, the same key with other content is a 422. Work
        is dated today or up to `CONTRIBUTION_MAX_AGE_DAYS` (90) days back."""
        args.setdefault("members", [{"participant_id": actor.id, "share": 1}])
        return submitted(actor, args)


@blp.route("/me/contributions/<int:contribution_id>")
class MyContribution(MethodView):
    @require("participant")
    @blp.response(200, MemberContributionDetailOut)
    def get(self, contribution_id: int, actor: Principal) -> Any:
        """One of my contributions with its history, objections and evidence."""
        return submissions.get_visible(db.session, actor, contribution_id)


# Evidence and notices are for the people of a contribution and the staff over them.
SIGNED_IN = ("participant", "staff")


@blp.route("/contributions/<int:contribution_id>/evidence")
class Evidence(MethodView):
    @require(SIGNED_IN)
    @blp.doc(**FILE_UPLOAD)
    @blp.response(201, EvidenceOut)
    def post(self, contribution_id: int, actor: Principal) -> Any:
        """Attach a photo or PDF (JPEG, PNG, WebP, PDF; 10 MB) to a contribution I may see.
        A larger file is a 413 `payload_too_large` naming `file` and the limit."""
        name, content = uploaded_file(evidence.MAX_BYTES)
        return evidence.attach(db.session, actor, contribution_id, name, content, storage("evidence"))


@blp.route("/contributions/<int:contribution_id>/evidence/<int:evidence_id>")
class EvidenceFile(MethodView):
    @require(SIGNED_IN)
    @blp.response(200, description="The file itself")
    def get(self, contribution_id: int, evidence_id: int, actor: Principal) -> Any:
        """Download evidence: only for members of the contribution and staff in scope."""
        record, path = evidence.open_file(db.session, actor, contribution_id, evidence_id, storage("evidence"))
        response = send_file(path, mimetype=record.content_type, as_attachment=True, download_name=record.filename)
        response.headers["Cache-Control"] = "private, no-store"
        return response


@blp.route("/me/grade")
class MyGrade(MethodView):
    @require("participant")
    @blp.response(200, GradeOut)
    def get(self, actor: Principal) -> Any:
        """My credit grade from points earned in the last 12 months, and what the next grade needs."""
        return grades.grade(db.session, actor.id)


@blp.route("/notices")
class Notices(MethodView):
    @require(SIGNED_IN)
    @blp.arguments(NoticeArgs, location="query")
    @blp.response(200, NoticePageOut)
    def get(self, args: dict[str, Any], actor: Principal) -> Any:
        """Proposed awards on public notice in my village (staff: in their scope), the notice ending
        soonest first, a page at a time (`next` is the `after` of the next page); `objected=true`:
        only those with an open objection."""
        return notices.notices_for(db.session, actor, limit=args["limit"], after=args["after"],
                                   objected=args["objected"])


@blp.route("/notices/<int:contribution_id>/objections")
class Objections(MethodView):
    @require("participant")
    @blp.arguments(ObjectionIn)
    @blp.response(201, ObjectionOut)
    def post(self, args: dict[str, Any], contribution_id: int, actor: Principal) -> Any:
        """Object to a proposed award in my village; it is held until staff resolve the objection."""
        return notices.lodge(db.session, actor, contribution_id, args["text"])


@blp.route("/reference/screening-list")
class Screening(MethodView):
    @blp.response(200, ScreeningOut)
    def get(self) -> Any:
        """The screening list: 8 categories, 26 items, and the four warning colours."""
        return rules.screening_list()


@blp.route("/reference/rules")
class RulesInForce(MethodView):
    @blp.response(200, RuleSetOut)
    def get(self) -> Any:
        """The rule set in force today: the 12 indicators, their points and caps, and the grades."""
        return rules.in_force(db.session, local_date())
