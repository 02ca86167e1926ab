"""The counter's redeem as one PostgreSQL call (`redemption_redeem`, migrations 0007 and 0010): what
it writes is what the step-by-step path writes (posting fingerprint, request digest, chain hashes,
terms), its refusals are the same and leave nothing, what needs Python still goes the Python way,
and with no transaction begun it is a unit of work of its own."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from infra.errors import Conflict, IdempotencyConflict, NotFound
from ledger.models import Posting
from ledger.services import accounts, integrity
from ledger.services.posting import Leg, PostingRequest
from redemption.models import OneTimeCode, Redemption, UsageCounter
from redemption.services import codes, counter, limits, redeem_sql
from tests import factories as f

CFG = f.counter_config()


@pytest.fixture
def world(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    f.award(session, account.id, 100)
    partner, outlets, desks = f.shop(session, tree.town_a)
    return person, account, partner, outlets, desks


@pytest.fixture
def outcomes(monkeypatch):
    """The outcome of every `redemption_redeem` call, to tell which path a redemption took."""
    seen: list[str] = []
    real = redeem_sql.redeem

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            got = real(*args, **kwargs)
        except DBAPIError as exc:  # a refusal raised in the call: its message names it
            seen.append(exc.orig.diag.message_primary)
            raise
        seen.append(got.outcome)
        return got

    monkeypatch.setattr(redeem_sql, "redeem", spy)
    return seen


# Names the JSON in the fingerprint must escape exactly as Python does, and one Python would strip.
@pytest.mark.parametrize("name", ['大米 "特价" \\ 5斤', "换购\n\t新品\u2028", "Ünïcödé ✓ 🎉"])
def test_one_call_writes_what_the_ledger_would(session, world, outcomes, name):
    person, account, partner, outlets, desks = world
    rice = f.scenario(session, partner, outlets, name_zh=name, points_cost=30, yuan_value_fen=3000,
                      limit_day=3, total_quota=10)
    done, replayed = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                                    idem_key="one-call-0001", cfg=CFG)
    assert outcomes == ["done"] and not replayed
    assert session.get(Redemption, done.id) is done
    stored = session.execute(select(Redemption.terms, Redemption.points, Redemption.request_digest,
                                    Redemption.consumed).where(Redemption.id == done.id)).one()
    assert stored.terms == done.terms == counter._terms(rice) and stored.points == done.points == 30
    # What it took, recorded as the step-by-step path records it: a full refund gives back that.
    today = counter.local_date(done.created_at, CFG.timezone)
    assert stored.consumed == done.consumed == limits.consumption(rice, today) == {
        "periods": [f"D{today.isoformat()}"], "quota": True}
    posting = session.get(Posting, done.posting_id)
    assert posting.reason == f"{name}（{rice.code}）" and posting.kind == "redemption"
    assert posting.idem_scope == "redemption" and posting.idem_key == f"{desks[0].id}:redeem:one-call-0001"
    partner_account = accounts.partner_account(session, partner.id, f.SHARDS).id
    assert posting.request_digest == PostingRequest(
        kind="redemption", reason=posting.reason, legs=[Leg(account.id, -30), Leg(partner_account, 30)],
        idempotency_key=posting.idem_key).digest()
    assert integrity.verify_chains(session).ok  # the fingerprint and hashes are the ledger's own
    assert accounts.balance(session, account.id) == 70
    session.refresh(rice)
    assert rice.quota_used == 1


def test_refusals_in_one_call_take_nothing(session, world, outcomes):
    person, account, partner, outlets, desks = world
    tea = f.scenario(session, partner, outlets, points_cost=1, limit_month=1, total_quota=5)
    counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=tea.id,
                   idem_key="one-call-0002", cfg=CFG)
    digits = f.code_for(session, person)
    with pytest.raises(Conflict) as err:
        with session.begin_nested():  # as a request does: the refusal rolls back, the claim with it
            counter.redeem(session, desks[0], digits=digits, scenario_id=tea.id, idem_key="one-call-0003", cfg=CFG)
    assert err.value.code == "limit_month" and err.value.details["reasons"] == [{"code": "limit_month", "limit": 1}]
    code = session.scalar(select(OneTimeCode).where(OneTimeCode.code_digest == counter.codes.digest("test-secret",
                                                                                                    digits)))
    session.refresh(code)
    assert code.used_at is None  # the code stays usable
    sold_out = f.scenario(session, partner, outlets, points_cost=1, total_quota=1, quota_used=1)
    with pytest.raises(Conflict) as err:
        with session.begin_nested():
            counter.redeem(session, desks[0], digits=digits, scenario_id=sold_out.id, idem_key="one-call-0004",
                           cfg=CFG)
    assert err.value.code == "quota_exhausted"
    gift = f.scenario(session, partner, outlets, points_cost=500)
    with pytest.raises(Conflict) as err:
        with session.begin_nested():
            counter.redeem(session, desks[0], digits=digits, scenario_id=gift.id, idem_key="one-call-0005", cfg=CFG)
    assert err.value.code == "insufficient_points" and "99" not in str(err.value.details)
    assert outcomes == ["done", "limit_month", "quota_exhausted", "insufficient balance"]  # all raised in the call
    assert accounts.balance(session, account.id) == 99
    with pytest.raises(NotFound):
        counter.redeem(session, desks[0], digits=digits, scenario_id=gift.id + 100000, idem_key="one-call-0006",
                       cfg=CFG)
    assert outcomes[-1] == "no_scenario"


def test_what_needs_python_goes_the_python_way(session, world, outcomes):
    person, account, partner, outlets, desks = world
    suspended = f.scenario(session, partner, outlets, status="suspended")
    with pytest.raises(Conflict) as err:
        with session.begin_nested():
            counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=suspended.id,
                           idem_key="one-call-0007", cfg=CFG)
    assert err.value.code == "suspended"
    padded = f.scenario(session, partner, outlets, name_zh="\u3000 大米", points_cost=5)  # Python strips it
    done, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=padded.id,
                             idem_key="one-call-0008", cfg=CFG)
    assert session.get(Posting, done.posting_id).reason == f"大米（{padded.code}）"
    window = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="AAA",
                        yuan_value_fen=0)
    with pytest.raises(Conflict) as err:
        with session.begin_nested():
            counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=window.id,
                           idem_key="one-call-0009", cfg=CFG)
    assert err.value.code == "grade_required"
    assert outcomes == ["python", "python", "python"]  # the call wrote nothing for any of them
    assert integrity.verify_chains(session).ok


def test_a_retry_replays_and_a_reused_key_is_refused(session, world, outcomes):
    person, _account, partner, outlets, desks = world
    rice = f.scenario(session, partner, outlets, points_cost=3)
    digits = f.code_for(session, person)
    done, _ = counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="one-call-0010", cfg=CFG)
    again, replayed = counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="one-call-0010",
                                     cfg=CFG)
    assert replayed and again.id == done.id and outcomes == ["done", "replay"]
    with pytest.raises(IdempotencyConflict):
        counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id,
                       idem_key="one-call-0010", cfg=CFG)
    other_desk, _ = counter.redeem(session, desks[1], digits=f.code_for(session, person), scenario_id=rice.id,
                                   idem_key="one-call-0010", cfg=CFG)  # keys are per outlet
    assert other_desk.id != done.id and outcomes[-1] == "done"


FRESH_PROCESS = """
import sys
from sqlalchemy.orm import Session
from infra.auth import Principal
from infra.db import make_engine
from redemption.services import counter
from tests import factories as f

