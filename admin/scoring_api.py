"""Staff endpoints for scoring: the verification queue, four-eyes verification, rejection and
revocation, objections, bulk import, rule versions, grades and honours with exports."""
from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify
from flask.views import MethodView
from sqlalchemy import select

from identity.services import audit, get_participant_in_scope, sees_full_names
from infra.api import INT4_MAX, Blueprint
from infra.auth import Principal, require
from infra.db import after_commit, db
from scoring import tasks
from scoring.models import Contribution
from scoring.schemas import (
    BulkVerifyIn, CandidateOut, ContributionDetailOut, ContributionIn, ContributionOut, ContributionPageOut,
    DraftIn, GradeOut, HonourArgs, ImportJobOut, MaskedCandidateOut, NominationIn, NominationOut, QueueArgs, ReasonIn,
    ResolveIn, RuleSetEditIn, RuleSetOut, ValidationReportOut, VerifyIn,
)
from scoring.services import grades, imports, notices, rules, submissions, workflow
from scoring.api import FILE_UPLOAD, storage, submitted, uploaded_file

blp = Blueprint("admin_scoring", __name__, url_prefix="/api/v1/admin",
                description="Staff: verification queue, awards, objections, imports, rules, grades, honours")

STAFF = ("clerk", "verifier", "approver", "auditor")
VERSION = f"<int(max={INT4_MAX}):version>"  # an INTEGER column: a larger version is a 404


@blp.route("/contributions")
class Queue(MethodView):
    @require("staff", *STAFF)
    @blp.arguments(QueueArgs, location="query")
    @blp.response(200, ContributionPageOut)
    def get(self, args: dict[str, Any], actor: Principal) -> dict[str, Any]:
        """The queue in my scope, oldest first; possible duplicates are flagged in `duplicate_of`."""
        stmt = (select(Contribution).where(actor.scope_filter(Contribution.region_path))
                .order_by(Contribution.id).limit(args["limit"] + 1))
        if args["state"] != "all":
            stmt = stmt.where(Contribution.state == args["state"])
        if args["indicator_code"]:
            stmt = stmt.where(Contribution.indicator_code == args["indicator_code"])
        if args["duplicates_only"]:
            stmt = stmt.where(Contribution.duplicate_suspect.is_(True))
        if args["after"]:
            stmt = stmt.where(Contribution.id > args["after"])
        rows = list(db.session.scalars(stmt))
        items = rows[: args["limit"]]
        audit(db.session, actor, "contribution.list", region_path=actor.scope_path, details={
            "state": args["state"], "results": len(items),
            **{k: args[k] for k in ("indicator_code", "duplicates_only", "after") if args[k]}})
        return {"items": workflow.with_reach(db.session, actor, items), "next": rows[args["limit"] - 1].id if len(rows) > args["limit"] else None}

    @require("staff", "clerk", "verifier", "approver")
    @blp.arguments(ContributionIn)
    @blp.response(201, ContributionDetailOut)
    @blp.alt_response(200, schema=ContributionDetailOut,
                      description="Sent again with the same idempotency key: the contribution the first made")
    def post(self, args: dict[str, Any], actor: Principal) -> tuple[Any, int]:
        """Record a contribution on a participant's behalf (a clerk); someone else must verify it.
        With an `idempotency_key`, sending it again answers 200 with the first contribution (the
        same key with other content is a 422). Work is dated today or up to
        `CONTRIBUTION_MAX_AGE_DAYS` (90) days back."""
        if "members" not in args:
            args["members"] = []
        contribution, status = submitted(actor, args)
        return workflow.with_reach(db.session, actor, [contribution])[0], status


@blp.route("/contributions/<int:contribution_id>")
class ContributionDetail(MethodView):
    @require("staff", *STAFF)
    @blp.response(200, ContributionDetailOut)
    def get(self, contribution_id: int, actor: Principal) -> Any:
        """A contribution in my scope with its history, objections and evidence. Reading it is audited."""
        contribution = submissions.get_visible(db.session, actor, contribution_id)
        audit(db.session, actor, "contribution.view", object_type="contribution", object_id=contribution.id,
              region_path=contribution.region_path)
        return workflow.with_reach(db.session, actor, [contribution])[0]


