"""At the counter: redeem, privileges, holds, refunds, and who may see what."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import null, select, update

from infra.auth import SYSTEM
from infra.errors import Conflict, IdempotencyConflict, NotFound, ValidationFailed
from ledger.models import Posting
from ledger.services import accounts
from redemption.models import Hold, Redemption, UsageCounter
from redemption.services import catalogue, counter
from tests import factories as f

CFG = f.counter_config()


@pytest.fixture
def world(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="张秀梅")
    account = f.account_of(session, person)
    f.award(session, account.id, 100)
    partner, outlets, desks = f.shop(session, tree.town_a)
    rice = f.scenario(session, partner, outlets, points_cost=30, yuan_value_fen=3000, limit_day=2)
    return tree, person, account, partner, outlets, desks, rice


def test_redeeming_debits_the_points_into_the_partners_account(session, world):
    _tree, person, account, partner, _o, desks, rice = world
    redemption, replayed = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                                          idem_key="till-0001-a", cfg=CFG)
    assert not replayed and redemption.points == 30 and redemption.terms["name_zh"] == "积分换购大米"
    assert accounts.balance(session, account.id) == 70
    assert accounts.balance(session, accounts.partner_account(session, partner.id, f.SHARDS).id) == 30


def test_a_code_is_single_use_and_retries_replay(session, world):
    _tree, person, account, _p, _o, desks, rice = world
    digits = f.code_for(session, person)
    first, _ = counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="till-0002-a", cfg=CFG)
    again, replayed = counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="till-0002-a",
                                     cfg=CFG)
    assert replayed and again.id == first.id and accounts.balance(session, account.id) == 70
    with pytest.raises(NotFound) as err:
        counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="till-0002-b", cfg=CFG)
    assert err.value.code == "code_invalid"
    with pytest.raises(IdempotencyConflict):
        counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                       idem_key="till-0002-a", cfg=CFG)


def test_an_expired_code_is_refused(session, world):
    _tree, person, _a, _p, _o, desks, rice = world
    from redemption.services import codes
    from identity.services import participant_principal

    digits, code = codes.issue(session, participant_principal(person), secret_key="test-secret",
                               ttl=dt.timedelta(seconds=-1))
    with pytest.raises(NotFound):
        counter.lookup(session, desks[0], digits, CFG)


def test_lookup_shows_masked_name_grade_and_reasons(session, world):
    tree, person, _a, partner, outlets, desks, rice = world
    loan = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="AA",
                      yuan_value_fen=0, name_zh="贷款优先审批")
    gift = f.scenario(session, partner, outlets, points_cost=500, name_zh="电饭煲")
    view = counter.lookup(session, desks[0], f.code_for(session, person), CFG)
    assert view.masked_name == "张*梅" and view.grade == "A"
    reasons = {v.scenario.id: [r["code"] for r in v.reasons] for v in view.verdicts}
    assert reasons == {rice.id: [], loan.id: ["grade_required"], gift.id: ["insufficient_points"]}


def test_privilege_records_a_use_and_deducts_nothing(session, world):
    tree, person, account, partner, outlets, desks, _rice = world
    window = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="A",
                        yuan_value_fen=0, name_zh="绿色通道优先办理", limit_month=1)
    used, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=window.id,
                             idem_key="till-0003-a", cfg=CFG)
    assert used.kind == "privilege" and used.points == 0 and used.posting_id is None
    assert accounts.balance(session, account.id) == 100
    with pytest.raises(Conflict) as err:
        counter.redeem(session, desks[1], digits=f.code_for(session, person), scenario_id=window.id,
                       idem_key="till-0003-b", cfg=CFG)
    assert err.value.code == "limit_month"


def test_daily_limit_and_quota_hold(session, world):
    tree, person, _a, partner, outlets, desks, rice = world
    for n in range(2):
        counter.redeem(session, desks[n], digits=f.code_for(session, person), scenario_id=rice.id,
                       idem_key=f"till-0004-{n}", cfg=CFG)
    with pytest.raises(Conflict) as err:
        counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                       idem_key="till-0004-x", cfg=CFG)
    assert err.value.code == "limit_day"
    scarce = f.scenario(session, partner, outlets, points_cost=1, total_quota=1)
    other = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, other).id, 5)
    counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=scarce.id,
                   idem_key="till-0005-a", cfg=CFG)
    with pytest.raises(Conflict) as err:
        counter.redeem(session, desks[0], digits=f.code_for(session, other), scenario_id=scarce.id,
                       idem_key="till-0005-b", cfg=CFG)
    assert err.value.code == "quota_exhausted"


def test_a_refusal_leaves_the_code_usable(session, world):
    _tree, person, account, partner, outlets, desks, rice = world
    gift = f.scenario(session, partner, outlets, points_cost=500)
    digits = f.code_for(session, person)
    with pytest.raises(Conflict):
        with session.begin_nested():
            counter.redeem(session, desks[0], digits=digits, scenario_id=gift.id, idem_key="till-0006-a", cfg=CFG)
    counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="till-0006-b", cfg=CFG)
    assert accounts.balance(session, account.id) == 70


def test_hold_then_capture_less_returns_the_rest(session, world):
    _tree, person, account, partner, _o, desks, rice = world
    held, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                           idem_key="till-0007-h", cfg=CFG)
    assert accounts.balance(session, account.id) == 70  # held points are not available
    redemption, _ = counter.capture(session, desks[0], held.id, points=25, idem_key="till-0007-c", cfg=CFG)
    assert redemption.points == 25 and held.status == "captured"
    assert accounts.balance(session, account.id) == 75
    assert accounts.balance(session, accounts.partner_account(session, partner.id, f.SHARDS).id) == 25
    with pytest.raises(Conflict):
        counter.capture(session, desks[0], held.id, points=1, idem_key="till-0007-d", cfg=CFG)


def test_a_capture_keeps_the_terms_the_points_were_held_under(session, world):
    """The price shown when the points were set aside holds, whatever an admin changes meanwhile."""
    tree, person, _account, partner, _o, desks, rice = world
    held, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                           idem_key="till-0009-h", cfg=CFG)
    admin = f.staff(session, "admin", tree.county)
    catalogue.update(session, admin, rice.id, {"points_cost": 20, "yuan_value_fen": 5000, "terms_zh": "新条款"})
    redemption, _ = counter.capture(session, desks[0], held.id, points=15, idem_key="till-0009-c", cfg=CFG)
    assert redemption.yuan_value_fen == 1500  # 3000 fen for 30 points when held, not 5000 for 20
    assert (redemption.terms["points_cost"], redemption.terms["terms_zh"]) == (30, "凭码兑换")
    later = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                           idem_key="till-0009-r", cfg=CFG)[0]
    assert (later.points, later.yuan_value_fen) == (20, 5000)  # new business uses the new terms


def test_a_hold_granted_before_a_suspension_still_captures_within_its_expiry(session, world):
    """Eligibility is judged when the points are set aside; the sale under way completes, as its
    terms do, and the hold's own expiry (minutes) bounds how long that lasts. New holds are refused."""
    tree, person, _account, partner, _o, desks, rice = world
    held, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                           idem_key="till-0010-h", cfg=CFG)
    catalogue.set_status(session, f.staff(session, "admin", tree.county), rice.id, "suspended")
    redemption, _ = counter.capture(session, desks[0], held.id, points=None, idem_key="till-0010-c", cfg=CFG)
    assert redemption.points == 30 and held.status == "captured"
    with pytest.raises(Conflict) as err:
        counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                     idem_key="till-0010-i", cfg=CFG)
    assert err.value.code == "suspended"