url, outlet_id, partner_id, digits, scenario_id = sys.argv[1:]
engine = make_engine(url)
with Session(engine) as session:  # nothing has used the ORM in this process yet
    desk = Principal(kind="outlet", id=int(outlet_id), label=f"outlet:{outlet_id}", partner_id=int(partner_id))
    done, _ = counter.redeem(session, desk, digits=digits, scenario_id=int(scenario_id), idem_key="fresh-0001",
                             cfg=f.counter_config())
    session.commit()
    print(done.id, done.points)
"""


@pytest.mark.concurrency
def test_a_fresh_process_redeems_in_one_call(committed_factory, pg_url):
    """A new web worker's first request: the returned object is built before anything else in the
    process has used the ORM (a worker once failed every such request)."""
    import subprocess
    import sys
    from pathlib import Path

    with committed_factory() as session:
        tree = f.region_tree(session)
        person = f.participant(session, tree.grid_a)
        f.award(session, f.account_of(session, person).id, 50)
        partner, outlets, desks = f.shop(session, tree.town_a)
        rice = f.scenario(session, partner, outlets, points_cost=20)
        digits = f.code_for(session, person)
        session.commit()
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, pg_url, str(desks[0].id), str(partner.id), digits,
                           str(rice.id)], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "20"


@pytest.mark.concurrency
def test_a_key_reused_for_other_content_while_the_first_is_in_flight_is_a_422(committed_factory):
    """The second request waits at the posting's idempotency gate; when the first commits, it is
    told its key was used for something else, and its own code, counters and quota roll back."""
    import threading
    import time

    with committed_factory() as s:
        tree = f.region_tree(s)
        person = f.participant(s, tree.grid_a)
        f.award(s, f.account_of(s, person).id, 100)
        partner, outlets, desks = f.shop(s, tree.town_a)
        cheap = f.scenario(s, partner, outlets, points_cost=10).id
        dear = f.scenario(s, partner, outlets, points_cost=20).id
        first_code, second_code = f.code_for(s, person), f.code_for(s, person)
        s.commit()
    key = f"inflight-{person.id}"
    first = committed_factory()
    first.connection()  # a request that has begun its transaction: the call runs in it
    counter.redeem(first, desks[0], digits=first_code, scenario_id=cheap, idem_key=key, cfg=CFG)  # not committed
    out: dict = {}

    def second() -> None:
        with committed_factory() as s2:
            try:
                counter.redeem(s2, desks[0], digits=second_code, scenario_id=dear, idem_key=key, cfg=CFG)
                out["result"] = "redeemed"
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                out["result"] = exc
            s2.rollback()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(1.0)  # the second request now waits on the first's posting key
    first.commit()
    first.close()
    thread.join(20)
    assert isinstance(out["result"], IdempotencyConflict), repr(out["result"])
    with committed_factory() as s:
        unused = s.scalar(select(OneTimeCode).where(OneTimeCode.code_digest == codes.digest(CFG.secret_key, second_code)))
        assert unused is None or unused.used_at is None
        assert accounts.balance(s, f.account_of(s, person).id) == 90


@pytest.mark.concurrency
def test_with_no_transaction_begun_the_call_is_its_own_unit_of_work(committed_factory):
    """A request that has touched nothing before redeeming: the call commits by itself (no BEGIN,
    no COMMIT), and a refusal leaves nothing behind though nobody rolls anything back."""
    with committed_factory() as s:
        tree = f.region_tree(s)
        person = f.participant(s, tree.grid_a)
        account = f.account_of(s, person).id
        f.award(s, account, 100)
        partner, outlets, desks = f.shop(s, tree.town_a)
        tea = f.scenario(s, partner, outlets, points_cost=10, limit_day=1).id
        first_code, second_code = f.code_for(s, person), f.code_for(s, person)
        s.commit()
    with committed_factory() as request:
        done, replayed = counter.redeem(request, desks[0], digits=first_code, scenario_id=tea,
                                        idem_key=f"alone-{person.id}-1", cfg=CFG)
        assert not replayed and not request.in_transaction()
        with committed_factory() as other:  # visible before anyone commits: it committed itself
            assert other.get(Redemption, done.id).points == 10 and accounts.balance(other, account) == 90
        with pytest.raises(Conflict) as err:
            counter.redeem(request, desks[0], digits=second_code, scenario_id=tea, idem_key=f"alone-{person.id}-2",
                           cfg=CFG)
        assert err.value.code == "limit_day"
    with committed_factory() as other:
        unused = other.scalar(select(OneTimeCode).where(
            OneTimeCode.code_digest == codes.digest(CFG.secret_key, second_code)))
        assert unused.used_at is None  # the claim went with the refusal
        assert other.scalar(select(UsageCounter.used).where(UsageCounter.participant_id == person.id)) == 1
        assert accounts.balance(other, account) == 90 and integrity.verify_chains(other).ok


@pytest.mark.concurrency
def test_with_no_transaction_begun_a_retry_is_answered_without_one(committed_factory):
    """A resend after a timeout: the original redemption, read on its own (no transaction left
    open), with every column as a load gives it; other content under the key is still a 422."""
    with committed_factory() as s:
        tree = f.region_tree(s)
        person = f.participant(s, tree.grid_a)
        account = f.account_of(s, person).id
        f.award(s, account, 100)
        partner, outlets, desks = f.shop(s, tree.town_a)
        tea = f.scenario(s, partner, outlets, points_cost=10).id
        digits, other_code = f.code_for(s, person), f.code_for(s, person)
        s.commit()
    key = f"resend-{person.id}"
    with committed_factory() as request:
        done, replayed = counter.redeem(request, desks[0], digits=digits, scenario_id=tea, idem_key=key, cfg=CFG)
        assert not replayed
    with committed_factory() as request:
        again, replayed = counter.redeem(request, desks[0], digits=digits, scenario_id=tea, idem_key=key, cfg=CFG)
        assert replayed and not request.in_transaction()
        assert set(redeem_sql.PRIOR_COLUMNS) == set(Redemption.__table__.columns.keys())  # nothing left unloaded
        with committed_factory() as other:
            stored = other.get(Redemption, done.id)
            assert {c: getattr(again, c) for c in redeem_sql.PRIOR_COLUMNS} == \
                   {c: getattr(stored, c) for c in redeem_sql.PRIOR_COLUMNS}
        assert again.created_at.tzinfo is not None and again.created_at.utcoffset().total_seconds() == 0
        with pytest.raises(IdempotencyConflict):
            counter.redeem(request, desks[0], digits=other_code, scenario_id=tea, idem_key=key, cfg=CFG)
    with committed_factory() as other:
        assert accounts.balance(other, account) == 90
        unused = other.scalar(select(OneTimeCode).where(
            OneTimeCode.code_digest == codes.digest(CFG.secret_key, other_code)))
        assert unused.used_at is None
