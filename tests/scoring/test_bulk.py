"""The set-based bulk paths decide exactly what one-by-one verification and award would, on both
backends: points, caps, shares, notice, events, tallies, audit and ledger postings."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from identity.models import AuditEntry
from infra.clock import local_date
from infra.errors import Conflict, Forbidden
from ledger.models import Posting
from ledger.services import accounts
from scoring.models import AwardTally, Contribution, ContributionEvent, ContributionMember
from scoring.services import awards, notices, rules, submissions, workflow
from tests import factories as f

LATER = dt.timedelta(days=30)
# (indicator, colour, quantity, member indexes with shares): caps, multipliers and shares interleaved,
# so the order of verification decides who reaches a cap first.
WORK = [("INF-1", "red", 1, [(0, 1)]), ("INF-1", "orange", 1, [(0, 1), (1, 1)]), ("MED-3", None, 1, [(0, 2), (1, 1), (2, 1)]),
        ("PRO-3", None, 12, [(1, 1)]), ("PRO-3", None, 9, [(1, 1), (2, 1)]), ("INF-1", "red", 1, [(0, 1)]),
        ("MED-4", None, 1, [(2, 1)]), ("INF-1", "yellow", 1, [(0, 1), (2, 1)]), ("PRO-3", None, 5, [(1, 1)]),
        ("INF-1", "red", 1, [(0, 1)]), ("MED-3", None, 1, [(0, 1), (1, 1)]), ("PRO-1", None, 1, [(2, 1)])]


def _group(session, tree, clerk, work=WORK, copies=1):
    people = [f.participant(session, tree.grid_a) for _ in range(3)]
    made = []
    for _ in range(copies):
        for n, (code, colour, qty, who) in enumerate(work):
            extra = {"warning_colour": colour} if code.startswith("INF") else {}
            made.append(submissions.submit(session, clerk, f.submission(
                code, [(people[i].id, share) for i, share in who], quantity=qty, description=f"工作 {n}", **extra)))
    return people, made


def _shape(session, people, made):
    """What verification decided, with participants named by their index in the group."""
    index = {p.id: str(i) for i, p in enumerate(people)}

    def rename(value):
        if isinstance(value, dict):
            return {index.get(int(k), k) if k.isdigit() else k: rename(v) for k, v in value.items()}
        return value

    session.expire_all()
    out = []
    for c in made:
        c = session.get(Contribution, c.id)
        out.append((c.state, c.proposed_points, c.notice_until - c.verified_at, rename(c.explanation),
                    sorted((index[m.participant_id], m.points) for m in c.members),
                    [(e.from_state, e.to_state) for e in c.events]))
    tallies = sorted((index[t.participant_id], t.indicator_code, t.period, t.points) for t in session.scalars(
        select(AwardTally).where(AwardTally.participant_id.in_(list(index)))))
    return out, tallies


@pytest.fixture
def world(any_session):
    session = any_session
    tree = f.region_tree(session)
    return session, tree, f.staff(session, "clerk", tree.town_a), f.staff(session, "verifier", tree.town_a)


def test_bulk_verify_and_award_match_one_by_one(world):
    session, tree, clerk, verifier = world
    one_people, one_made = _group(session, tree, clerk)
    bulk_people, bulk_made = _group(session, tree, clerk)
    for c in one_made:
        workflow.verify_many(session, verifier, [c.id])
    verified = workflow.verify_many(session, verifier, [c.id for c in bulk_made])
    assert [v.id for v in verified] == [c.id for c in bulk_made]
    assert [v.proposed_points for v in verified] == [c.proposed_points for c in bulk_made]
    one, bulk = _shape(session, one_people, one_made), _shape(session, bulk_people, bulk_made)
    assert one == bulk
    assert any(item[3]["caps"] for item in one[0])  # caps really cut some
    assert any(points == 30 for _p, code, _d, points in one[1] if code == "INF-1")

    assert awards.award_due(session, now=dt.datetime.now(dt.timezone.utc) + LATER, shards=f.SHARDS) == 2 * len(WORK)
    for people in (one_people, bulk_people):
        balances = [accounts.balance(session, f.account_of(session, p).id) for p in people]
        assert balances == [sum(t[3] for t in one[1] if t[0] == str(i) and len(t[2]) == 4) for i in range(3)]
    session.expire_all()
    for a, b in zip(one_made, bulk_made):
        a, b = session.get(Contribution, a.id), session.get(Contribution, b.id)
        assert (a.state, b.state) == ("awarded", "awarded")
        assert [e.to_state for e in a.events] == [e.to_state for e in b.events] == ["submitted", "in_notice", "awarded"]
        if a.proposed_points == 0:  # capped to nothing: awarded without a posting
            assert (a.posting_id, b.posting_id) == (None, None)
            continue
        pa, pb = session.get(Posting, a.posting_id), session.get(Posting, b.posting_id)
        assert pa.reason == pb.reason and pa.meta["indicator"] == pb.meta["indicator"] == a.indicator_code
        assert pa.idem_key == f"contribution:{a.id}" and pa.source_id == str(a.id)
        for m in b.members:
            lines, _ = accounts.statement(session, accounts.participant_account(session, m.participant_id), limit=100)
            (line,) = [line for line in lines if line.posting_id == pb.id]
            assert line.explanation["en"].endswith(f"You receive {m.points}.")


def test_a_member_at_every_cap_is_awarded_with_nothing_to_post(world):
    session, tree, clerk, verifier = world
    people, made = _group(session, tree, clerk, work=[("MED-4", None, 1, [(0, 1)])], copies=9)  # cap 8 a month
    workflow.verify_many(session, verifier, [c.id for c in made])
    assert [c.proposed_points for c in made] == [1] * 8 + [0]
    assert awards.award_due(session, now=dt.datetime.now(dt.timezone.utc) + LATER, shards=f.SHARDS) == 9
    last = made[-1]
    assert (last.state, last.posting_id) == ("awarded", None)
    assert last.events[-1].note == awards.NOTHING_TO_POST
    assert accounts.balance(session, f.account_of(session, people[0]).id) == 8


def test_bulk_verify_is_all_or_none(world):
    session, tree, clerk, verifier = world
    people, made = _group(session, tree, clerk)
    own = submissions.submit(session, verifier, f.submission("PRO-1", [(people[0].id, 1)]))
    with pytest.raises(Forbidden):
        workflow.verify_many(session, verifier, [c.id for c in made] + [own.id])
    workflow.verify_many(session, verifier, [made[0].id])
    with pytest.raises(Conflict) as err:
        workflow.verify_many(session, verifier, [c.id for c in made])
    assert err.value.details["contribution_ids"] == [str(made[0].id)]
    assert [c.state for c in made[1:]] == ["submitted"] * (len(made) - 1)
    assert session.scalar(select(func.count()).select_from(ContributionEvent).where(
        ContributionEvent.contribution_id.in_([c.id for c in made[1:]]), ContributionEvent.to_state == "in_notice")) == 0


def test_bulk_verify_audits_once_and_notices_every_item(world):
    session, tree, clerk, verifier = world
    _people, made = _group(session, tree, clerk, copies=5)
    assert len(made) > workflow.AUDIT_EACH_UP_TO
    workflow.verify_many(session, verifier, [c.id for c in made], note="批量核实")
    (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "contribution.verify_bulk",
                                                        AuditEntry.actor_id == verifier.id)).all()
    assert entry.details == {"count": len(made), "ids": [c.id for c in made]}
    assert all(c.events[-1].note == "批量核实" and c.events[-1].actor_id == verifier.id for c in made)
    listed = {n.id for n in notices.notices_for(session, verifier, limit=200).items}
    assert {c.id for c in made} <= listed


def test_a_bulk_verification_is_audited_where_each_township_auditor_sees_it(client, session):
    """Regression: a county verifier's batch of more than AUDIT_EACH_UP_TO was one record at the
    county's path, and a township auditor's log showed nothing of the work verified in their
    township. One record per village, naming its ids: each auditor sees theirs, the county all."""
    tree = f.region_tree(session)
    made: dict[str, list[int]] = {}
    for town, grid in (("a", tree.grid_a), ("b", tree.grid_b)):
        clerk, person = f.staff(session, "clerk", getattr(tree, f"town_{town}")), f.participant(session, grid)
        made[town] = [f.contribution(session, clerk, person, "PRO-1", description=f"宣讲 {n}").id
                      for n in range(workflow.AUDIT_EACH_UP_TO // 2 + 1)]
    assert len(made["a"] + made["b"]) > workflow.AUDIT_EACH_UP_TO
    verifier = f.staff(session, "verifier", tree.county)
    done = client.post("/api/v1/admin/contributions/verify", headers=f.bearer(session, "staff", verifier.id),
                       json={"contribution_ids": made["a"] + made["b"]})
    assert done.status_code == 200

    def bulk_records(scope):  # noqa: ANN001, ANN202
        auditor = f.bearer(session, "staff", f.staff(session, "auditor", scope).id)
        log = client.get("/api/v1/admin/audit", headers=auditor,
                         query_string={"action": "contribution.verify_bulk", "actor_id": verifier.id})
        assert log.status_code == 200
        return sorted((e["details"]["count"], e["details"]["ids"]) for e in log.json["items"])

    assert bulk_records(tree.town_a) == [(len(made["a"]), made["a"])]
    assert bulk_records(tree.town_b) == [(len(made["b"]), made["b"])]
    assert bulk_records(tree.village_b) == [(len(made["b"]), made["b"])]
    assert bulk_records(tree.county) == sorted([(len(made["a"]), made["a"]), (len(made["b"]), made["b"])])


def test_the_award_job_skips_rows_locked_by_another_worker(committed_factory):
    with committed_factory() as setup:
        tree = f.region_tree(setup)
        clerk, verifier = f.staff(setup, "clerk", tree.town_a), f.staff(setup, "verifier", tree.town_a)
        _people, made = _group(setup, tree, clerk, work=WORK[:4])
        ids = [c.id for c in made]
        workflow.verify_many(setup, verifier, ids, now=dt.datetime.now(dt.timezone.utc) - LATER)
        setup.commit()
    with committed_factory() as holder, committed_factory() as worker:
        holder.execute(select(Contribution.id).where(Contribution.id == ids[0]).with_for_update())
        while awards.award_due(worker, shards=f.SHARDS):
            worker.commit()
        worker.commit()
        assert [worker.get(Contribution, i).state for i in ids] == ["in_notice"] + ["awarded"] * (len(ids) - 1)
        holder.rollback()
    with committed_factory() as again:
        assert awards.award_due(again, shards=f.SHARDS) >= 1
        again.commit()
        assert {again.get(Contribution, i).state for i in ids} == {"awarded"}


def test_concurrent_bulk_verifiers_share_caps_without_deadlock(committed_factory):
    with committed_factory() as setup:
        tree = f.region_tree(setup)
        clerk, verifier = f.staff(setup, "clerk", tree.town_a), f.staff(setup, "verifier", tree.town_a)
        work = [("INF-1", "red", 1, [(0, 1), (1, 1), (2, 1)]), ("PRO-3", None, 7, [(2, 1), (1, 1), (0, 1)])]
        people, made = _group(setup, tree, clerk, work=work, copies=6)  # 60 red-warning points a head, cap 30
        setup.commit()
        ids = [c.id for c in made]
        pids = [p.id for p in people]
    batches = [ids[0::2], list(reversed(ids[1::2]))]
    barrier, errors = threading.Barrier(2), []

    def verify(batch):
        try:
            with committed_factory() as s:
                barrier.wait()
                workflow.verify_many(s, verifier, batch)
                s.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=verify, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with committed_factory() as check:
        earned = check.execute(select(ContributionMember.participant_id, Contribution.indicator_code,
                                      func.sum(ContributionMember.points))
                               .join(Contribution).where(Contribution.id.in_(ids))
                               .group_by(ContributionMember.participant_id, Contribution.indicator_code)).all()
        assert sorted(earned) == sorted((pid, code, 30 if code == "INF-1" else 20) for pid in pids
                                        for code in ("INF-1", "PRO-3"))
        tallies = check.execute(select(AwardTally.participant_id, AwardTally.indicator_code, AwardTally.points)
                                .where(AwardTally.participant_id.in_(pids), func.length(AwardTally.period) == 7)).all()
        assert sorted(tallies) == sorted(earned)
        # committed data: leave nothing on notice for other tests' award runs to find
        while awards.award_due(check, now=dt.datetime.now(dt.timezone.utc) + LATER, shards=f.SHARDS):
            check.commit()
        check.commit()


@pytest.mark.parametrize("newer_first", [False, True])
def test_work_scored_before_the_lock_counts_toward_a_later_version_cap(session, newer_first):
    """One batch spanning two rule versions: PRO-1 uncapped in force yesterday, capped at 6 a year
    from today. Uncapped work is scored before the tallies are locked; it must still count, in
    batch order, toward the cap of the work after it."""
    today = local_date()
    if today.month == 1 and today.day == 1:
        pytest.skip("yesterday was another year")
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    clerk, verifier = f.staff(session, "clerk", tree.town_a), f.staff(session, "verifier", tree.town_a)
    older = f.contribution(session, clerk, person, "PRO-1", work_date=today - dt.timedelta(days=1))
    newer = f.contribution(session, clerk, person, "PRO-1", work_date=today)
    admin = f.staff(session, "admin", tree.county)
    draft = rules.draft_from(session, admin, rules.in_force(session, today).version)
    indicators = [{"class": i.class_, **{k: getattr(i, k) for k in rules.INDICATOR_FIELDS if k != "class_"}}
                  for i in draft.indicators]
    for ind in indicators:
        if ind["code"] == "PRO-1":
            ind.update(base_points=8, cap_year=6)
    rules.update_draft(session, admin, draft.version, {"indicators": indicators, "effective_from": today})
    rules.publish(session, admin, draft.version)
    batch = [newer, older] if newer_first else [older, newer]
    workflow.verify_many(session, verifier, [c.id for c in batch])
    assert (older.proposed_points, newer.proposed_points) == ((4, 6) if newer_first else (4, 2))
    year = (person.id, "PRO-1", str(today.year))
    assert session.scalar(select(AwardTally.points).where(
        AwardTally.participant_id == year[0], AwardTally.indicator_code == year[1], AwardTally.period == year[2])) == (10 if newer_first else 6)
