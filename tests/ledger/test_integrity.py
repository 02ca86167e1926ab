"""Tamper evidence and reconciliation: an owner who bypasses the triggers is still caught."""
from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from identity.models import Region
from jieyou import cli
from ledger import tasks
from ledger.models import ChainDigest, Entry, LedgerCheck
from ledger.services import accounts, integrity
from ledger.services.chain import entry_hash, posting_fingerprint
from tests import factories as f
from tests.scoring.conftest import county_clock  # noqa: F401  (the frozen county clock)


@pytest.fixture
def ledger_with_history(session):
    tree = f.region_tree(session)
    shop = f.partner_account(session, tree.town_a)
    people = [f.account_of(session, f.participant(session, tree.grid_a)) for _ in range(3)]
    for round_ in range(4):
        for account in people:
            f.award(session, account.id, round_ + 2)
    f.spend(session, people[0].id, 3, shop.id)
    return people


def _bypass_triggers(session) -> None:
    """What a database owner could do: switch off user triggers for this transaction."""
    session.execute(text("SET LOCAL session_replication_role = replica"))


def _restore_triggers(session) -> None:
    session.execute(text("SET LOCAL session_replication_role = origin"))


def _chain(session, account_id):
    return session.scalars(select(Entry).where(Entry.account_id == account_id).order_by(Entry.seq)).all()


def test_a_clean_ledger_verifies_and_reconciles(session, ledger_with_history):
    assert integrity.verify_chains(session).ok
    assert integrity.reconcile(session).ok


def test_edited_entry_is_named_by_verify(session, ledger_with_history):
    target = _chain(session, ledger_with_history[1].id)[2]
    _bypass_triggers(session)
    session.execute(text("UPDATE entries SET amount = amount + 10, balance_after = balance_after + 10 WHERE id = :i"),
                    {"i": target.id})
    _restore_triggers(session)
    report = integrity.verify_chains(session)
    assert not report.ok
    first = report.problems[0]
    assert (first["entry_id"], first["account_id"], first["seq"], first["problem"]) == \
        (target.id, target.account_id, 3, "altered_entry")


def test_edited_posting_reason_is_caught(session, ledger_with_history):
    target = _chain(session, ledger_with_history[0].id)[0]
    _bypass_triggers(session)
    session.execute(text("UPDATE postings SET reason = '被篡改' WHERE id = :p"), {"p": target.posting_id})
    _restore_triggers(session)
    problems = integrity.verify_chains(session).problems
    assert {p["entry_id"] for p in problems if p["account_id"] == target.account_id} == {target.id}


def test_entry_moved_in_time_is_named_by_verify(session, ledger_with_history):
    """balance_at and statement windows read entries.effective_at, which the entry hash does not
    cover: verify compares it with the posting's (which the hash does cover)."""
    chain = _chain(session, ledger_with_history[0].id)
    target = chain[0]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    before = accounts.balance_at(session, target.account_id, later)
    _bypass_triggers(session)
    session.execute(text("UPDATE entries SET effective_at = effective_at + interval '3650 days' WHERE id = :i"),
                    {"i": target.id})
    _restore_triggers(session)
    session.expire_all()
    assert accounts.balance_at(session, target.account_id, later) == before - target.amount
    report = integrity.verify_chains(session)
    assert [(p["entry_id"], p["account_id"], p["seq"], p["problem"]) for p in report.problems] == \
        [(target.id, target.account_id, 1, "altered_entry")]


def test_posting_moved_in_time_with_its_entries_is_caught(session, ledger_with_history):
    """Moving the posting along with its entries keeps them equal, but the posting's effective time
    is in its fingerprint, which verify recomputes from the posting row."""
    target = _chain(session, ledger_with_history[1].id)[1]
    legs = session.scalars(select(Entry).where(Entry.posting_id == target.posting_id)).all()
    _bypass_triggers(session)
    session.execute(text("UPDATE postings SET effective_at = effective_at - interval '30 days' WHERE id = :p"),
                    {"p": target.posting_id})
    session.execute(text("UPDATE entries SET effective_at = effective_at - interval '30 days' WHERE posting_id = :p"),
                    {"p": target.posting_id})
    _restore_triggers(session)
    session.expire_all()
    problems = integrity.verify_chains(session).problems
    assert {(p["entry_id"], p["problem"]) for p in problems} == {(leg.id, "altered_entry") for leg in legs}