def _enqueue_award_if_due(items: list[workflow.Verified]) -> None:
    if any(v.notice_until <= v.verified_at for v in items):
        after_commit(db.session, lambda: tasks.award_due.delay())


@blp.route("/contributions/<int:contribution_id>/verify")
class Verify(MethodView):
    @require("staff", "verifier", "approver")
    @blp.arguments(VerifyIn)
    @blp.response(200, ContributionOut)
    def post(self, args: dict[str, Any], contribution_id: int, actor: Principal) -> Any:
        """Verify (never your own or one you take part in): scores it and opens the public notice."""
        items = workflow.verify_many(db.session, actor, [contribution_id], note=args["note"])
        _enqueue_award_if_due(items)
        return workflow.load(db.session, [contribution_id])[0]


@blp.route("/contributions/verify")
class BulkVerify(MethodView):
    @require("staff", "verifier", "approver")
    @blp.arguments(BulkVerifyIn)
    @blp.response(200, ContributionOut(many=True))
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Verify many at once (all or none)."""
        items = workflow.verify_many(db.session, actor, args["contribution_ids"], note=args["note"])
        _enqueue_award_if_due(items)
        return workflow.load(db.session, [v.id for v in items])


@blp.route("/contributions/<int:contribution_id>/reject")
class Reject(MethodView):
    @require("staff", "verifier", "approver")
    @blp.arguments(ReasonIn)
    @blp.response(200, ContributionOut)
    def post(self, args: dict[str, Any], contribution_id: int, actor: Principal) -> Any:
        """Reject with a reason (before the award)."""
        return workflow.reject(db.session, actor, contribution_id, args["reason"])


@blp.route("/contributions/<int:contribution_id>/revoke")
class Revoke(MethodView):
    @require("staff", "approver")
    @blp.arguments(ReasonIn)
    @blp.response(200, ContributionOut)
    def post(self, args: dict[str, Any], contribution_id: int, actor: Principal) -> Any:
        """Revoke an award: a reversal of exactly its points, with the reason."""
        return workflow.revoke(db.session, actor, contribution_id, args["reason"])


@blp.route("/objections/<int:objection_id>/resolve")
class ResolveObjection(MethodView):
    @require("staff", "verifier", "approver")
    @blp.arguments(ResolveIn)
    @blp.response(200)
    def post(self, args: dict[str, Any], objection_id: int, actor: Principal) -> dict[str, Any]:
        """Uphold (the contribution is rejected) or dismiss (the award may go ahead). An award
        already made is revoked first: upholding an objection to it is a 409 `already_awarded`."""
        objection = notices.resolve(db.session, actor, objection_id, uphold=args["uphold"],
                                    resolution=args["resolution"])
        after_commit(db.session, lambda: tasks.award_due.delay())
        return {"id": objection.id, "status": objection.status}


@blp.route("/imports")
class Imports(MethodView):
    @require("staff", "clerk", "verifier", "approver")
    @blp.doc(**FILE_UPLOAD)
    @blp.response(202, ImportJobOut)
    def post(self, actor: Principal) -> Any:
        """Upload a CSV or XLSX export from the grid system; it is checked and imported in the
        background. Any bad row fails the whole file, listing every bad row. A file over 5 MB is a
        413 `payload_too_large` naming `file` and the limit."""
        name, content = uploaded_file(imports.MAX_BYTES)
        job = imports.create_job(db.session, actor, name, content, storage("imports"))
        job_id = job.id
        after_commit(db.session, lambda: tasks.run_import.delay(job_id))
        return job


@blp.route("/imports/<int:job_id>")
class ImportStatus(MethodView):
    @require("staff", *STAFF)
    @blp.response(200, ImportJobOut)
    def get(self, job_id: int, actor: Principal) -> Any:
        """Progress, and every bad row with its line and reason."""
        return imports.get_job(db.session, actor, job_id)


@blp.route("/rules")
class RuleVersions(MethodView):
    @require("staff", *STAFF)
    @blp.response(200, RuleSetOut(many=True))
    def get(self, actor: Principal) -> Any:
        """Every version, newest first."""
        return rules.list_versions(db.session)

    @require("staff", "admin")
    @blp.arguments(DraftIn)
    @blp.response(201, RuleSetOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Draft a new version from an existing one, taking effect on the first day it could be
        published (today, or the day after the latest version's) unless edited."""
        return rules.draft_from(db.session, actor, args["from_version"])


