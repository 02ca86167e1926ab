"""The corrections awaiting a decision say what deciding one needs: who asked, whose points move
and by how much, and for a reversal what the original posting was. Names as the reader's role
sees them everywhere else (auditors: masked), in one statement whatever the page's size."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import event, select

from identity.models import AuditEntry
from ledger.services import accounts, corrections
from tests import factories as f


def _desk(session, *, name: str = "王秀兰"):
    """A clerk's adjustment of 50 points (over the threshold: it waits) and reversal of an award of 6."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name=name)
    account = f.account_of(session, person)
    original = f.award(session, account.id, 6, reason="信息上报：矛盾隐患线索经核实")
    clerk = f.staff(session, "clerk", tree.town_a)
    adjustment = corrections.request_adjustment(session, clerk, participant_id=person.id, amount=50,
                                                reason="补记三月调解积分", threshold=20,
                                                adjustment_shards=f.SHARDS).request
    reversal = corrections.request_reversal(session, clerk, posting_id=original.posting_id, reason="重复上报")
    session.flush()
    return tree, person, account, original, adjustment, reversal


def _by_id(rows: list[dict]) -> dict[int, dict]:
    return {row["id"]: row for row in rows}


def test_an_approver_sees_who_asked_whose_points_and_the_original_posting(client, session):
    tree, person, account, original, adjustment, reversal = _desk(session)
    approver = f.staff(session, "approver", tree.town_a)
    listed = client.get("/api/v1/admin/approvals", headers=f.bearer(session, "staff", approver.id))
    assert listed.status_code == 200
    rows = _by_id(listed.json)
    adjusting, reversing = rows[adjustment.id], rows[reversal.id]
    assert adjusting["requested_by_name"] == reversing["requested_by_name"] == "clerk 测试"
    assert adjusting["accounts"] == [{"account_id": account.id, "account_code": account.code,
                                      "account_kind": "participant", "participant_id": person.id,
                                      "name": "王秀兰", "amount": 50}]
    assert adjusting["original"] is None and adjusting["amount"] == 50
    assert {k: reversing["original"][k] for k in ("id", "kind", "kind_label", "reason")} == {
        "id": original.posting_id, "kind": "award", "kind_label": "积分奖励", "reason": "信息上报：矛盾隐患线索经核实"}
    # The participant's leg by name with what the award gave; the issuance leg by its code, no name.
    mine = [a for a in reversing["accounts"] if a["account_kind"] == "participant"]
    assert mine == [{"account_id": account.id, "account_code": account.code, "account_kind": "participant",
                     "participant_id": person.id, "name": "王秀兰", "amount": 6}]
    (issuance,) = [a for a in reversing["accounts"] if a["account_kind"] != "participant"]
    assert (issuance["name"], issuance["participant_id"], issuance["amount"]) == (None, None, -6)
    # The read is recorded once, counting requests, not the rows the join made of them.
    (record,) = session.scalars(select(AuditEntry).where(AuditEntry.actor_id == approver.id,
                                                          AuditEntry.action == "ledger.approvals.list")).all()
    assert record.details == {"status": "pending", "results": 2}
    english = client.get("/api/v1/admin/approvals", headers={**f.bearer(session, "staff", approver.id),
                                                              "Accept-Language": "en"}).json
    assert _by_id(english)[reversal.id]["original"]["kind_label"] == "Award"


def test_an_auditor_reads_the_same_list_with_names_masked(client, session):
    tree, person, account, original, adjustment, reversal = _desk(session)
    approver = f.bearer(session, "staff", f.staff(session, "approver", tree.town_a).id)
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    full, masked = (_by_id(client.get("/api/v1/admin/approvals", headers=h).json) for h in (approver, auditor))
    assert [a["name"] for a in masked[adjustment.id]["accounts"]] == ["王*兰"]
    assert "王秀兰" not in str(masked)
    # Only the names differ: the amounts, the original and the requester read the same.
    for row in full.values():
        for party in row["accounts"]:
            party["name"] = party["name"] and "王*兰"
    assert masked == full


def test_a_participant_outside_my_scope_is_not_named(session):
    """A request is listed by its region; a participant of the original posting who is elsewhere
    (moved, or another's leg) is not named to a reader whose scope does not cover them."""
    tree, person, account, original, adjustment, reversal = _desk(session)
    elsewhere = f.participant(session, tree.grid_b, name="赵建国")
    approver = f.staff(session, "approver", tree.town_a)
    person.region_path = elsewhere.region_path  # moved to the other township; the request stays
    session.flush()
    rows = {row.id: row for row in corrections.list_requests(session, approver)}
    assert [p.name for p in rows[adjustment.id].accounts] == [None]
    county = f.staff(session, "approver", tree.county)
    assert [p.name for p in {r.id: r for r in corrections.list_requests(session, county)}[adjustment.id].accounts] \
        == ["王秀兰"]


@contextlib.contextmanager
def _statements(session) -> Iterator[list[str]]:
    seen: list[str] = []
    bind = session.connection().engine

    def count(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(bind, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", count)


def test_the_list_is_one_statement_however_many_requests(client, session):
    tree, person, account, original, adjustment, reversal = _desk(session)
    approver = f.staff(session, "approver", tree.town_a)
    headers = f.bearer(session, "staff", approver.id)

    def reads() -> int:
        with _statements(session) as seen:
            assert client.get("/api/v1/admin/approvals", headers=headers).status_code == 200
        return len(seen)

    two = reads()
    clerk = f.staff(session, "clerk", tree.town_a)
    for points in (7, 8, 9):
        other = f.award(session, account.id, points)
        corrections.request_reversal(session, clerk, posting_id=other.posting_id, reason="重复上报")
    session.flush()
    assert len(client.get("/api/v1/admin/approvals", headers=headers).json) == 5
    assert reads() == two


def test_the_list_reads_the_same_on_both_databases(any_session):
    session = any_session
    tree, person, account, original, adjustment, reversal = _desk(session, name="Li Guilan")
    approver = f.staff(session, "approver", tree.town_a)
    rows = {row.id: row for row in corrections.list_requests(session, approver)}
    assert [(p.account_id, p.name, p.amount) for p in rows[adjustment.id].accounts] == [(account.id, "Li Guilan", 50)]
    assert sorted(p.amount for p in rows[reversal.id].accounts) == [-6, 6]
    assert (rows[reversal.id].original.kind, rows[reversal.id].requested_by_name) == ("award", "clerk 测试")
    assert rows[adjustment.id].original is None and accounts.balance(session, account.id) == 6