def test_deleted_entry_is_reported_missing(session, ledger_with_history):
    chain = _chain(session, ledger_with_history[2].id)
    _bypass_triggers(session)
    session.execute(text("DELETE FROM entries WHERE id = :i"), {"i": chain[1].id})
    _restore_triggers(session)
    report = integrity.verify_chains(session)
    missing = [p for p in report.problems if p["account_id"] == chain[1].account_id]
    assert missing[0]["problem"] == "missing_entry" and missing[0]["seq"] == 2
    assert not integrity.reconcile(session).ok


def test_rewritten_chain_passes_verify_but_not_the_exported_digest(session, ledger_with_history):
    account_id = ledger_with_history[0].id
    document = integrity.export_digest(integrity.record_digest(session, dt.date(2026, 1, 1)))
    # The owner rewrites the whole chain consistently: new amounts, recomputed hashes and head.
    _bypass_triggers(session)
    prev, running = "0" * 64, 0
    for entry in _chain(session, account_id):
        posting = session.execute(text("SELECT * FROM postings WHERE id = :p"), {"p": entry.posting_id}).mappings().one()
        amount = entry.amount * 2
        running += amount
        digest = entry_hash(prev, posting_fingerprint(dict(posting)), entry.account_id, entry.shard, entry.seq, amount, running)
        session.execute(text("UPDATE entries SET amount=:a, balance_after=:b, hash=:h WHERE id=:i"),
                        {"a": amount, "b": running, "h": digest, "i": entry.id})
        prev = digest
    session.execute(text("UPDATE balances SET balance=:b, last_hash=:h WHERE account_id=:a"),
                    {"b": running, "h": prev, "a": account_id})
    _restore_triggers(session)
    session.expire_all()
    assert all(p["account_id"] != account_id for p in integrity.verify_chains(session).problems)
    against = integrity.verify_against_digest(session, document)
    assert not against.ok
    assert against.problems[0]["account_id"] == account_id and against.problems[0]["problem"] == "chain_rewritten"
    assert not integrity.reconcile(session).ok  # the ledger no longer sums to zero


def test_reconcile_reports_a_cached_balance_that_drifted_and_fixes_nothing(session, ledger_with_history):
    account_id = ledger_with_history[1].id
    session.execute(text("UPDATE balances SET balance = balance + 1 WHERE account_id = :a"), {"a": account_id})
    report = integrity.reconcile(session)
    assert [p["account_id"] for p in report.problems if p["problem"] == "balance_mismatch"] == [account_id]
    assert integrity.reconcile(session).problems == report.problems


@pytest.mark.sqlite
def test_reconcile_reports_entries_whose_balance_row_is_gone(any_session):
    """Deleting a shard's balance row makes the cached balance read 0 while its entries still sum
    to 10: reconcile starts from the entries too, not only from the balance rows."""
    session = any_session
    tree = f.region_tree(session)
    account = f.account_of(session, f.participant(session, tree.grid_a))
    f.award(session, account.id, 10)
    assert integrity.reconcile(session).ok
    delete = text("DELETE FROM balances WHERE account_id = :a")
    with pytest.raises(DBAPIError, match="DELETE refused"), session.begin_nested():
        session.execute(delete, {"a": account.id})  # both databases refuse it...
    if session.get_bind().dialect.name == "postgresql":  # ...until their owner steps round the guard
        _bypass_triggers(session)
        session.execute(delete, {"a": account.id})
        _restore_triggers(session)
    else:
        session.execute(text("DROP TRIGGER balances_no_delete"))  # (rolled back with the test)
        session.execute(delete, {"a": account.id})
    session.expire_all()
    assert accounts.balance(session, account.id) == 0
    report = integrity.reconcile(session)
    assert [(p["account_id"], p["problem"], p["sum_of_entries"], p["entries"]) for p in report.problems] == \
        [(account.id, "entries_without_balance_row", 10, 1)]
    assert integrity.reconcile(session).problems == report.problems


def test_daily_digest_is_recorded_once_per_day(session, ledger_with_history):
    first = integrity.record_digest(session, dt.date(2026, 2, 1))
    f.award(session, ledger_with_history[0].id, 1)
    second = integrity.record_digest(session, dt.date(2026, 2, 1))
    assert first.id == second.id and first.digest == second.digest


def test_scheduled_check_runs_once_per_period(session, ledger_with_history):
    report = integrity.verify_chains(session)
    assert integrity.record_check(session, report, "2026-03-01") is not None
    assert integrity.record_check(session, report, "2026-03-01") is None


