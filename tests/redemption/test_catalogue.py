"""The 103 scenarios load from the county's data file, and are checked field by field."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from identity import services as identity
from identity.models import Partner
from infra.errors import ValidationFailed
from redemption.models import FAMILIES, Scenario
from redemption.services import catalogue
from tests import factories as f


def test_the_seed_file_loads_103_scenarios_once(session, client):
    county = identity.create_region(session, level="county", code="JY", name="解忧县")
    for n, name in enumerate(("城关镇", "河西乡", "青山镇", "柳林乡"), start=1):
        identity.create_region(session, level="township", code=f"JY{n:02d}", name=name, parent=county)
    made = catalogue.seed(session, f.SHARDS)
    assert made["scenarios"] == 103 and made["partners"] >= 25
    assert catalogue.seed(session, f.SHARDS)["scenarios"] == 0
    kinds = dict(session.execute(select(Scenario.kind, func.count()).group_by(Scenario.kind)).all())
    assert kinds["spend"] + kinds["privilege"] == 103 and kinds["privilege"] >= 30
    assert set(session.scalars(select(Scenario.family).distinct())) <= set(FAMILIES)
    assert session.scalar(select(Partner.name).where(Partner.code == "HUIMIN")) == "惠民连锁超市"
    listed = client.get("/api/v1/scenarios", query_string={"family": "loans"},
                        environ_base={"HTTP_ACCEPT_LANGUAGE": "en"}).json
    assert listed and all(s["family"] == "loans" for s in listed)
    assert all(s["name"] == s["name_en"] for s in listed)


@pytest.mark.parametrize("changes, field", [
    ({"kind": "privilege", "points_cost": 0, "required_grade": None}, "required_grade"),
    ({"kind": "spend", "points_cost": 0}, "points_cost"),
    ({"family": "casino"}, "family"),
    ({"valid_from": dt.date(2026, 5, 1), "valid_until": dt.date(2026, 4, 1)}, "valid_until"),
])
def test_invalid_scenarios_name_the_field(changes, field):
    base = {"code": "X1", "family": "shopping", "name_zh": "x", "name_en": "x", "partner_id": 1, "kind": "spend",
            "points_cost": 5, "required_grade": None, "yuan_value_fen": 0, "valid_from": dt.date(2024, 1, 1),
            "valid_until": None, "limit_day": None, "limit_month": None, "limit_year": None, "total_quota": None}
    with pytest.raises(ValidationFailed) as err:
        catalogue.check(Scenario(**{**base, **changes}))
    assert field in err.value.details