def test_hold_above_the_cost_and_capture_above_the_hold_are_refused(session, world):
    _tree, person, _a, _p, _o, desks, rice = world
    with pytest.raises(ValidationFailed) as err:
        counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=900,
                     idem_key="till-0008-x", cfg=CFG)
    assert "points" in err.value.details
    held, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                           idem_key="till-0008-h", cfg=CFG)
    with pytest.raises(ValidationFailed) as err:
        counter.capture(session, desks[0], held.id, points=31, idem_key="till-0008-c", cfg=CFG)
    assert "points" in err.value.details


def test_void_and_expiry_release_exactly_once(session, world):
    _tree, person, account, _p, _o, desks, rice = world
    voided, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                             idem_key="till-0009-h", cfg=CFG)
    counter.void(session, desks[0], voided.id, CFG)
    counter.void(session, desks[0], voided.id, CFG)
    lapsing, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=20,
                              idem_key="till-0009-i", cfg=CFG)
    assert accounts.balance(session, account.id) == 80
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert counter.expire_holds(session, SYSTEM, CFG, now=later) == 1
    assert counter.expire_holds(session, SYSTEM, CFG, now=later) == 0
    assert lapsing.status == "expired" and accounts.balance(session, account.id) == 100
    releases = session.scalars(select(Posting).where(Posting.kind == "release", Posting.source_id.in_(
        [str(voided.id), str(lapsing.id)]))).all()
    assert len(releases) == 2
    with pytest.raises(Conflict):
        counter.capture(session, desks[0], lapsing.id, points=None, idem_key="till-0009-c", cfg=CFG)