def test_the_end_of_a_chain_is_named_for_what_happened_there(session, ledger_with_history):
    """A chain's end against its head: the newest entry deleted is a missing entry at the end (and,
    once the head is wound back to hide it, the exported digest still names it); an entry written
    past the head is named as such, not as missing; a head whose hash was changed is named too.
    All three were reported as `missing_entries_at_end`."""
    account_id = ledger_with_history[1].id
    document = integrity.export_digest(integrity.record_digest(session, dt.date(2026, 1, 3)))
    chain = _chain(session, account_id)
    newest = chain[-1]
    _bypass_triggers(session)
    session.execute(text("DELETE FROM entries WHERE id = :i"), {"i": newest.id})
    _restore_triggers(session)

    def ends() -> list[tuple]:
        return [(p["problem"], p["seq"], p["entry_id"])
                for p in integrity.verify_chains(session, account_id=account_id).problems]

    assert ends() == [("missing_entries_at_end", newest.seq, None)]
    rewind = text("UPDATE balances SET last_seq = :s, last_hash = :h, balance = :b WHERE account_id = :a")
    session.execute(rewind, {"s": chain[-2].seq, "h": chain[-2].hash, "b": chain[-2].balance_after, "a": account_id})
    assert ends() == []  # the truncated chain is consistent with its wound-back head...
    against = integrity.verify_against_digest(session, document)
    assert [(p["account_id"], p["seq"], p["problem"]) for p in against.problems] == \
        [(account_id, newest.seq, "missing_entry")]  # ...but not with the digest kept outside
    # An entry past the head: the head wound back over entries that are still there.
    session.execute(rewind, {"s": chain[-3].seq, "h": chain[-3].hash, "b": chain[-3].balance_after, "a": account_id})
    assert ends() == [("entries_past_head", chain[-2].seq, chain[-2].id)]
    session.execute(rewind, {"s": chain[-2].seq, "h": "f" * 64, "b": chain[-2].balance_after, "a": account_id})
    assert ends() == [("head_altered", chain[-2].seq, None)]


def test_a_digest_file_edited_to_ids_beyond_the_columns_is_reported_not_a_crash(session, ledger_with_history):
    """A hand-edited digest naming an account, shard or seq past what the columns hold made the
    query fail (`bigint out of range`, a traceback from `ledger verify --digest`, the run lost);
    such a head is a finding like any other edit of the file."""
    good = integrity.chain_heads(session)
    heads = {**good, f"{2**63}:0": [1, "a" * 64], "1:40000": [1, "a" * 64], "1:0": [2**64, "a" * 64]}
    report = integrity.verify_against_digest(session, {"day": "2026-01-01", "digest": integrity.heads_digest(heads),
                                                       "heads": heads})
    assert sorted(p["problem"] for p in report.problems) == ["digest_file_altered"] * 3
    assert report.stats == {"heads": len(heads)}


def test_a_posting_whose_entries_were_deleted_reads_for_county_staff_not_a_500(client, session, ledger_with_history):
    """What verify reports (entries missing) the county's staff can open: the posting belongs to
    the county when no entry names anyone; a township's staff get the 404 of a missing posting."""
    posting_id = _chain(session, ledger_with_history[1].id)[-1].posting_id
    _bypass_triggers(session)
    session.execute(text("DELETE FROM entries WHERE posting_id = :p"), {"p": posting_id})
    _restore_triggers(session)
    session.expire_all()
    home = session.scalar(select(Region).where(Region.path == accounts.county_path(session)))
    county = f.bearer(session, "staff", f.staff(session, "auditor", home).id)
    seen = client.get(f"/api/v1/admin/postings/{posting_id}", headers=county)
    assert seen.status_code == 200 and seen.json["entries"] == [], seen.json
    township = session.scalar(select(Region).where(Region.parent_id == home.id).order_by(Region.id))
    local = f.bearer(session, "staff", f.staff(session, "auditor", township).id)
    assert client.get(f"/api/v1/admin/postings/{posting_id}", headers=local).status_code == 404


def _edit_an_entry(session, account_id) -> Entry:
    """The owner adds 10 points to an entry behind the triggers' back: its chain no longer verifies."""
    target = _chain(session, account_id)[1]
    _bypass_triggers(session)
    session.execute(text("UPDATE entries SET amount = amount + 10, balance_after = balance_after + 10 WHERE id = :i"),
                    {"i": target.id})
    _restore_triggers(session)
    session.expire_all()
    return target