@blp.route(f"/rules/{VERSION}")
class RuleVersion(MethodView):
    @require("staff", *STAFF)
    @blp.response(200, RuleSetOut)
    def get(self, version: int, actor: Principal) -> Any:
        return rules.get(db.session, version)

    @require("staff", "admin")
    @blp.arguments(RuleSetEditIn)
    @blp.response(200, RuleSetOut)
    def patch(self, args: dict[str, Any], version: int, actor: Principal) -> Any:
        """Edit a draft (published versions never change). `effective_from` is at most
        `RULES_MAX_LEAD_DAYS` (365) days after today."""
        return rules.update_draft(db.session, actor, version, args, max_lead_days=_max_lead_days())


@blp.route(f"/rules/{VERSION}/validate")
class RuleValidate(MethodView):
    @require("staff", "admin")
    @blp.response(200, ValidationReportOut)
    def post(self, version: int, actor: Principal) -> dict[str, Any]:
        """Check a draft; each problem names the indicator and the field."""
        problems = rules.validate(rules.get(db.session, version))
        return {"valid": not problems, "problems": problems}


@blp.route(f"/rules/{VERSION}/publish")
class RulePublish(MethodView):
    @require("staff", "admin")
    @blp.response(200, RuleSetOut)
    def post(self, version: int, actor: Principal) -> Any:
        """Publish a valid draft; from its effective date (today or later, at most
        `RULES_MAX_LEAD_DAYS` (365) days away, after the latest version's) it scores new work."""
        return rules.publish(db.session, actor, version, max_lead_days=_max_lead_days())


def _max_lead_days() -> int:
    return current_app.config["SETTINGS"].rules_max_lead_days


@blp.route("/participants/<int:participant_id>/grade")
class ParticipantGrade(MethodView):
    @require("staff", *STAFF)
    @blp.response(200, GradeOut)
    def get(self, participant_id: int, actor: Principal) -> Any:
        """A participant's credit grade (points earned in the trailing 12 months)."""
        person = get_participant_in_scope(db.session, actor, participant_id)
        audit(db.session, actor, "participant.grade.view", object_type="participant", object_id=person.id,
              region_path=person.region_path)
        return grades.grade(db.session, person.id)


@blp.route("/honours/candidates")
class HonourCandidates(MethodView):
    @require("staff", *STAFF)
    @blp.arguments(HonourArgs, location="query")
    @blp.response(200, CandidateOut(many=True))
    def get(self, args: dict[str, Any], actor: Principal) -> Any:
        """Ranked candidates of a township for a year; `format=csv` or `xlsx` to download.

        Ranked by points earned in the county's calendar year (equal points, equal rank); only
        participants still on the programme (deactivated ones are left out). `grade` is the credit
        grade as of 31 December of the year, or as of today for the current year. Auditors see
        names masked, on screen and in downloads."""
        rows = grades.candidates(db.session, actor, township_id=args["township_id"], year=args["year"],
                                 honour=args["honour"])
        if args["format"] == "json":
            grades.audit_candidates(db.session, actor, rows, township_id=args["township_id"], year=args["year"],
                                    honour=args["honour"])
            schema = CandidateOut(many=True) if sees_full_names(actor) else MaskedCandidateOut(many=True)
            return jsonify(schema.dump(rows))  # a Response passes through flask-smorest as is
        table = grades.export(db.session, actor, rows, township_id=args["township_id"], year=args["year"],
                              honour=args["honour"], fmt=args["format"])
        name = f"{args['honour']}-{args['year']}-{args['township_id']}.{args['format']}"
        if args["format"] == "csv":
            body, mime = grades.to_csv(table), "text/csv; charset=utf-8"
        else:
            body = grades.to_xlsx(table, f"{args['honour']} {args['year']}")
            mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(body, mimetype=mime, headers={"Content-Disposition": f"attachment; filename={name}"})


@blp.route("/honours/nominations")
class Nominations(MethodView):
    @require("staff", "verifier", "approver")
    @blp.arguments(NominationIn)
    @blp.response(201, NominationOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Record a nomination (audited) for a candidate who meets the thresholds. A participant
        taken off the programme is refused: 409 `participant_inactive` naming `participant_id`."""
        return grades.nominate(db.session, actor, **args)
