"""Small shared pieces: local periods for limits and settlement, and money in fen."""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from infra.auth import Principal
from infra.clock import local_date  # noqa: F401  (limits count by the county's day; re-exported here)
from infra.errors import Forbidden

IDEM_SCOPE = "redemption"


def periods(day: dt.date) -> dict[str, str]:
    iso = day.isoformat()  # "YYYY-MM-DD"; the month is its first seven characters (no strftime per redemption)
    return {"day": f"D{iso}", "month": f"M{iso[:7]}", "year": f"Y{day.year}"}


def fen(yuan: str | Decimal | float) -> int:
    return int((Decimal(str(yuan)) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def yuan(fen_value: int) -> str:
    return f"{Decimal(fen_value) / 100:.2f}"


def require_outlet(actor: Principal) -> None:
    if actor.kind != "outlet" or actor.partner_id is None:
        raise Forbidden("Only an outlet's API key can do this.", code="outlet_only")
