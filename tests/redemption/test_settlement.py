"""Settlement: exports on the county's calendar; reconciliation only where the ledger account is in view."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from redemption.services import settlement
from tests import factories as f
from tests.redemption.test_redemption_api import _code, _setup


def _line(at: dt.datetime) -> dict:
    return {"type": "redemption", "id": 1, "at": at, "outlet": "门店0", "scenario": "S1",
            "scenario_name": "积分换购大米", "kind": "spend", "participant": "张*梅", "points": 30, "yuan": "30.00"}


def test_settlement_export_times_are_in_the_county_calendar_like_the_month():
    """March (Asia/Shanghai) holds a redemption at 02:30 on 1 March there, 18:30 UTC on 28 February:
    its CSV/XLSX row must not date it in February, and the time column names the zone."""
    start, end = settlement._month_bounds("2026-03", "Asia/Shanghai")
    at = dt.datetime(2026, 2, 28, 18, 30, tzinfo=dt.timezone.utc)
    assert start <= at < end  # it belongs to March's settlement
    s = settlement.Settlement(partner=None, month="2026-03")  # type: ignore[arg-type]
    s.lines.append(_line(at))
    assert settlement.table(s)[0][2] == "2026-03-01 02:30"  # the county's zone by default
    assert settlement.header(s)[2] == "时间 time (Asia/Shanghai)"
    elsewhere = settlement.Settlement(partner=None, month="2026-03", timezone="Europe/Paris")  # type: ignore[arg-type]
    elsewhere.lines.append(_line(at))
    assert settlement.table(elsewhere)[0][2] == "2026-02-28 19:30"
    sheet = load_workbook(io.BytesIO(settlement.to_xlsx(s))).active
    assert (sheet["C1"].value, sheet["C2"].value) == ("时间 time (Asia/Shanghai)", "2026-03-01 02:30")
    assert "2026-03-01 02:30" in settlement.to_csv(s).decode("utf-8-sig")


def test_an_outlets_own_month_report_does_not_say_unreconciled(app, client, session):
    """The ledger account is the partner's; an outlet's report holds only its own counter's lines,
    so it carries no ledger figures and says reconciliation does not apply, never "no"."""
    tree, person, partner, rice, (desk, _sibling), _admin = _setup(session, app)
    r = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-settle-1"})
    assert r.status_code == 201, r.json
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    mine = client.get("/api/v1/outlet/redemptions/month", headers=desk, query_string={"month": month}).json
    assert mine["net_points"] == 30
    assert (mine["ledger_month_net"], mine["ledger_balance"], mine["reconciled"]) == (None, None, None)
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    theirs = client.get("/api/v1/admin/settlement", headers=auditor,
                        query_string={"partner_id": partner.id, "month": month}).json
    assert (theirs["ledger_month_net"], theirs["ledger_balance"], theirs["reconciled"]) == (30, 30, True)
    documented = client.get("/api/openapi.json").json["components"]["schemas"]["SettlementOut"]["properties"]
    assert all(documented[k]["nullable"] for k in ("ledger_month_net", "ledger_balance", "reconciled"))


def test_an_outlets_own_report_exports_not_applicable(session):
    tree = f.region_tree(session)
    partner, _outlets, desks = f.shop(session, tree.town_a)
    own = settlement.settle(session, desks[0], partner.id, "2026-03", "Asia/Shanghai")
    assert own.reconciled is None
    assert settlement.table(own)[-1][7] == "不适用 n/a"
    staff = f.staff(session, "auditor", tree.county)
    whole = settlement.settle(session, staff, partner.id, "2026-03", "Asia/Shanghai")
    assert whole.reconciled is True and settlement.table(whole)[-1][7] == "是 yes"


def test_a_capture_and_a_refund_at_midnight_at_the_end_of_the_month_reconcile(session, monkeypatch):
    """Regression: a capture's and a refund's record took the counter's time and its ledger
    posting the ledger's own, a moment later. At midnight on the last day of a month (county time)
    the line went into March's settlement and the partner's ledger entry into April's, so both
    months said 否 NO. Now the posting is effective at the record's time, and both reconcile."""
    from ledger.services import posting as ledger_posting
    from redemption.services import counter

    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 100)
    partner, outlets, (desk, _other) = f.shop(session, tree.town_a)
    rice = f.scenario(session, partner, outlets, points_cost=10, yuan_value_fen=1000)
    cfg = f.counter_config()
    auditor = f.staff(session, "auditor", tree.county)
    last_second = dt.datetime(2026, 3, 31, 15, 59, 59, tzinfo=dt.timezone.utc)  # 23:59:59 on 31 March there
    monkeypatch.setattr(counter, "utcnow", lambda: last_second)
    # The ledger's clock a moment later: 00:00:01 on 1 April in the county.
    monkeypatch.setattr(ledger_posting, "utcnow", lambda: last_second + dt.timedelta(seconds=2))

    def months() -> list[tuple[int, int | None, bool | None]]:
        return [(s.net_points, s.ledger_month_net, s.reconciled) for s in (
            settlement.settle(session, auditor, partner.id, month, "Asia/Shanghai") for month in ("2026-03", "2026-04"))]

    sold, _ = counter.redeem(session, desk, digits=f.code_for(session, person), scenario_id=rice.id,
                             idem_key="midnight-redeem", cfg=cfg)
    counter.refund(session, desk, sold.id, points=None, reason="顾客退货", idem_key="midnight-refund", cfg=cfg)
    assert months() == [(0, 0, True), (0, 0, True)]
    held, _ = counter.hold(session, desk, digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                           idem_key="midnight-hold", cfg=cfg)
    counter.capture(session, desk, held.id, points=6, idem_key="midnight-capture", cfg=cfg)
    assert months() == [(6, 6, True), (0, 0, True)]


