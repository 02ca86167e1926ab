"""The daily digest is labelled with the county's date wherever the day is chosen by default (the
nightly beat job, the `daily_digest` task, `jieyou ledger digest`), and beat's 02:30 is the county's
02:30, so the night's run and a clerk's run during the day name the same day."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from sqlalchemy import select

from infra.clock import local_date, local_timezone
from infra.tasks import celery
from jieyou import cli
from jieyou.app import BEAT_SCHEDULE
from ledger import tasks
from ledger.models import ChainDigest, LedgerCheck
from tests import factories as f
from tests.scoring.conftest import county_clock  # noqa: F401  (the frozen county clock)

# 01:30 on 11 March 2026 in Shanghai: UTC is still on the 10th.
EARLY = dt.datetime(2026, 3, 10, 17, 30, tzinfo=dt.timezone.utc)
LOCAL_DAY, UTC_DAY = dt.date(2026, 3, 11), dt.date(2026, 3, 10)


def _some_ledger(session) -> None:  # type: ignore[no-untyped-def]
    tree = f.region_tree(session)
    f.award(session, f.account_of(session, f.participant(session, tree.grid_a)).id, 5)


def _digest_days(session) -> set[dt.date]:  # type: ignore[no-untyped-def]
    return set(session.scalars(select(ChainDigest.day).where(ChainDigest.day.in_([LOCAL_DAY, UTC_DAY]))))


def test_the_nightly_job_labels_its_digest_and_checks_with_the_countys_date(session, county_clock):  # noqa: F811
    _some_ledger(session)
    county_clock(EARLY)
    tasks.scheduled_checks.run(session)
    assert _digest_days(session) == {LOCAL_DAY}
    keys = set(session.scalars(select(LedgerCheck.period_key).where(LedgerCheck.period_key.in_(
        [LOCAL_DAY.isoformat(), UTC_DAY.isoformat()]))))
    assert keys == {LOCAL_DAY.isoformat()}


def test_the_digest_task_defaults_to_the_countys_date_and_keeps_an_explicit_one(session, county_clock):  # noqa: F811
    _some_ledger(session)
    county_clock(EARLY)
    assert tasks.daily_digest.run(session)["day"] == LOCAL_DAY.isoformat()
    assert tasks.daily_digest.run(session, "2026-03-10")["day"] == "2026-03-10"
    assert _digest_days(session) == {LOCAL_DAY, UTC_DAY}


def test_the_cli_digest_defaults_to_the_countys_date(app, session, county_clock, monkeypatch):  # noqa: F811
    """A clerk running `jieyou ledger digest` at 01:30 in Shanghai gets the county's day, the one the
    02:30 job labels, and the API exports it under that day."""
    _some_ledger(session)
    county_clock(EARLY)
    monkeypatch.setattr(cli, "_app", lambda: app)
    runner = CliRunner()
    default = runner.invoke(cli.main, ["ledger", "digest"])
    assert default.exit_code == 0, default.output
    assert json.loads(default.output)["day"] == LOCAL_DAY.isoformat()
    explicit = runner.invoke(cli.main, ["ledger", "digest", "--day", "2026-03-10"])
    assert explicit.exit_code == 0 and json.loads(explicit.output)["day"] == "2026-03-10"
    bad = runner.invoke(cli.main, ["ledger", "digest", "--day", "11/03/2026"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    assert "county's time zone" in runner.invoke(cli.main, ["ledger", "digest", "--help"]).output
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", f.region_tree(session).county).id)
    exported = f"/api/v1/admin/ledger/digests/{LOCAL_DAY.isoformat()}"
    assert app.test_client().get(exported, headers=auditor).json["day"] == LOCAL_DAY.isoformat()


def test_beat_fires_at_the_countys_0230_and_the_run_labels_that_local_day(app, session, county_clock):  # noqa: F811
    """Celery's timezone is the county's setting and the crontab reads its hours in it, so the
    02:30 run (18:30 UTC the day before) and the digest's label are on one calendar."""
    zone = ZoneInfo(local_timezone())
    assert celery.conf.timezone == local_timezone() == "Asia/Shanghai"
    nightly = BEAT_SCHEDULE["ledger-nightly-checks"]["schedule"]
    assert nightly.app is celery and nightly.tz == zone
    last_run = dt.datetime(2026, 3, 10, 12, 0, tzinfo=zone)  # noon the day before
    start, delta, _now = nightly.remaining_delta(last_run)
    fires = (start + delta).astimezone(dt.timezone.utc)
    assert fires == dt.datetime(2026, 3, 10, 18, 30, tzinfo=dt.timezone.utc)
    _some_ledger(session)
    county_clock(fires)
    assert local_date() == LOCAL_DAY
    tasks.scheduled_checks.run(session)
    assert _digest_days(session) == {LOCAL_DAY}


def test_a_digest_is_never_recorded_for_a_day_still_to_come(app, session, county_clock, monkeypatch):  # noqa: F811
    """Regression: `jieyou ledger digest --day` (or the task) with a later date recorded today's
    heads under that day's label, and on that night the 02:30 job found the day taken and recorded
    nothing: the day's digest held heads weeks old, the entries in between under no digest. Now
    the command is refused (exit 2 naming --day), the task raises, and nothing is recorded."""
    _some_ledger(session)
    county_clock(EARLY)
    monkeypatch.setattr(cli, "_app", lambda: app)
    tomorrow = LOCAL_DAY + dt.timedelta(days=1)
    refused = CliRunner().invoke(cli.main, ["ledger", "digest", "--day", tomorrow.isoformat()])
    assert refused.exit_code == 2 and "--day" in refused.output, refused.output
    import pytest

    with pytest.raises(ValueError, match="still to come"):
        tasks.daily_digest.run(session, tomorrow.isoformat())
    assert session.scalar(select(ChainDigest.id).where(ChainDigest.day == tomorrow)) is None
    tasks.scheduled_checks.run(session)  # that night's job still records that day's digest
    county_clock(EARLY + dt.timedelta(days=1))
    tasks.scheduled_checks.run(session)
    assert session.scalar(select(ChainDigest.created_at).where(ChainDigest.day == tomorrow)) is not None


def test_verify_against_a_damaged_digest_file_says_so_instead_of_crashing(app, session, monkeypatch, tmp_path):
    """An auditor's kept digest that is not JSON, not a digest, or edited by hand: `ledger verify
    --digest` said nothing useful (a Python traceback); now a usage error naming --digest, or a
    finding that the file was altered."""
    _some_ledger(session)
    monkeypatch.setattr(cli, "_app", lambda: app)
    runner = CliRunner()
    for name, text in (("torn.json", '{"day": "2026-03-10", "heads": {'), ("other.json", '["not", "a", "digest"]'),
                       ("latin.json", "\udcff")):
        path = tmp_path / name
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        refused = runner.invoke(cli.main, ["ledger", "verify", "--no-record", "--digest", str(path)])
        assert refused.exit_code == 2 and "--digest" in refused.output, (name, refused.output)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({"day": "2026-03-10", "digest": "0" * 64, "heads": {"1:0": "oops", "x": [1, "a"]}}))
    found = runner.invoke(cli.main, ["ledger", "verify", "--no-record", "--digest", str(edited)])
    assert found.exit_code == 1 and (found.exception is None or isinstance(found.exception, SystemExit)), found.output
    assert "digest_file_altered" in found.output