def test_refunds_partial_then_full_never_more_never_twice(session, world):
    _tree, person, account, partner, _o, desks, rice = world
    redemption, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                                   idem_key="till-0010-a", cfg=CFG)
    first, _ = counter.refund(session, desks[0], redemption.id, points=10, reason="少给一袋", idem_key="ref-0010-a",
                              cfg=CFG)
    assert first.yuan_value_fen == 1000 and accounts.balance(session, account.id) == 80
    with pytest.raises(Conflict) as err:
        counter.refund(session, desks[0], redemption.id, points=21, reason="超额", idem_key="ref-0010-b", cfg=CFG)
    assert err.value.code == "refund_exceeds"
    counter.refund(session, desks[0], redemption.id, points=None, reason="退货", idem_key="ref-0010-c", cfg=CFG)
    assert redemption.refunded_points == 30 and redemption.refunded_fen == 3000
    with pytest.raises(Conflict) as err:
        counter.refund(session, desks[0], redemption.id, points=None, reason="再退", idem_key="ref-0010-d", cfg=CFG)
    assert err.value.code == "already_refunded"
    again, replayed = counter.refund(session, desks[0], redemption.id, points=10, reason="少给一袋",
                                     idem_key="ref-0010-a", cfg=CFG)
    assert replayed and again.id == first.id and accounts.balance(session, account.id) == 100
    # refunded points spend like any others
    counter.redeem(session, desks[1], digits=f.code_for(session, person), scenario_id=rice.id,
                   idem_key="till-0010-z", cfg=CFG)
    assert accounts.balance(session, account.id) == 70


def test_refund_after_the_window_is_refused(session, world):
    _tree, person, _a, _p, _o, desks, rice = world
    redemption, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                                   idem_key="till-0011-a", cfg=CFG)
    closed = f.counter_config(refund_window=dt.timedelta(seconds=-1))
    with pytest.raises(Conflict) as err:
        counter.refund(session, desks[0], redemption.id, points=None, reason="太晚", idem_key="ref-0011-a", cfg=closed)
    assert err.value.code == "refund_window_closed"


def test_another_outlet_sees_nothing_of_mine(session, world):
    tree, person, _a, _partner, _o, desks, rice = world
    _p2, _o2, (stranger,) = f.shop(session, tree.town_a, outlets=1)
    redemption, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                                   idem_key="till-0012-a", cfg=CFG)
    held, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                           idem_key="till-0012-h", cfg=CFG)
    with pytest.raises(NotFound):
        counter.refund(session, stranger, redemption.id, points=None, reason="x", idem_key="ref-0012-a", cfg=CFG)
    with pytest.raises(NotFound):
        counter.capture(session, stranger, held.id, points=None, idem_key="cap-0012-a", cfg=CFG)
    with pytest.raises(NotFound):
        counter.void(session, stranger, held.id, CFG)
    with pytest.raises(NotFound):
        counter.redeem(session, stranger, digits=f.code_for(session, person), scenario_id=rice.id,
                       idem_key="till-0012-b", cfg=CFG)
    assert session.get(Hold, held.id).status == "held"


def test_scenario_changes_never_rewrite_a_past_redemption(session, world):
    tree, person, _a, _p, _o, desks, rice = world
    from redemption.services import catalogue

    redemption, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                                   idem_key="till-0013-a", cfg=CFG)
    admin = f.staff(session, "admin", tree.county)
    catalogue.update(session, admin, rice.id, {"points_cost": 45, "name_zh": "积分换购大米（新包装）"})
    assert redemption.points == 30 and redemption.terms["points_cost"] == 30
    assert redemption.terms["name_zh"] == "积分换购大米"


