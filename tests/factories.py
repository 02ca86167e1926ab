"""Plain-function factories: real rows made through the real services."""
from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from identity import services as identity
from identity.models import Participant, Region
from infra.auth import SYSTEM, Principal
from ledger.models import Account
from ledger.services import accounts
from ledger.services.posting import Leg, PostingRequest, PostingResult, post

_counter = itertools.count(1)
SHARDS = 4


@dataclass
class Tree:
    county: Region
    town_a: Region
    town_b: Region
    village_a: Region
    village_b: Region
    grid_a: Region
    grid_b: Region


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def region_tree(session: Session) -> Tree:
    """A county with two townships, one village and one grid in each."""
    tag = unique("T")
    county = identity.create_region(session, level="county", code=f"{tag}C", name="测试县")
    town_a = identity.create_region(session, level="township", code=f"{tag}A", name="甲镇", parent=county)
    town_b = identity.create_region(session, level="township", code=f"{tag}B", name="乙乡", parent=county)
    village_a = identity.create_region(session, level="village", code=f"{tag}AV", name="甲村", parent=town_a)
    village_b = identity.create_region(session, level="village", code=f"{tag}BV", name="乙村", parent=town_b)
    grid_a = identity.create_region(session, level="grid", code=f"{tag}AVG", name="甲村一格", parent=village_a)
    grid_b = identity.create_region(session, level="grid", code=f"{tag}BVG", name="乙村一格", parent=village_b)
    return Tree(county, town_a, town_b, village_a, village_b, grid_a, grid_b)


def participant(session: Session, grid: Region, *, name: str = "张秀梅", password: str | None = "pass-word-1") -> Participant:
    phone = f"15{next(_counter) % 10**9:09d}"
    while identity_phone_taken(session, phone):
        phone = f"16{uuid.uuid4().int % 10**9:09d}"
    return identity.create_participant(session, name=name, phone=phone, region=grid, password=password)


def identity_phone_taken(session: Session, phone: str) -> bool:
    from sqlalchemy import select

    return session.scalar(select(Participant.id).where(Participant.phone == phone)) is not None


def account_of(session: Session, person: Participant) -> Account:
    return accounts.participant_account(session, person.id)


def staff(session: Session, role: str, scope: Region, *, participant_id: int | None = None,
          created_by: int | None = None) -> Principal:
    """A staff account made directly (as the command line makes one): `created_by` as an admin's
    would be, for accounts the API no longer lets that admin make."""
    user = identity.create_staff(session, username=unique(role), display_name=f"{role} 测试", role=role, scope=scope,
                                 password="long-enough-password", participant_id=participant_id,
                                 created_by=created_by)
    return identity.staff_principal(user)


def award(session: Session, account_id: int, points: int, *, key: str | None = None,
          reason: str = "信息上报：矛盾隐患线索经核实") -> PostingResult:
    issuance = accounts.system_account(session, accounts.ISSUANCE, SHARDS)
    return post(session, SYSTEM, PostingRequest(kind="award", reason=reason, idempotency_key=key,
                                                legs=[Leg(account_id, points), Leg(issuance.id, -points)]))


def spend(session: Session, account_id: int, points: int, partner_account_id: int, *, key: str | None = None,
          actor: Principal = SYSTEM) -> PostingResult:
    return post(session, actor, PostingRequest(kind="redemption", reason="超市购物抵扣", idempotency_key=key,
                                               legs=[Leg(account_id, -points), Leg(partner_account_id, points)]))


def partner_account(session: Session, region: Region) -> Account:
    partner = identity.create_partner(session, code=unique("P"), name="惠民超市", region=region)
    return accounts.partner_account(session, partner.id, SHARDS)


def bearer(session: Session, principal_kind: str, subject_id: int) -> dict[str, str]:
    """Auth header for a staff user or participant without going through the login endpoint."""
    import datetime as dt

    token, _ = identity.issue_token(session, principal_kind, subject_id, dt.timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def login(client: FlaskClient, username: str, password: str = "long-enough-password") -> dict[str, str]:
    response = client.post("/api/v1/auth/staff/login", json={"username": username, "password": password})
    assert response.status_code == 201, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


# --- scoring ---------------------------------------------------------------------------------

CASE_RECORD = {"look": "观察到双方争吵", "listen": "分别倾听", "ask": "询问缘由", "help": "协助协商",
               "report": "报告村委", "analyse": "分析症结", "explain": "讲解法律", "record": "建档"}


def submission(indicator: str = "INF-1", members: list[tuple[int, int]] | None = None, **overrides):  # noqa: ANN201
    import datetime as dt

    from infra.clock import local_date
    from scoring.services.submissions import Submission

    # Yesterday on the county's calendar, which the service checks work dates against: the
    # server's date is UTC's, a day behind from 00:00 to 08:00 in Shanghai.
    values = {"indicator_code": indicator, "work_date": local_date() - dt.timedelta(days=1),
              "description": "发现邻里宅基地纠纷苗头并上报", "members": members or [],
              "conflict_item": "C2-01", "warning_colour": "yellow", "case_record": {}, "quantity": 1}
    if indicator.startswith("MED"):
        values.update(conflict_item=None, warning_colour=None, case_record=dict(CASE_RECORD))
    if indicator.startswith("PRO") or indicator in ("INF-4",):
        values.update(conflict_item=None, warning_colour=None)
    values.update(overrides)
    return Submission(**values)


def contribution(session: Session, clerk: Principal, person: Participant, indicator: str = "INF-1", **overrides):  # noqa: ANN201
    from scoring.services.submissions import submit

    return submit(session, clerk, submission(indicator, [(person.id, 1)], **overrides))


# --- redemption ------------------------------------------------------------------------------

def counter_config(**overrides):  # noqa: ANN201
    import datetime as dt

    from redemption.services.counter import CounterConfig

    values = {"secret_key": "test-secret", "timezone": "Asia/Shanghai", "hold_ttl": dt.timedelta(minutes=30),
              "refund_window": dt.timedelta(days=7), "shards": SHARDS}
    values.update(overrides)
    return CounterConfig(**values)


def shop(session: Session, region: Region, outlets: int = 2):  # noqa: ANN201
    """A partner with outlets, its ledger account, and outlet principals."""
    partner = identity.create_partner(session, code=unique("P"), name="惠民超市", region=region)
    accounts.partner_account(session, partner.id, SHARDS)
    made = [identity.create_outlet(session, partner, name=f"门店{i}", region=region) for i in range(outlets)]
    desks = [Principal(kind="outlet", id=o.id, label=f"outlet:{o.id}", partner_id=partner.id) for o in made]
    return partner, made, desks


def scenario(session: Session, partner, outlets, **overrides):  # noqa: ANN001, ANN201
    import datetime as dt

    from redemption.models import Scenario, ScenarioOutlet

    values = {"code": unique("S")[:16], "family": "shopping", "name_zh": "积分换购大米", "name_en": "Rice for points",
              "partner_id": partner.id, "kind": "spend", "points_cost": 10, "required_grade": None,
              "yuan_value_fen": 1000, "valid_from": dt.date(2024, 1, 1), "terms_zh": "凭码兑换", "terms_en": "Show code"}
    values.update(overrides)
    item = Scenario(**values, outlets=[ScenarioOutlet(outlet_id=o.id) for o in outlets])
    session.add(item)
    session.flush()
    return item


def code_for(session: Session, person: Participant, secret_key: str = "test-secret") -> str:
    import datetime as dt

    from redemption.services import codes

    digits, _ = codes.issue(session, identity.participant_principal(person), secret_key=secret_key,
                            ttl=dt.timedelta(minutes=5))
    return digits