def _month_with_a_spend_a_partial_refund_and_a_privilege(session, *, privilege: bool = True):
    """This month (county time): a spend of 30 points worth 28.00 yuan, 10 of them refunded
    (9.33 yuan), and a privilege use whose fee (200.00 yuan) the county's fund repays the partner,
    as the seeded S078 (loan appraisal fee waived) says."""
    from redemption.services import counter

    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 100)
    partner, outlets, (desk, _other) = f.shop(session, tree.town_a)
    rice = f.scenario(session, partner, outlets, points_cost=30, yuan_value_fen=2800)
    waiver = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="A",
                        yuan_value_fen=20000, name_zh="贷款评估费减免")
    cfg = f.counter_config()
    sold, _ = counter.redeem(session, desk, digits=f.code_for(session, person), scenario_id=rice.id,
                             idem_key="settle-spend", cfg=cfg)
    counter.refund(session, desk, sold.id, points=10, reason="少给一袋", idem_key="settle-refund", cfg=cfg)
    if privilege:
        counter.redeem(session, desk, digits=f.code_for(session, person), scenario_id=waiver.id,
                       idem_key="settle-waiver", cfg=cfg)
    auditor = f.staff(session, "auditor", tree.county)
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    return settlement.settle(session, auditor, partner.id, month, "Asia/Shanghai")


def test_settlement_xlsx_gives_points_and_yuan_as_numbers(session):
    """Regression: the yuan column of the XLSX (lines and total) was text ("28.00", "-9.33"), so
    the partner's accountant could not sum or check it in the spreadsheet (SUM gave 0)."""
    s = _month_with_a_spend_a_partial_refund_and_a_privilege(session, privilege=False)
    sheet = load_workbook(io.BytesIO(settlement.to_xlsx(s))).active
    rows = list(sheet.iter_rows(min_row=2))
    lines = [r for r in rows if r[0].value in ("redemption", "refund")]
    assert len(lines) == 2
    for row in lines:
        assert row[7].data_type == "n" and row[8].data_type == "n", [c.value for c in row]
        assert row[8].number_format == "0.00"
    assert sorted(float(r[8].value) for r in lines) == [-9.33, 28.0]
    total = next(r for r in rows if r[0].value == "合计 total")
    assert total[8].data_type == "n" and float(total[8].value) == 18.67 and total[7].value == 20
    csv_text = settlement.to_csv(s).decode("utf-8-sig")
    assert ",28.00" in csv_text and ",-9.33" in csv_text and ",18.67" in csv_text  # two decimals in the CSV


