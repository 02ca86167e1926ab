"""Monthly settlement per partner: the redemptions and refunds of the month with points and yuan,
and a reconciliation proving the partner's ledger account matches its redemptions exactly.

The month is cut on the county's calendar, so the exports give times on that calendar too. An
outlet's own report holds only its counter's lines while the ledger account is the partner's: it
carries no ledger figures and no reconciliation (None, "not applicable"), never a false "no"."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity import services as identity
from identity.models import Outlet, Participant, Partner
from infra.auth import Principal
from infra.config import Settings
from infra.errors import Forbidden, NotFound
from infra.exports import csv_bytes, xlsx_bytes
from infra.security import mask_name
from ledger.models import Account, Entry, Posting
from redemption.models import Redemption, Refund, Scenario
from redemption.services.common import yuan


@dataclass
class Settlement:
    partner: Partner
    month: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    redeemed_points: int = 0
    refunded_points: int = 0
    redeemed_fen: int = 0
    refunded_fen: int = 0
    privilege_uses: int = 0
    # A privilege deducts no points, but may have a yuan value that the county's fund repays the
    # partner (S078: the appraisal fee a bank waives): owed like a spend's, outside the points.
    privilege_fen: int = 0
    # The partner's ledger account: None on an outlet's own report, where they do not apply.
    ledger_month_net: int | None = None
    ledger_balance: int | None = None
    all_time_net: int = 0
    timezone: str = Settings.local_timezone  # the county's, as the month was cut (settle sets it)

    @property
    def net_points(self) -> int:
        return self.redeemed_points - self.refunded_points

    @property
    def net_yuan(self) -> str:
        return yuan(self.redeemed_fen - self.refunded_fen)

    @property
    def privilege_yuan(self) -> str:
        return yuan(self.privilege_fen)

    @property
    def total_yuan(self) -> str:
        """What the month's lines come to: the points' yuan less refunds, and the privileges' value."""
        return yuan(self.redeemed_fen - self.refunded_fen + self.privilege_fen)

    @property
    def reconciled(self) -> bool | None:
        """None when the report carries no ledger figures (an outlet's own): nothing was compared."""
        if self.ledger_month_net is None or self.ledger_balance is None:
            return None
        return self.ledger_month_net == self.net_points and self.ledger_balance == self.all_time_net


