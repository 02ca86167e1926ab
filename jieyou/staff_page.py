"""The staff console at /staff: a static shell whose scripts speak only to the staff API, as the
participant's page speaks only to the participant API (`jieyou.pages`)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, url_for
from flask_babel import gettext

from infra.openapi import access_of
from jieyou.pages import script_page

blp = Blueprint("staff_page", __name__, template_folder="templates")

# The API endpoints the console's scripts call, by the names they read them under (never as
# literal paths): a renamed or removed route fails here, at render. Path ids are filled in by the
# script where the address says `{name}`.
STAFF_ENDPOINTS = {
    "login": "auth.StaffLogin", "logout": "auth.Logout", "whoami": "auth.Me",
    "rules": "scoring.RulesInForce",
    "queue": "admin_scoring.Queue", "contribution": "admin_scoring.ContributionDetail",
    "verify": "admin_scoring.Verify", "reject": "admin_scoring.Reject", "bulk_verify": "admin_scoring.BulkVerify",
    "evidence": "scoring.EvidenceFile", "participant": "admin_people.ParticipantDetail",
    "approvals": "admin_ledger.Approvals", "decision": "admin_ledger.Decision",
    "notices": "scoring.Notices", "resolve": "admin_scoring.ResolveObjection",
    "checks": "admin_ledger.LedgerChecks", "audit": "admin_people.AuditLog",
}
# The method each is called with, to read who may call it from its `require` (the spec's x-roles).
METHODS = {"login": "POST", "logout": "POST", "verify": "POST", "reject": "POST", "bulk_verify": "POST",
           "decision": "POST", "resolve": "POST"}
# A stand-in for a path id, replaced by `{name}` in the address handed to the script.
_PLACEHOLDER = 9_000_000_000_000_000_000


def _address(endpoint: str) -> str:
    """The endpoint's path, with each id it takes written `{name}` for the script to fill."""
    rule = next(current_app.url_map.iter_rules(endpoint))
    ids = sorted(rule.arguments)
    url = url_for(endpoint, **{name: _PLACEHOLDER + i for i, name in enumerate(ids)})
    for i, name in enumerate(ids):
        url = url.replace(str(_PLACEHOLDER + i), "{" + name + "}")
    return url


def _roles(endpoint: str, method: str) -> list[str]:
    """The staff roles `require` lets call the endpoint: the console shows a section or a button
    only to those the API would let act, read from the same decorator that enforces it."""
    view = current_app.view_functions[endpoint]
    access = access_of(view, method.lower())
    return list(access.staff_roles()) if access is not None else []


def _role_names() -> dict[str, str]:
    return {"clerk": gettext("Clerk"), "verifier": gettext("Verifier"), "approver": gettext("Approver"),
            "auditor": gettext("Auditor"), "admin": gettext("Administrator")}