def test_a_full_refund_gives_back_the_limit_and_the_stock_a_partial_one_does_not(session, world):
    """A redemption refunded in full never happened for the participant's limits and the
    scenario's stock: redeem, refund everything, and the same participant may redeem again today;
    a partial refund leaves the redemption standing, so it still counts."""
    _tree, person, account, partner, outlets, desks, _rice = world
    gift = f.scenario(session, partner, outlets, points_cost=10, yuan_value_fen=500, limit_day=1, total_quota=1)

    def redeem(key: str):  # noqa: ANN202
        return counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=gift.id,
                              idem_key=key, cfg=CFG)[0]

    first = redeem("till-0020-a")
    counter.refund(session, desks[0], first.id, points=None, reason="顾客退货", idem_key="ref-0020-a", cfg=CFG)
    second = redeem("till-0020-b")  # once refused: limit_day, though the first was given back
    session.refresh(gift)
    assert gift.quota_used == 1 and accounts.balance(session, account.id) == 90
    counter.refund(session, desks[0], second.id, points=4, reason="少给", idem_key="ref-0020-b", cfg=CFG)
    with pytest.raises(Conflict) as err:
        redeem("till-0020-c")
    assert err.value.code == "limit_day"
    counter.refund(session, desks[0], second.id, points=None, reason="退完", idem_key="ref-0020-c", cfg=CFG)
    assert not redeem("till-0020-d").refunded_points


def _used(session, scenario) -> int:
    session.refresh(scenario)
    return scenario.quota_used


def test_a_refund_never_gives_back_quota_its_redemption_did_not_take(session, world):
    """Stock added after a redemption was never consumed by it: refunding it in full leaves the
    new stock as it is, so no unit is made out of nothing."""
    tree, person, _account, partner, outlets, desks, _rice = world
    admin = f.staff(session, "admin", tree.county)
    tea = f.scenario(session, partner, outlets, points_cost=5, yuan_value_fen=500)  # no quota yet
    people = [person] + [f.participant(session, tree.grid_a) for _ in range(3)]
    for other in people[1:]:
        f.award(session, f.account_of(session, other).id, 50)

    def redeem(who, key: str):  # noqa: ANN001, ANN202
        return counter.redeem(session, desks[0], digits=f.code_for(session, who), scenario_id=tea.id, idem_key=key,
                              cfg=CFG)[0]

    before = redeem(people[0], "till-0030-a")
    catalogue.update(session, admin, tea.id, {"total_quota": 2})  # two units of stock, from now on
    redeem(people[1], "till-0030-b")
    redeem(people[2], "till-0030-c")
    assert _used(session, tea) == 2
    counter.refund(session, desks[0], before.id, points=None, reason="顾客退货", idem_key="ref-0030-a", cfg=CFG)
    assert _used(session, tea) == 2  # was 1: a third unit out of nothing
    with pytest.raises(Conflict) as err:
        redeem(people[3], "till-0030-d")
    assert err.value.code == "quota_exhausted"


def test_a_refund_gives_back_the_unit_its_redemption_took_whatever_the_quota_became(session, world):
    """The unit a redemption took comes back on its full refund, exactly once, even when staff
    lifted the quota in between (so that restoring it later finds the stock whole) or lowered it
    to what was used."""
    tree, person, _account, partner, outlets, desks, _rice = world
    admin = f.staff(session, "admin", tree.county)
    other = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, other).id, 50)
    tea = f.scenario(session, partner, outlets, points_cost=5, yuan_value_fen=500, total_quota=1)
    first = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=tea.id,
                           idem_key="till-0031-a", cfg=CFG)[0]
    catalogue.update(session, admin, tea.id, {"total_quota": None})  # the quota lifted
    counter.refund(session, desks[0], first.id, points=None, reason="顾客退货", idem_key="ref-0031-a", cfg=CFG)
    assert _used(session, tea) == 0  # was 1: the unit was lost when the quota came back
    catalogue.update(session, admin, tea.id, {"total_quota": 1})
    second = counter.redeem(session, desks[0], digits=f.code_for(session, other), scenario_id=tea.id,
                            idem_key="till-0031-b", cfg=CFG)[0]
    assert _used(session, tea) == 1
    # Raised, then lowered to what is used: the refund gives back its one unit, no more.
    catalogue.update(session, admin, tea.id, {"total_quota": 5})
    third = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=tea.id,
                           idem_key="till-0031-c", cfg=CFG)[0]
    catalogue.update(session, admin, tea.id, {"total_quota": 2})
    counter.refund(session, desks[0], third.id, points=2, reason="少给", idem_key="ref-0031-b", cfg=CFG)
    assert _used(session, tea) == 2  # a partial refund leaves the redemption standing
    counter.refund(session, desks[0], third.id, points=None, reason="退完", idem_key="ref-0031-c", cfg=CFG)
    counter.refund(session, desks[0], third.id, points=None, reason="退完", idem_key="ref-0031-c", cfg=CFG)  # replay
    with pytest.raises(Conflict):
        counter.refund(session, desks[0], third.id, points=None, reason="再退", idem_key="ref-0031-d", cfg=CFG)
    assert _used(session, tea) == 1 and second.refunded_points == 0


