"""The one place that builds the application and lists its blueprints."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from flask import Flask, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import configure_mappers
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from admin import api as admin_ledger_api
from admin import people_api as admin_people_api
from admin import redemption_api as admin_redemption_api
from admin import scoring_api as admin_scoring_api
from identity import api as identity_api
from identity.services import distrust_outlet, principal_for, unchecked_outlet
from infra.api import INT8_MAX
from infra.auth import set_principal_loader
from infra.config import Settings
from infra.db import db, make_engine, run_after_commit
from infra.errors import register_error_handlers
from infra.i18n import init_i18n
from infra.limits import limiter
from infra.openapi import Api
from infra.security import configure_password_hasher
from infra.tasks import init_celery
from jieyou import pages, staff_page
from ledger import api as ledger_api
from ledger import tasks as ledger_tasks
from migrations.alembic_config import alembic_config
from redemption import api as redemption_api
from redemption import tasks as redemption_tasks
from scoring import api as scoring_api
from scoring import tasks as scoring_tasks
from scoring.services import evidence, imports

BLUEPRINTS = [
    identity_api.blp,
    ledger_api.blp,
    scoring_api.blp,
    redemption_api.blp,
    admin_ledger_api.blp,
    admin_people_api.blp,
    admin_scoring_api.blp,
    admin_redemption_api.blp,
]


# The most the app reads of a request body: the largest upload (evidence, 10 MB) with room for the
# multipart form around it. A larger body is not read; an upload route still answers a 413 naming
# `file` and that file's own limit (`scoring.api.uploaded_file`), any other the limit in words.
MAX_REQUEST_BYTES = max(evidence.MAX_BYTES, imports.MAX_BYTES) + 1024 * 1024


class BoundedIntegerConverter(IntegerConverter):
    """`<int:...>` up to PostgreSQL's BIGINT (or a lower `max`): a larger number names no row, so
    the route does not match and the answer is a 404, not the database's `bigint out of range`."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None, max: int | None = INT8_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


BEAT_SCHEDULE: dict[str, Any] = {**ledger_tasks.BEAT_SCHEDULE, **scoring_tasks.BEAT_SCHEDULE,
                                  **redemption_tasks.BEAT_SCHEDULE}


def create_app(settings: Settings | None = None, *, engine: Any = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    if settings.proxy_hops:
        # Behind a reverse proxy: take the client address from X-Forwarded-For (rate limits, audit).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)  # type: ignore
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        API_TITLE="Jieyou 解忧 API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # Served by the app (`pages.docs_asset`): a county network may not reach a CDN, and the docs
        # should not load code from one.
        OPENAPI_SWAGGER_UI_URL="/api/docs-assets/",
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        RATELIMIT_HEADERS_ENABLED=False,  # Retry-After on a 429 only (infra.errors)
        API_SPEC_OPTIONS={
            "info": {"description": "Credit-points ledger and incentive redemption. Errors are "
                                    "`{error: {code, message, details}}`; send `Accept-Language: en` for English. "
                                    "Each operation names the credential it takes (`security`, `x-roles`) "
                                    "and the errors it can answer with."},
        },  # security schemes and error responses: infra.openapi

    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_password_hasher(settings.argon2_time_cost, settings.argon2_memory_kib)
    db.configure(engine or make_engine(settings.database_url, echo=settings.sql_echo))
    # On PostgreSQL the counter's redeem checks a known API key inside its one statement
    # (`redemption_redeem`), so it may take the key's outlet from memory (`unchecked_outlet`).
    set_principal_loader(lambda scheme, credential: principal_for(db.session, scheme, credential),
                         unchecked=lambda scheme, credential: (None if db.is_sqlite
                                                               else unchecked_outlet(scheme, credential)),
                         distrust=distrust_outlet)
    init_i18n(app, settings.default_locale, Path(__file__).resolve().parent / "translations")
    limiter.init_app(app)
    init_celery(app, settings.broker_url, settings.result_backend, BEAT_SCHEDULE, settings.local_timezone)

    app.url_map.converters["int"] = BoundedIntegerConverter  # before any route is added
    api = Api(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(pages.blp)
    app.register_blueprint(staff_page.blp)
    register_error_handlers(app)
    _security_headers(app)  # after-request hooks run last-registered first: these headers go on
    _unit_of_work(app)      # every answer, one the commit replaced (`_unit_of_work`) too
    # Every model is imported by now: configure the mappers once here, so that a web worker's
    # first requests do not pay for it (and `tune_gc` freezes the result with the app).
    configure_mappers()

    schema_head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

    @app.get("/healthz")
    def healthz() -> Any:
        """Ready when the database answers and its schema is this code's (`jieyou db upgrade` run):
        a worker started before the migration, or against an empty database, is not ready, and
        says which revision it found (every request would otherwise fail on missing tables)."""
        try:
            found = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:
            db.session.rollback()
            found = None
        if found != schema_head:
            return jsonify(status="migrations_pending", database_revision=found, code_revision=schema_head), 503
        return jsonify(status="ok", revision=found)

    @app.get("/api/v1/ping")
    def ping() -> Any:
        """Trivial JSON endpoint: the baseline for HTTP benchmarks."""
        return jsonify(pong=True)

    return app


def _security_headers(app: Flask) -> None:
    """Every answer: never sniffed into another type, never framed by another site. API answers
    carry tokens and personal data, so no cache (a shared proxy, the phone's browser) may keep them
    unless the view says otherwise. No CORS headers: the phone app and the counters are not web
    pages on another origin. Three header writes, one or two microseconds a response."""

    @app.after_request
    def headers(response: Response) -> Response:
        headers = response.headers
        if headers.get("Content-Type", "").startswith("text/html"):
            headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        elif "Cache-Control" not in headers:
            headers.add("Cache-Control", "no-store")
        headers.add("X-Content-Type-Options", "nosniff")  # added, not set: no view sets these two
        headers.add("X-Frame-Options", "DENY")
        return response


def _unit_of_work(app: Flask) -> None:
    """The request is the unit of work: commit once if it succeeded, else roll back. A job the
    answer depends on that could not be queued after the commit (`after_commit(required=True)`)
    answers instead, as its error would have in the view."""

    @app.after_request
    def commit(response: Response) -> Response:
        if response.status_code < 400:
            db.session.commit()
            try:
                run_after_commit(db.session())
            except Exception as exc:
                return app.make_response(app.handle_user_exception(exc))
        else:
            db.session.rollback()
        return response

    @app.teardown_appcontext
    def remove(exc: BaseException | None) -> None:
        if exc is not None:
            db.session.rollback()
        db.session.remove()