def _month_bounds(month: str, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    year, mon = (int(x) for x in month.split("-"))
    zone = ZoneInfo(timezone)
    start = dt.datetime(year, mon, 1, tzinfo=zone)
    end = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


def visible_partner(session: Session, actor: Principal, partner_id: int, *, field: str | None = None) -> Partner:
    """Staff in scope, or any outlet of the partner itself. One 404 for missing and out of reach,
    naming `field` when the id came in the request."""
    partner = session.get(Partner, partner_id)
    missing = NotFound("Partner not found.", details={field: ["No such partner in your scope."]} if field else None)
    if partner is None:
        raise missing
    if actor.kind == "outlet":
        if actor.partner_id != partner.id:
            raise missing
    elif not actor.is_staff or not actor.in_scope(identity.partner_path(session, partner)):
        raise missing
    elif not actor.has_role("approver", "auditor", "clerk"):
        raise Forbidden("Your role does not see settlements.", code="role_required")
    return partner


def settle(session: Session, actor: Principal, partner_id: int, month: str, timezone: str, *,
           field: str | None = None, fmt: str = "json") -> Settlement:
    """A partner's month. Staff reading it (on screen or as the `fmt` download) are audited."""
    partner = visible_partner(session, actor, partner_id, field=field)
    start, end = _month_bounds(month, timezone)
    result = Settlement(partner=partner, month=month, timezone=timezone)
    # An outlet sees only its own counter's redemptions; staff see the partner's whole month.
    own_redemptions = [Redemption.outlet_id == actor.id] if actor.kind == "outlet" else []
    own_refunds = [Refund.outlet_id == actor.id] if actor.kind == "outlet" else []
    names = {}
    for r, scenario, outlet in session.execute(
            select(Redemption, Scenario, Outlet).join(Scenario, Scenario.id == Redemption.scenario_id)
            .join(Outlet, Outlet.id == Redemption.outlet_id)
            .where(Redemption.partner_id == partner.id, Redemption.created_at >= start, Redemption.created_at < end,
                   *own_redemptions)
            .order_by(Redemption.id)):
        names.setdefault(r.participant_id, None)
        result.lines.append({"type": "redemption", "id": r.id, "at": r.created_at, "outlet": outlet.name,
                             "scenario": scenario.code, "scenario_name": r.terms.get("name_zh", scenario.name_zh),
                             "kind": r.kind, "participant_id": r.participant_id, "points": r.points,
                             "yuan": yuan(r.yuan_value_fen)})
        if r.kind == "spend":
            result.redeemed_points += r.points
            result.redeemed_fen += r.yuan_value_fen
        else:
            result.privilege_uses += 1
            result.privilege_fen += r.yuan_value_fen
    for f, r, outlet in session.execute(
            select(Refund, Redemption, Outlet).join(Redemption, Redemption.id == Refund.redemption_id)
            .join(Outlet, Outlet.id == Refund.outlet_id)
            .where(Redemption.partner_id == partner.id, Refund.created_at >= start, Refund.created_at < end,
                   *own_refunds)
            .order_by(Refund.id)):
        names.setdefault(r.participant_id, None)
        result.lines.append({"type": "refund", "id": f.id, "at": f.created_at, "outlet": outlet.name,
                             "scenario": r.terms.get("code"), "scenario_name": r.terms.get("name_zh"), "kind": r.kind,
                             "participant_id": r.participant_id, "points": -f.points, "yuan": f"-{yuan(f.yuan_value_fen)}"})
        result.refunded_points += f.points
        result.refunded_fen += f.yuan_value_fen
    for pid, name in session.execute(select(Participant.id, Participant.name).where(Participant.id.in_(names))):
        names[pid] = mask_name(name)
    for line in result.lines:
        line["participant"] = names.get(line.pop("participant_id"), "")
    if actor.kind != "outlet":
        _reconcile(session, result, start, end)
    result.lines.sort(key=lambda line: (line["at"], line["type"]))
    if actor.is_staff:
        identity.audit(session, actor, "settlement.view", object_type="partner", object_id=partner.id,
                       region_path=identity.partner_path(session, partner), details={"month": month, "format": fmt})
    return result


def _reconcile(session: Session, result: Settlement, start: dt.datetime, end: dt.datetime) -> None:
    """The partner's ledger account this month and ever, and its redemptions less refunds ever."""
    partner = result.partner
    result.ledger_month_net = result.ledger_balance = 0  # no account yet: nothing moved
    account_id = session.scalar(select(Account.id).where(Account.code == f"partner:{partner.id}"))
    if account_id is not None:
        result.ledger_month_net = int(session.scalar(
            select(func.coalesce(func.sum(Entry.amount), 0)).join(Posting, Posting.id == Entry.posting_id)
            .where(Entry.account_id == account_id, Entry.effective_at >= start, Entry.effective_at < end,
                   Posting.kind.in_(("redemption", "refund")))) or 0)
        result.ledger_balance = int(session.scalar(select(func.coalesce(func.sum(Entry.amount), 0))
                                                   .where(Entry.account_id == account_id)) or 0)
    redeemed = session.scalar(select(func.coalesce(func.sum(Redemption.points), 0))
                              .where(Redemption.partner_id == partner.id)) or 0
    refunded = session.scalar(select(func.coalesce(func.sum(Refund.points), 0)).join(Redemption)
                              .where(Redemption.partner_id == partner.id)) or 0
    result.all_time_net = int(redeemed) - int(refunded)


RECONCILED = {True: "是 yes", False: "否 NO", None: "不适用 n/a"}


def header(s: Settlement) -> list[str]:
    """The time column names its zone: the county's, the calendar the month was cut on."""
    return ["类型 type", "编号 id", f"时间 time ({s.timezone})", "网点 outlet", "场景 scenario", "名称 name",
            "参与者 participant", "积分 points", "金额(元) yuan"]


def table(s: Settlement) -> list[list[Any]]:
    """Rows dated on the county's calendar: a redemption at 02:30 on 1 March there is in March's
    settlement and must not read as 28 February (UTC) in the download. Points and yuan are numbers
    (yuan a Decimal: "28.00" in the CSV, a number shown with two decimals in the XLSX), so that the
    partner's spreadsheet can sum them."""
    zone = ZoneInfo(s.timezone)
    rows = [[line["type"], line["id"], line["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M"),
             line["outlet"], line["scenario"], line["scenario_name"], line["participant"], line["points"],
             Decimal(line["yuan"])] for line in s.lines]
    rows.append(["积分兑换 spend", "", "", "", "", "", "", s.net_points, Decimal(s.net_yuan)])
    rows.append(["特权 privilege", "", "", "", "", f"{s.privilege_uses} 次 uses", "", 0, Decimal(s.privilege_yuan)])
    rows.append(["合计 total", "", "", "", "", "", "", s.net_points, Decimal(s.total_yuan)])
    rows.append(["对账 reconciled", "", "", "", "", "", "", RECONCILED[s.reconciled], ""])
    return rows


def to_csv(s: Settlement) -> bytes:
    return csv_bytes(header(s), table(s))


def to_xlsx(s: Settlement) -> bytes:
    return xlsx_bytes(header(s), table(s), s.month, widths=(14, 8, 24, 20, 10, 24, 12, 10, 12),
                      number_formats={8: "0.00"})
