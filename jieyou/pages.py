"""The landing page at / (what this service is, live figures, where to go next) and the
participant's phone page at /me (a static shell whose script speaks only to the participant API).
The staff console at /staff is `jieyou.staff_page`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (Blueprint, Response, abort, current_app, make_response, render_template, request, send_from_directory,
                   url_for)
from flask_babel import force_locale, gettext, get_locale
from sqlalchemy import func, select
from swagger_ui_bundle import swagger_ui_path

from identity.models import Outlet, Participant, Partner
from infra.db import db
from infra.i18n import LOCALES
from ledger.models import Entry, Posting
from ledger.services import integrity

blp = Blueprint("pages", __name__, template_folder="templates")

# Swagger UI's files (the swagger-ui-bundle package) that the docs page (/api/docs) loads.
DOCS_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css",
                         "favicon-16x16.png", "favicon-32x32.png", "oauth2-redirect.html"})


@blp.route("/api/docs-assets/<name>")
def docs_asset(name: str) -> Response:
    """One of Swagger UI's files, from the installed package: only those the docs page uses."""
    if name not in DOCS_ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=86400)

# The pages (the phone page, the staff console) run scripts of our own and nothing inline: no
# injected script can run, and the only places they talk to are this origin (the API) and the
# blob: URLs of images they hold (a code's QR image, from the API's answer; evidence, fetched with
# the bearer token).
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

# The API endpoints the page's script calls (me.js reads them by these names from the page's
# configuration, never as literal paths): a renamed or removed route fails here, at render.
ME_ENDPOINTS = {
    "login": "auth.ParticipantLogin", "logout": "auth.Logout", "balance": "me.MyBalance",
    "statement": "me.MyStatement", "grade": "scoring.MyGrade", "eligibility": "redemption.MyEligibility",
    "codes": "redemption.MyCodes",
}


@blp.get("/")
def index() -> str:
    session = db.session
    figures = {
        "participants": session.scalar(select(func.count()).select_from(Participant)),
        "partners": session.scalar(select(func.count()).select_from(Partner)),
        "outlets": session.scalar(select(func.count()).select_from(Outlet)),
        "postings": session.scalar(select(func.count()).select_from(Posting)),
        "entries": session.scalar(select(func.count()).select_from(Entry)),
        "awarded": session.scalar(select(func.coalesce(func.sum(Entry.amount), 0))
                                  .join(Posting, Posting.id == Entry.posting_id)
                                  .where(Posting.kind == "award", Entry.amount > 0)),
    }
    return render_template("index.html", figures=figures, checks=integrity.latest_checks(session))


def page_locale() -> str:
    """`?lang=en|zh` (the page's language switch) wins; otherwise Accept-Language, as for the API."""
    asked = request.args.get("lang", "").split("-", 1)[0].lower()
    return asked if asked in LOCALES else str(get_locale() or "zh")[:2]


def _script_strings() -> dict[str, str]:
    """The few words the script writes itself; `{name}` marks what it fills in. Everything about
    the participant's points, refusals and errors comes in the API's own (localised) words."""
    return {
        "network": gettext("Could not reach the service. Check the connection and try again."),
        "failed": gettext("The service could not answer. Try again later."),
        "phone_format": gettext("Enter your 11-digit mobile number."),
        "password_missing": gettext("Enter your password."),
        "signed_out": gettext("You have signed out."),
        "loading": gettext("Loading…"),
        "no_grade": gettext("No grade yet"),
        "points_12m": gettext("Points earned in the last 12 months: %(points)s", points="{points}"),
        "to_next": gettext("Earn %(points)s more points to reach %(grade)s.", points="{points}", grade="{grade}"),
        "top_grade": gettext("This is the highest grade."),
        "balance_after": gettext("Balance after: %(points)s", points="{points}"),
        "reversed": gettext("This was later reversed."),
        "no_movements": gettext("No points have moved yet."),
        "cost": gettext("%(points)s points", points="{points}"),
        "privilege": gettext("No points deducted; for grade %(grade)s and above", grade="{grade}"),
        "privilege_any": gettext("No points deducted"),
        "where": gettext("Where: %(places)s", places="{places}"),
        "list_separator": gettext(", "),
        "need_have": gettext("Needs %(need)s, you have %(have)s", need="{need}", have="{have}"),
        "limit": gettext("Limit: %(limit)s times", limit="{limit}"),
        "none": gettext("none"),
        "nothing_usable": gettext("Nothing can be used right now."),
        "code_left": gettext("Valid for %(time)s more", time="{time}"),
        "code_expired": gettext("This code has expired. Get a new one."),
        "code_aloud": gettext("Code %(digits)s", digits="{digits}"),
    }


def script_page(template: str, **config: Callable[[], Any]) -> Response:
    """A page whose script does the work over the API (`/me`, `/staff`): rendered in the reader's
    language with its configuration as JSON (language, time zone, and each of `config`, made in
    that language: API addresses, strings...), under a CSP that lets only this site's own
    scripts, styles and blob: images in."""
    locale = page_locale()
    with force_locale(locale):
        settings: dict[str, Any] = {
            "lang": locale,
            "accept_language": "en" if locale == "en" else "zh-CN",
            "timezone": current_app.config["SETTINGS"].local_timezone,
            **{name: make() for name, make in config.items()},
        }
        html = render_template(template, lang=locale, config=settings)
    response = make_response(html)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Vary"] = "Accept-Language"  # the same address in either language
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blp.get("/me")
def me() -> Response:
    """The participant's page: sign in, balance, grade, statement, where points can be used, and a
    one-time code to show at the counter. Holds nothing personal: the script fetches it all with
    the bearer token it keeps in sessionStorage (no cookie, so nothing for another site to ride)."""
    return script_page("me.html", api=lambda: {name: url_for(endpoint) for name, endpoint in ME_ENDPOINTS.items()},
                       strings=_script_strings)