def test_settlement_totals_a_privileges_yuan_value(session):
    """Regression: a privilege with a yuan value (S078: the county's fund repays the bank the fee it
    waived) showed 200.00 on its line, but no total counted it: the JSON said nothing of it and the
    download's only total was the points' yuan, so the lines summed to more than the total and the
    partner's claim for the fee appeared nowhere. Now `privilege_yuan` and a total row give it."""
    s = _month_with_a_spend_a_partial_refund_and_a_privilege(session)
    assert (s.net_points, s.net_yuan, s.privilege_uses, s.privilege_yuan, s.total_yuan) == (
        20, "18.67", 1, "200.00", "218.67")
    assert s.reconciled is True
    rows = settlement.table(s)
    privilege = next(r for r in rows if r[0] == "特权 privilege")
    assert privilege[7] == 0 and privilege[5] == "1 次 uses" and str(privilege[8]) == "200.00"
    total = next(r for r in rows if r[0] == "合计 total")
    line_yuan = sum(Decimal(str(r[8])) for r in rows if r[0] in ("redemption", "refund"))
    assert line_yuan == Decimal(str(total[8])) == Decimal("218.67")
    assert str(total[8]) == "218.67"


def test_a_redemption_made_step_by_step_at_midnight_reconciles(session, monkeypatch):
    """Regression: a spend scenario that requires a grade is redeemed step by step (not in the one
    statement), and its posting took the ledger's own time, a moment after the redemption's record.
    At midnight at the end of a month (county time) the line was March's and the partner's ledger
    entry April's, so both months said 否 NO. Now the posting is effective at the record's time."""
    from ledger.services import posting as ledger_posting
    from redemption.services import counter

    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 100)
    partner, outlets, (desk, _other) = f.shop(session, tree.town_a)
    graded = f.scenario(session, partner, outlets, points_cost=10, yuan_value_fen=1000, required_grade="A")
    auditor = f.staff(session, "auditor", tree.county)
    last_second = dt.datetime(2026, 3, 31, 15, 59, 59, tzinfo=dt.timezone.utc)  # 23:59:59 on 31 March there
    monkeypatch.setattr(counter, "utcnow", lambda: last_second)
    monkeypatch.setattr(ledger_posting, "utcnow", lambda: last_second + dt.timedelta(seconds=2))
    counter.redeem(session, desk, digits=f.code_for(session, person), scenario_id=graded.id,
                   idem_key="midnight-graded", cfg=f.counter_config())
    months = [(s.net_points, s.ledger_month_net, s.reconciled) for s in (
        settlement.settle(session, auditor, partner.id, month, "Asia/Shanghai") for month in ("2026-03", "2026-04"))]
    assert months == [(10, 10, True), (0, 0, True)]


def test_an_outlet_downloads_its_own_month_as_csv_or_xlsx(app, client, session):
    """Regression: GET /outlet/redemptions/month accepts format=csv|xlsx (and the spec says so),
    but answered JSON whatever was asked, so a counter could not download its month for its
    accounts as staff can. Now it gets the file, with only its own counter's lines."""
    tree, person, partner, rice, (desk, sibling), _admin = _setup(session, app)
    for headers, key in ((desk, "pos-dl-1"), (sibling, "pos-dl-2")):
        r = client.post("/api/v1/outlet/redemptions", headers=headers, json={
            "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": key})
        assert r.status_code == 201, r.json
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    csv_answer = client.get("/api/v1/outlet/redemptions/month", headers=desk,
                            query_string={"month": month, "format": "csv"})
    assert csv_answer.status_code == 200 and csv_answer.mimetype == "text/csv"
    assert f"settlement-{partner.code}-{month}.csv" in csv_answer.headers["Content-Disposition"]
    rows = csv_answer.data.decode("utf-8-sig").splitlines()
    assert sum(row.startswith("redemption,") for row in rows) == 1  # its own counter's line only
    assert rows[-1].endswith("不适用 n/a,")
    xlsx = client.get("/api/v1/outlet/redemptions/month", headers=desk, query_string={"month": month, "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet["A2"].value == "redemption" and sheet["A3"].value != "redemption"