def test_a_capture_and_a_redemption_made_in_python_give_back_what_they_took(session, world):
    """A capture takes the limits and quota as they stand at the capture, not as the hold's terms
    say; its refund gives back exactly those. The same on the step-by-step path of a redeem."""
    tree, person, account, partner, outlets, desks, _rice = world
    admin = f.staff(session, "admin", tree.county)
    tea = f.scenario(session, partner, outlets, points_cost=5, yuan_value_fen=500)  # no limit, no quota
    held, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=tea.id, points=None,
                           idem_key="till-0032-h", cfg=CFG)
    catalogue.update(session, admin, tea.id, {"limit_day": 1, "total_quota": 1})
    captured, _ = counter.capture(session, desks[0], held.id, points=None, idem_key="till-0032-c", cfg=CFG)
    day = f"D{counter.local_date(captured.created_at, CFG.timezone).isoformat()}"
    assert captured.terms["limit_day"] is None and captured.consumed == {"periods": [day], "quota": True}
    assert (_used(session, tea), _usage(session, person, tea, day)) == (1, 1)
    counter.refund(session, desks[0], captured.id, points=None, reason="顾客退货", idem_key="ref-0032-a", cfg=CFG)
    assert (_used(session, tea), _usage(session, person, tea, day)) == (0, 0)
    # The other way round: held under a limit and a quota that are gone by the capture.
    held, _ = counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=tea.id, points=None,
                           idem_key="till-0033-h", cfg=CFG)
    catalogue.update(session, admin, tea.id, {"limit_day": None, "total_quota": None})
    captured, _ = counter.capture(session, desks[0], held.id, points=None, idem_key="till-0033-c", cfg=CFG)
    assert captured.terms["limit_day"] == 1 and captured.consumed == {"periods": [], "quota": False}
    catalogue.update(session, admin, tea.id, {"limit_day": 1, "total_quota": 1})
    other = counter.redeem(session, desks[1], digits=f.code_for(session, person), scenario_id=tea.id,
                           idem_key="till-0033-r", cfg=CFG)[0]
    counter.refund(session, desks[0], captured.id, points=None, reason="顾客退货", idem_key="ref-0033-a", cfg=CFG)
    assert (_used(session, tea), _usage(session, person, tea, day)) == (1, 1)  # still the other redemption's
    # A redemption the Python way (a name Python would trim) records the same.
    padded = f.scenario(session, partner, outlets, name_zh="\u3000 大米", points_cost=5, limit_month=3, total_quota=4)
    done, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=padded.id,
                             idem_key="till-0034-a", cfg=CFG)
    month = f"M{day[1:8]}"
    assert done.consumed == {"periods": [month], "quota": True} and other.consumed["quota"] is True
    counter.refund(session, desks[0], done.id, points=None, reason="顾客退货", idem_key="ref-0034-a", cfg=CFG)
    assert (_used(session, padded), _usage(session, person, padded, month)) == (0, 0)
    assert accounts.balance(session, account.id) == 95  # only `other` stands


def _usage(session, person, scenario, period: str) -> int:
    return session.scalar(select(UsageCounter.used).where(
        UsageCounter.participant_id == person.id, UsageCounter.scenario_id == scenario.id,
        UsageCounter.period == period).execution_options(populate_existing=True)) or 0


def test_a_redemption_made_before_the_record_was_kept_is_given_back_as_before(session, world):
    _tree, person, _account, partner, outlets, desks, _rice = world
    tea = f.scenario(session, partner, outlets, points_cost=5, yuan_value_fen=500, limit_year=4, total_quota=3)
    done = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=tea.id,
                          idem_key="till-0035-a", cfg=CFG)[0]
    session.execute(update(Redemption).where(Redemption.id == done.id).values(consumed=null()))  # as before 0019
    session.expire_all()
    year = f"Y{counter.local_date(done.created_at, CFG.timezone).year}"
    assert (_used(session, tea), _usage(session, person, tea, year)) == (1, 1)
    counter.refund(session, desks[0], done.id, points=None, reason="顾客退货", idem_key="ref-0035-a", cfg=CFG)
    assert (_used(session, tea), _usage(session, person, tea, year)) == (0, 0)