def _script_strings() -> dict[str, str]:
    """The words the scripts write themselves; `{name}` marks what they fill in. Refusals, errors
    and field messages come in the API's own (localised) words."""
    return {
        "network": gettext("Could not reach the service. Check the connection and try again."),
        "failed": gettext("The service could not answer. Try again later."),
        "username_missing": gettext("Enter your username."),
        "password_missing": gettext("Enter your password."),
        "not_staff": gettext("This console is for staff accounts."),
        "signed_out": gettext("You have signed out."),
        "loading": gettext("Loading…"),
        "scope": gettext("Region no. %(id)s", id="{id}"),
        "all_indicators": gettext("All indicators"),
        "queue_empty": gettext("Nothing is waiting for verification."),
        "select_first": gettext("Select at least one contribution."),
        "bulk_done": gettext("%(count)s contributions verified.", count="{count}"),
        "verified": gettext("Contribution %(id)s verified: %(points)s points proposed; public notice until %(until)s.",
                            id="{id}", points="{points}", until="{until}"),
        "rejected": gettext("Contribution %(id)s rejected.", id="{id}"),
        "reason_missing": gettext("Give the reason for rejecting."),
        "duplicate": gettext("Possible duplicate of %(ids)s", ids="{ids}"),
        "out_of_reach": gettext("It names people outside your area: staff whose area covers them all decide on it."),
        "share": gettext("share %(share)s", share="{share}"),
        "no_evidence": gettext("No evidence files."),
        "open_file": gettext("Open %(name)s", name="{name}"),
        "file_failed": gettext("%(name)s could not be loaded: %(message)s", name="{name}", message="{message}"),
        "contribution_no": gettext("Contribution %(id)s", id="{id}"),
        "points": gettext("%(points)s points", points="{points}"),
        "not_scored": gettext("not scored yet"),
        "approvals_empty": gettext("No corrections are waiting for a decision."),
        "adjustment": gettext("Adjustment of %(amount)s points to %(account)s", amount="{amount}", account="{account}"),
        "account_named": gettext("%(name)s (account %(code)s)", name="{name}", code="{code}"),
        "account_code": gettext("account %(code)s", code="{code}"),
        "reversal": gettext("Reversal of posting %(posting)s", posting="{posting}"),
        "original": gettext("It undoes: %(kind)s of %(when)s, %(amounts)s; its reason: %(reason)s",
                            kind="{kind}", when="{when}", amounts="{amounts}", reason="{reason}"),
        "requested": gettext("Requested by %(by)s on %(at)s", by="{by}", at="{at}"),
        "own_request": gettext("Your own request: another approver must decide it."),
        "approved": gettext("Request %(id)s approved.", id="{id}"),
        "declined": gettext("Request %(id)s rejected.", id="{id}"),
        "notices_empty": gettext("No objections are waiting."),
        "notice_line": gettext("%(points)s points proposed; notice until %(until)s; %(count)s open objections",
                               points="{points}", until="{until}", count="{count}"),
        "lodged": gettext("Lodged %(at)s", at="{at}"),
        "upheld": gettext("Objection %(id)s upheld: the contribution is rejected.", id="{id}"),
        "dismissed": gettext("Objection %(id)s dismissed.", id="{id}"),
        "resolution_missing": gettext("Write the resolution."),
        "check_ok": gettext("Passed"),
        "check_bad": gettext("Problems found: %(count)s", count="{count}"),
        "check_never": gettext("Not run yet"),
        "check_when": gettext("Finished %(at)s", at="{at}"),
        "check_running": gettext("Still running (started %(at)s)", at="{at}"),
        "audit_empty": gettext("No records."),
        "states": {"submitted": gettext("Submitted"), "verified": gettext("Verified"),
                   "rejected": gettext("Rejected"), "in_notice": gettext("On public notice"),
                   "awarded": gettext("Awarded"), "revoked": gettext("Revoked")},
        "request_states": {"pending": gettext("Awaiting a decision"), "approved": gettext("Approved"),
                           "rejected": gettext("Rejected")},
        "steps": {"look": gettext("Look"), "listen": gettext("Listen"), "ask": gettext("Ask"), "help": gettext("Help"),
                  "report": gettext("Report"), "analyse": gettext("Analyse"), "explain": gettext("Explain"),
                  "record": gettext("Record")},
        "labels": {"state": gettext("State"), "work_date": gettext("Work date"), "description": gettext("Description"),
                   "conflict_item": gettext("Screening item"), "warning_colour": gettext("Warning colour"),
                   "quantity": gettext("Quantity"), "incident": gettext("Incident number"),
                   "submitted_at": gettext("Submitted")},
        "colours": {"blue": gettext("Blue"), "yellow": gettext("Yellow"), "orange": gettext("Orange"),
                    "red": gettext("Red")},
        "fields": {"note": gettext("Note"), "reason": gettext("Reason"), "resolution": gettext("Resolution"),
                   "contribution_ids": gettext("Contributions")},
    }


@blp.get("/staff")
def staff() -> Response:
    """The staff console: sign in, the verification queue, corrections and objections awaiting a
    decision, the ledger's integrity and the audit log, each shown to the roles the API lets act.
    Holds nothing personal: the scripts fetch it with the bearer token they keep in sessionStorage
    (no cookie, so nothing for another site to ride: no CSRF surface)."""
    return script_page(
        "staff.html", api=lambda: {name: _address(endpoint) for name, endpoint in STAFF_ENDPOINTS.items()},
        roles=lambda: {name: _roles(endpoint, METHODS.get(name, "GET")) for name, endpoint in STAFF_ENDPOINTS.items()},
        role_names=_role_names, strings=_script_strings)
