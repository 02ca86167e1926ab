"""Staff endpoints over the ledger: accounts and statements in scope, corrections with four
eyes, integrity status and digests. Thin views: validate, call one service, dump."""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, jsonify
from flask.views import MethodView
from sqlalchemy import select

from infra.api import Blueprint
from infra.auth import Principal, require
from infra.db import db, utcnow
from infra.errors import Forbidden, NotFound
from infra.tasks import enqueue_after_commit
from identity.services import audit, is_county_scope, sees_full_names
from ledger import tasks
from ledger.models import ChainDigest, Posting
from ledger.schemas import (
    AccountPageOut, AccountSearchArgs, MaskedAccountPageOut, AdjustmentIn, AdjustmentOut, ApprovalListArgs, ApprovalOut,
    ApprovalRowOut, BalanceArgs, BalanceOut, CheckStatusOut, DecisionIn, DigestOut, DigestSummaryOut,
    MaskedApprovalRowOut, PostingOut, ReversalIn, RunCheckIn, StatementArgs, StatementOut,
)
from ledger.services import accounts, corrections, integrity
from identity.services import get_region

blp = Blueprint("admin_ledger", __name__, url_prefix="/api/v1/admin",
                description="Staff: accounts, statements, corrections and ledger integrity")

READERS = ("clerk", "verifier", "approver", "auditor")


def _settings() -> Any:
    return current_app.config["SETTINGS"]


def _county_only(actor: Principal) -> None:
    if not is_county_scope(actor):
        raise Forbidden("Whole-ledger checks are for county staff.", code="scope_required")


@blp.route("/accounts")
class AccountSearch(MethodView):
    @require("staff", *READERS)
    @blp.arguments(AccountSearchArgs, location="query")
    @blp.response(200, AccountPageOut)
    @blp.alt_response(200, schema=MaskedAccountPageOut, description="As seen by auditors (names masked)",
                      success=True)
    def get(self, args: dict[str, Any], actor: Principal) -> Any:
        """Find accounts within my scope by name, phone (whole or last four digits), account code, region
        or kind. Auditors, who read names masked, find a name only by the whole of it."""
        region_path = get_region(db.session, args["region_id"], actor).path if args["region_id"] else None
        rows, nxt = accounts.find_accounts(db.session, actor, q=args["q"], region_path=region_path, kind=args["kind"],
                                           limit=args["limit"], after_id=args["after"])
        # Who searched or browsed whose accounts: one record per request, recorded where it looked
        # (the region asked for, else the reader's whole scope). A page of only system or partner
        # accounts, asked for by kind and without a query, names nobody and is not recorded.
        filters = {k: v for k, v in (("region_id", args["region_id"]), ("account_kind", args["kind"]),
                                     ("after", args["after"])) if v is not None}
        if args["q"]:
            audit(db.session, actor, "ledger.accounts.search", region_path=region_path or actor.scope_path,
                  details={**accounts.query_for_audit(args["q"]), **filters, "results": len(rows)})
        elif args["kind"] in (None, "participant"):
            audit(db.session, actor, "ledger.accounts.list", region_path=region_path or actor.scope_path,
                  details={**filters, "results": len(rows)})
        page = {"items": rows, "next": nxt}
        # Auditors check the books, not the people: they see names masked.
        schema = AccountPageOut() if sees_full_names(actor) else MaskedAccountPageOut()
        return jsonify(schema.dump(page))  # a Response passes through flask-smorest as is


@blp.route("/accounts/<int:account_id>")
class AccountDetail(MethodView):
    @require("staff", *READERS)
    @blp.arguments(BalanceArgs, location="query")
    @blp.response(200, BalanceOut)
    def get(self, args: dict[str, Any], account_id: int, actor: Principal) -> dict[str, Any]:
        """An account's balance now or at a past moment."""
        account = accounts.get_account(db.session, actor, account_id)
        audit(db.session, actor, "ledger.balance.view", object_type="account", object_id=account.id,
              region_path=accounts.account_region_path(db.session, account))
        if args["at"] is not None:
            return {"account_id": account.id, "balance": accounts.balance_at(db.session, account.id, args["at"]),
                    "as_of": args["at"]}
        return {"account_id": account.id, "balance": accounts.balance(db.session, account.id), "as_of": utcnow()}


@blp.route("/accounts/<int:account_id>/statement")
class AccountStatement(MethodView):
    @require("staff", *READERS)
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, StatementOut)
    def get(self, args: dict[str, Any], account_id: int, actor: Principal) -> dict[str, Any]:
        """Any statement in my scope, newest first. Reading someone's history is audited."""
        account = accounts.get_account(db.session, actor, account_id)
        audit(db.session, actor, "ledger.statement.view", object_type="account", object_id=account.id,
              region_path=accounts.account_region_path(db.session, account))
        lines, nxt = accounts.statement(db.session, account, limit=args["limit"], before_id=args["before"],
                                        since=args["since"], until=args["until"])
        return {"items": lines, "next": nxt}


@blp.route("/postings/<int:posting_id>")
class PostingDetail(MethodView):
    @require("staff", *READERS)
    @blp.response(200, PostingOut)
    def get(self, posting_id: int, actor: Principal) -> Posting:
        """One posting with its entries and hashes."""
        posting = db.session.get(Posting, posting_id)
        if posting is None:
            raise NotFound("Posting not found.", code="posting_not_found")
        region = corrections.posting_region(db.session, actor, posting)  # raises 404 outside scope
        audit(db.session, actor, "ledger.posting.view", object_type="posting", object_id=posting.id, region_path=region)
        return posting


