"""The command-line tool as an operator meets it: refusals in words, never a traceback."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import func, select

from identity.models import StaffUser
from jieyou import cli
from tests import factories as f


def test_creating_staff_with_a_weak_password_or_a_taken_name_is_refused_in_words(app, session, monkeypatch):
    tree = f.region_tree(session)
    monkeypatch.setattr(cli, "_app", lambda: app)
    runner = CliRunner()
    base = ["staff", "create", "--display-name", "县管理员", "--role", "admin", "--scope-region", tree.county.code]
    weak = runner.invoke(cli.main, [*base, "--username", "county-admin", "--password", "aaaaaaaaaaaa"])
    assert weak.exit_code == 1, weak.output
    assert "Traceback" not in weak.output and "password:" in weak.output, weak.output
    made = runner.invoke(cli.main, [*base, "--username", "county-admin", "--password", "a-long-good-pass-2026"])
    assert made.exit_code == 0, made.output
    again = runner.invoke(cli.main, [*base, "--username", "county-admin", "--password", "a-long-good-pass-2026"])
    assert again.exit_code == 1 and "username" in again.output and "Traceback" not in again.output, again.output
    assert session.scalar(select(func.count()).select_from(StaffUser).where(StaffUser.username == "county-admin")) == 1
