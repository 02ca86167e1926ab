"""Command-line tool: `jieyou db upgrade | staff create | demo load | ledger verify ... | run`."""
from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from alembic import command
from flask import Flask
from sqlalchemy import func, select

from identity import services as identity
from identity.models import Participant, Region
from infra.auth import SYSTEM
from infra.clock import local_date
from infra.config import Settings
from infra.db import db
from infra.errors import DomainError
from infra.scheduler import start_inprocess_beat
from infra.tasks import celery
from jieyou.app import create_app
from jieyou.demo import load_demo
from ledger.services import accounts, integrity
from migrations.alembic_config import alembic_config
from scoring.services import rules


def _app() -> Flask:
    return create_app()


@click.group()
def main() -> None:
    """Jieyou (解忧) credit-points service."""


@main.group("db")
def db_group() -> None:
    """Database schema."""


def upgrade_database(settings: Settings) -> None:
    command.upgrade(alembic_config(settings.database_url), "head")
    app = _app()
    with app.app_context(), db.unit_of_work() as session:
        accounts.system_account(session, accounts.ISSUANCE, settings.system_account_shards)
        accounts.system_account(session, accounts.ADJUSTMENT, settings.system_account_shards)
        rules.seed_rules(session)


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database to the latest schema (Alembic), the system accounts and the
    starting rule set (seeded once from scoring/data/rules_v1.json)."""
    settings = Settings.from_env()
    upgrade_database(settings)
    click.echo(f"database at head: {settings.database_url.split('@')[-1]}")


@main.group()
def staff() -> None:
    """Staff users."""


def refusal_in_words(exc: DomainError) -> str:
    """A service's refusal on one line for a terminal: its message and each field's reasons."""
    message = exc.message % exc.params if exc.params else exc.message
    fields = "; ".join(f"{name}: {' '.join(map(str, why))}" for name, why in exc.details.items()
                       if isinstance(why, list))
    return f"{message} ({fields})" if fields else message


@staff.command("create")
@click.option("--username", required=True)
@click.option("--display-name", required=True)
@click.option("--role", type=click.Choice(["clerk", "verifier", "approver", "auditor", "admin"]), required=True)
@click.option("--scope-region", "scope_code", default=None, help="Region code; default: the county")
@click.option("--password", default=None, help="Default: read JIEYOU_PASSWORD or prompt")
def staff_create(username: str, display_name: str, role: str, scope_code: str | None, password: str | None) -> None:
    """Create a staff user (the first admin, typically)."""
    password = password or os.environ.get("JIEYOU_PASSWORD") or getpass.getpass("Password: ")
    app = _app()
    with app.app_context(), db.unit_of_work() as session:
        stmt = select(Region).where(Region.code == scope_code) if scope_code else \
            select(Region).where(Region.parent_id.is_(None)).order_by(Region.id)
        region = session.scalars(stmt).first()
        if region is None:
            raise click.ClickException("No such region; load regions first (jieyou demo load) or pass --scope-region.")
        try:
            user = identity.create_staff(session, username=username, display_name=display_name, role=role,
                                         scope=region, password=password)
        except DomainError as exc:  # a weak password, a taken username: said as the API says it
            raise click.ClickException(refusal_in_words(exc)) from None
        identity.audit(session, SYSTEM, "staff.create", object_type="staff_user", object_id=user.id,
                       region_path=region.path, details={"username": username, "role": role, "via": "cli"})
    click.echo(f"created {role} {username} with scope {region.name}")


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("load")
@click.option("--participants", default=200, show_default=True)
def demo_load(participants: int) -> None:
    """Load a demo county: regions, people, partners with outlets and keys, thousands of postings."""
    settings = Settings.from_env()
    app = _app()
    with app.app_context():
        summary = load_demo(settings, participants=participants)
    click.echo(summary)


@main.group()
def ledger() -> None:
    """Ledger integrity."""


@ledger.command("verify")
@click.option("--digest", "digest_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Also check against an exported daily digest kept outside the database.")
@click.option("--record/--no-record", default=True, help="Store the outcome for the status page.")
def ledger_verify(digest_file: str | None, record: bool) -> None:
    """Recompute every hash chain; name the first altered or missing entry. Exit 1 on problems."""
    app = _app()
    with app.app_context(), db.unit_of_work() as session:
        report = integrity.verify_chains(session)
        if digest_file:
            against = integrity.verify_against_digest(session, _digest_document(digest_file))
            report.ok = report.ok and against.ok
            report.problems += against.problems
            report.stats.update({f"digest_{k}": v for k, v in against.stats.items()})
        if record:
            integrity.record_check(session, report)
    _print_report(report)


def _digest_document(path: str) -> dict[str, Any]:
    """An exported digest as `jieyou ledger digest --out` writes it, or a usage error naming
    --digest (a file that is not JSON, or not such a document, is not evidence of anything)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"not a digest exported by `jieyou ledger digest` ({exc})",
                                 param_hint="'--digest'") from None
    if not isinstance(document, dict) or not isinstance(document.get("heads"), dict):
        raise click.BadParameter("not a digest exported by `jieyou ledger digest` (no heads)", param_hint="'--digest'")
    return document