def _digest_of(session, day: dt.date) -> ChainDigest | None:
    return session.scalar(select(ChainDigest).where(ChainDigest.day == day))


def _latest_verify(session) -> LedgerCheck:
    return session.scalar(select(LedgerCheck).where(LedgerCheck.kind == "verify").order_by(LedgerCheck.id.desc()))


def test_a_digest_holds_the_heads_as_its_verification_read_them(session, ledger_with_history):
    digest = integrity.record_digest(session, dt.date(2025, 7, 1))
    assert digest.heads == integrity.chain_heads(session) and digest.chain_count == len(digest.heads)


def test_no_digest_is_recorded_of_chains_that_do_not_verify(session, ledger_with_history):
    """Regression: the digest of heads that already failed verification was recorded, and exported
    to be kept outside as the day's good state, blessing the edit. Now nothing is recorded and the
    refusal names the first problem; a day recorded before the edit is still exported as it was."""
    before = integrity.record_digest(session, dt.date(2025, 7, 1))
    target = _edit_an_entry(session, ledger_with_history[1].id)
    with pytest.raises(integrity.ChainsDoNotVerify) as refused:
        integrity.record_digest(session, dt.date(2025, 7, 2))
    assert refused.value.report.problems[0]["entry_id"] == target.id
    assert f"altered_entry at account {target.account_id}, shard {target.shard}, seq 2, entry {target.id}" \
        in str(refused.value)
    assert _digest_of(session, dt.date(2025, 7, 2)) is None
    assert integrity.record_digest(session, dt.date(2025, 7, 1)).digest == before.digest  # the evidence stays


def test_the_digest_task_records_the_failed_check_instead_of_a_digest(session, ledger_with_history):
    target = _edit_an_entry(session, ledger_with_history[0].id)
    result = tasks.daily_digest.run(session, "2025-07-03")
    assert (result["recorded"], result["refused"], result["first_problem"]["entry_id"]) == \
        (False, "chains_do_not_verify", target.id)
    assert "digest" not in result and _digest_of(session, dt.date(2025, 7, 3)) is None
    check = _latest_verify(session)
    assert check.ok is False and check.problems["items"][0]["entry_id"] == target.id


def test_the_nightly_job_verifies_once_and_records_no_digest_of_a_broken_chain(session, ledger_with_history,
                                                                               monkeypatch, county_clock):  # noqa: F811
    """The digest takes the heads the night's own verification read (verify reads every entry:
    it runs once); that verification failed, so the night records it and no digest."""
    county_clock(dt.datetime(2025, 7, 3, 18, 30, tzinfo=dt.timezone.utc))  # 02:30 on 4 July in the county
    night = dt.date(2025, 7, 4)
    target = _edit_an_entry(session, ledger_with_history[2].id)
    runs = []
    verify = integrity.verify_chains
    monkeypatch.setattr(integrity, "verify_chains", lambda s, **kw: runs.append(kw) or verify(s, **kw))
    out = tasks.scheduled_checks.run(session)
    assert runs == [{}]
    assert out["verify"]["ok"] is False and out["digest"]["recorded"] is False
    assert out["digest"]["first_problem"]["entry_id"] == target.id
    assert _digest_of(session, night) is None
    check = session.scalar(select(LedgerCheck).where(LedgerCheck.kind == "verify",
                                                     LedgerCheck.period_key == night.isoformat()))
    assert check.ok is False


def test_the_cli_refuses_a_digest_of_chains_that_do_not_verify(app, session, ledger_with_history, monkeypatch,
                                                               tmp_path):
    """`jieyou ledger digest` exits 1 naming the first problem, writes no file, records no digest
    and records the failed verification."""
    target = _edit_an_entry(session, ledger_with_history[1].id)
    monkeypatch.setattr(cli, "_app", lambda: app)
    out = tmp_path / "digest.json"
    refused = CliRunner().invoke(cli.main, ["ledger", "digest", "--day", "2025-07-05", "--out", str(out)])
    assert refused.exit_code == 1, refused.output
    assert f"entry {target.id}" in refused.output and "altered_entry" in refused.output
    assert "no digest was recorded for 2025-07-05" in refused.output
    assert not out.exists() and _digest_of(session, dt.date(2025, 7, 5)) is None
    assert _latest_verify(session).problems["items"][0]["entry_id"] == target.id