@blp.route("/adjustments")
class Adjustments(MethodView):
    @require("staff", "clerk", "verifier", "approver")
    @blp.arguments(AdjustmentIn)
    @blp.response(201, AdjustmentOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Manual adjustment. Above the configured threshold it waits for an approver (status `pending`)."""
        s = _settings()
        return corrections.request_adjustment(
            db.session, actor, participant_id=args["participant_id"], amount=args["amount"], reason=args["reason"],
            threshold=s.adjustment_approval_threshold, adjustment_shards=s.system_account_shards,
            idempotency_key=args["idempotency_key"])


@blp.route("/reversals")
class Reversals(MethodView):
    @require("staff", "clerk", "verifier", "approver")
    @blp.arguments(ReversalIn)
    @blp.response(201, ApprovalOut)
    def post(self, args: dict[str, Any], actor: Principal) -> Any:
        """Ask for a posting to be reversed; an approver other than you must approve it."""
        return corrections.request_reversal(db.session, actor, posting_id=args["posting_id"], reason=args["reason"],
                                            idempotency_key=args["idempotency_key"])


@blp.route("/approvals")
class Approvals(MethodView):
    @require("staff", *READERS)
    @blp.arguments(ApprovalListArgs, location="query")
    @blp.response(200, ApprovalRowOut(many=True))  # names masked for auditors (ApprovalPartyOut.name)
    def get(self, args: dict[str, Any], actor: Principal) -> Any:
        """Corrections waiting for (or past) a decision, in my scope, with what deciding one needs:
        the requester's name, the accounts it moves (a participant's by name) and, for a reversal,
        the original posting's kind, amounts and reason. Each names a participant, so reading the
        list is audited."""
        status = None if args["status"] == "all" else args["status"]
        rows = corrections.list_requests(db.session, actor, status=status, limit=args["limit"], after_id=args["after"])
        audit(db.session, actor, "ledger.approvals.list", region_path=actor.scope_path,
              details={"status": args["status"], "results": len(rows)})
        # Auditors check the books, not the people: they see names masked.
        schema = ApprovalRowOut(many=True) if sees_full_names(actor) else MaskedApprovalRowOut(many=True)
        return jsonify(schema.dump(rows))  # a Response passes through flask-smorest as is


@blp.route("/approvals/<int:request_id>/decision")
class Decision(MethodView):
    @require("staff", "approver")
    @blp.arguments(DecisionIn)
    @blp.response(200, ApprovalOut)
    def post(self, args: dict[str, Any], request_id: int, actor: Principal) -> Any:
        """Approve (posts the correction) or reject. Never your own request."""
        return corrections.decide(db.session, actor, request_id, approve=args["approve"], note=args["note"],
                                  adjustment_shards=_settings().system_account_shards)


@blp.route("/ledger/checks")
class LedgerChecks(MethodView):
    @require("staff", "auditor", "approver")
    @blp.response(200, CheckStatusOut)
    def get(self, actor: Principal) -> Any:
        """The latest verification and reconciliation results (county staff)."""
        _county_only(actor)
        return integrity.latest_checks(db.session)

    @require("staff", "auditor")
    @blp.arguments(RunCheckIn)
    @blp.response(202)
    @blp.errors(503)
    def post(self, args: dict[str, Any], actor: Principal) -> dict[str, Any]:
        """Run a verification or reconciliation now (in the background). If the job queue refuses
        the job, a 503 `queue_unavailable`: nothing runs, and the audit log says it was not queued."""
        _county_only(actor)
        kind = args["kind"]
        audit(db.session, actor, f"ledger.{kind}.run")
        task = tasks.verify_ledger if kind == "verify" else tasks.reconcile_ledger
        enqueue_after_commit(db.session, task, required=True,
                             if_refused=lambda session: audit(session, actor, f"ledger.{kind}.not_queued"))
        return {"queued": kind}


@blp.route("/ledger/digests")
class Digests(MethodView):
    @require("staff", "auditor")
    @blp.response(200, DigestSummaryOut(many=True))
    def get(self, actor: Principal) -> Any:
        """Daily chain-head digests, newest first."""
        _county_only(actor)
        return db.session.scalars(select(ChainDigest).order_by(ChainDigest.day.desc()).limit(366)).all()


@blp.route("/ledger/digests/<string:day>")
class DigestExport(MethodView):
    @require("staff", "auditor")
    @blp.response(200, DigestOut)
    def get(self, day: str, actor: Principal) -> Any:
        """One day's digest with every head: download it and keep it outside the database. `day` is
        the county's date (Asia/Shanghai) the nightly job labels it with, not the UTC date."""
        _county_only(actor)
        try:
            when = dt.date.fromisoformat(day)
        except ValueError:
            raise NotFound("No digest for that day.", details={"day": ["Use YYYY-MM-DD."]}) from None
        digest = db.session.scalar(select(ChainDigest).where(ChainDigest.day == when))
        if digest is None:
            raise NotFound("No digest for that day.", details={"day": [day]})
        audit(db.session, actor, "ledger.digest.export", object_type="chain_digest", object_id=day)
        return digest