@ledger.command("reconcile")
def ledger_reconcile() -> None:
    """Cached balances = sum of entries; every posting and the whole ledger sum to zero. Exit 1 on problems."""
    app = _app()
    with app.app_context(), db.unit_of_work() as session:
        report = integrity.reconcile(session)
        integrity.record_check(session, report)
    _print_report(report)


@ledger.command("digest")
@click.option("--day", default=None, help="YYYY-MM-DD; default today in the county's time zone (the "
              "local_timezone setting, Asia/Shanghai), the day the 02:30 nightly job labels")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the export here (else stdout).")
def ledger_digest(day: str | None, out: str | None) -> None:
    """Record (once per day) and export the chain-head digest, to keep outside the database.

    The day is the county's date, the one the 02:30 (local) nightly job labels, so a run during the
    day exports that night's snapshot rather than recording one of its own under another label.
    Heads are recorded only once every chain verifies: otherwise the failed verification is
    recorded, nothing is written, and it exits 1 naming the first problem."""
    try:
        when = dt.date.fromisoformat(day) if day else None
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--day") from None
    app = _app()
    with app.app_context():
        today = local_date()
        try:
            integrity.refuse_day_to_come(when or today, today)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--day") from None
        refused: integrity.ChainsDoNotVerify | None = None
        with db.unit_of_work() as session:
            try:
                document = integrity.export_digest(integrity.record_digest(session, when or today))
            except integrity.ChainsDoNotVerify as exc:  # committed: the status page shows the failure
                integrity.record_check(session, exc.report)
                refused = exc
    if refused is not None:
        raise click.ClickException(f"{refused}. Run `jieyou ledger verify` to list every problem.")
    text = json.dumps(document, ensure_ascii=False, indent=1)
    if out:
        Path(out).write_text(text)
        click.echo(f"digest {document['digest']} of {document['chain_count']} chains written to {out}")
    else:
        click.echo(text)


def _print_report(report) -> None:  # type: ignore[no-untyped-def]
    click.echo(f"{report.kind}: {'OK' if report.ok else 'PROBLEMS'} {json.dumps(report.stats)}")
    for problem in report.problems:
        click.echo("  " + json.dumps(problem, ensure_ascii=False, default=str))
    if not report.ok:
        sys.exit(1)


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
def run(host: str, port: int) -> None:
    """Serve the embedded default (SQLite, in-process jobs). Production: gunicorn + celery."""
    app = _app()
    if app.config["SETTINGS"].embedded:
        start_inprocess_beat(celery)
    app.run(host=host, port=port, threaded=True)


@main.command("demo-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.pass_context
def demo_server(ctx: click.Context, host: str, port: int) -> None:
    """Upgrade the database, load demo data once, and serve: the one-command start."""
    settings = Settings.from_env()
    upgrade_database(settings)
    app = _app()
    with app.app_context():
        empty = db.session.scalar(select(func.count()).select_from(Participant)) == 0
        db.session.remove()
    if empty:
        ctx.invoke(demo_load)
    ctx.invoke(run, host=host, port=port)


if __name__ == "__main__":
    main()
