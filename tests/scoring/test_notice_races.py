"""Public notice under concurrency, on PostgreSQL with real threads and committed data: an
objection and the award job take turns on the contribution's row, and two decisions on one
contribution (two upholds, an uphold and a reject) release its cap room once."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from identity.services import participant_principal
from infra.errors import Conflict
from scoring.models import AwardTally, Contribution, ContributionEvent, Objection
from scoring.services import awards, notices, submissions, workflow
from tests import factories as f
from tests.concurrency import while_holding

pytestmark = pytest.mark.concurrency


def _drain(factory: sessionmaker[Session]) -> None:
    with factory() as s:
        while awards.award_due(s, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=60), shards=f.SHARDS):
            s.commit()
        s.commit()


@pytest.fixture(autouse=True)
def _award_what_is_left(committed_factory: sessionmaker[Session]) -> Iterator[None]:
    """Committed data stays in the run's database: award what these tests leave on notice, so
    that later tests' award runs find only their own work."""
    yield
    _drain(committed_factory)


def _while_holding(factory: sessionmaker[Session], first: Callable[[Session], Any],
                   second: Callable[[Session], Any]) -> list[BaseException]:
    """What `second` raised while `first` held its rows (see `tests.concurrency.while_holding`)."""
    _mine, outcome = while_holding(factory, first, second)
    return [outcome] if isinstance(outcome, BaseException) else []


def _on_notice(factory: sessionmaker[Session]) -> tuple[int, dt.datetime, Any]:
    """A verified contribution on public notice: its id, when the notice ends, and a neighbour
    (as a principal) who may object."""
    with factory() as setup:
        tree = f.region_tree(setup)
        person, neighbour = f.participant(setup, tree.grid_a), f.participant(setup, tree.grid_a)
        clerk, verifier = f.staff(setup, "clerk", tree.town_a), f.staff(setup, "verifier", tree.town_a)
        c = f.contribution(setup, clerk, person, "MED-2")
        (v,) = workflow.verify_many(setup, verifier, [c.id])
        setup.commit()
        return c.id, v.notice_until, participant_principal(neighbour)


def test_an_objection_lodged_while_the_award_job_runs_waits_and_is_refused(committed_factory):
    cid, ends, resident = _on_notice(committed_factory)

    def claim(s: Session) -> None:
        assert awards.award_due(s, now=ends + dt.timedelta(seconds=1), shards=f.SHARDS) >= 1  # not committed

    def lodge(s: Session) -> None:
        # One second before the notice ends by the web server's clock, after it by the worker's.
        notices.lodge(s, resident, cid, "纠纷并未化解", now=ends - dt.timedelta(seconds=1))

    errors = _while_holding(committed_factory, claim, lodge)
    assert len(errors) == 1 and isinstance(errors[0], Conflict) and errors[0].code == "notice_closed", errors
    with committed_factory() as check:
        assert check.get(Contribution, cid).state == "awarded"
        assert check.scalar(select(func.count()).select_from(Objection).where(Objection.contribution_id == cid)) == 0


def test_the_award_job_skips_a_contribution_while_an_objection_is_being_lodged(committed_factory):
    cid, ends, resident = _on_notice(committed_factory)
    with committed_factory() as lodging:
        notices.lodge(lodging, resident, cid, "纠纷并未化解", now=ends - dt.timedelta(seconds=1))
        with committed_factory() as worker:  # SKIP LOCKED: it does not wait for the lodge
            awards.award_due(worker, now=ends + dt.timedelta(seconds=1), shards=f.SHARDS)
            worker.commit()
        lodging.commit()
    _drain(committed_factory)  # the objection is open: still not awarded
    with committed_factory() as check:
        assert check.get(Contribution, cid).state == "in_notice"


def test_an_objection_committed_after_the_claim_began_is_not_awarded_over(committed_factory, monkeypatch):
    """The claim sees objections committed before its statement began; one committed after that
    but before the claim reached the row is found by the look again after the claim."""
    with committed_factory() as setup:
        tree = f.region_tree(setup)
        person, neighbour = f.participant(setup, tree.grid_a), f.participant(setup, tree.grid_a)
        clerk, verifier = f.staff(setup, "clerk", tree.town_a), f.staff(setup, "verifier", tree.town_a)
        c = f.contribution(setup, clerk, person, "MED-2")
        (v,) = workflow.verify_many(setup, verifier, [c.id])
        # Lodged and (below) reopened by another transaction once the claim has run: the same
        # as a lodge committed between the claim's snapshot and its lock on the row.
        o = notices.lodge(setup, participant_principal(neighbour), c.id, "纠纷并未化解")
        o.status = "dismissed"
        setup.commit()
        cid, ends, oid = c.id, v.notice_until, o.id
    real, calls = awards._claim_pg, []

    def claim_then_commit_an_objection(*args: Any) -> Any:
        got = real(*args)
        calls.append([row[0] for row in got])
        if len(calls) == 1:
            with committed_factory() as other:
                other.execute(update(Objection).where(Objection.id == oid).values(status="open"))
                other.commit()
        return got

    monkeypatch.setattr(awards, "_claim_pg", claim_then_commit_an_objection)
    with committed_factory() as worker:
        awards.award_due(worker, now=ends + dt.timedelta(seconds=1), shards=f.SHARDS)
        worker.commit()
    with committed_factory() as check:
        assert check.get(Contribution, cid).state == "in_notice"
        assert not check.scalars(select(ContributionEvent).where(ContributionEvent.contribution_id == cid,
                                                                 ContributionEvent.to_state == "awarded")).all()
    assert cid in calls[0] and cid not in calls[1]  # claimed, undone, claimed again without it


def _capped_with_two_objections(setup: Session) -> tuple[int, Any, tuple[int, int], Any, Any, Any]:
    """A participant with two red INF-1 reports (10 points each, cap 30 a month), one of them
    objected to twice: (participant, work date, objection ids, clerk, verifier, an approver)."""
    tree = f.region_tree(setup)
    person = f.participant(setup, tree.grid_a)
    n1, n2 = f.participant(setup, tree.grid_a), f.participant(setup, tree.grid_a)
    clerk, verifier = f.staff(setup, "clerk", tree.town_a), f.staff(setup, "verifier", tree.town_a)
    c0 = f.contribution(setup, clerk, person, "INF-1", warning_colour="red", description="另一条线索")
    c = f.contribution(setup, clerk, person, "INF-1", warning_colour="red")
    workflow.verify_many(setup, verifier, [c0.id, c.id])  # tally 20
    o1 = notices.lodge(setup, participant_principal(n1), c.id, "重复上报")
    o2 = notices.lodge(setup, participant_principal(n2), c.id, "并无此事")
    approver = f.staff(setup, "approver", tree.town_a)
    setup.commit()
    return person.id, c.work_date, (o1.id, o2.id), clerk, verifier, approver


def _month_tally(s: Session, pid: int, work_date: dt.date) -> int | None:
    return s.scalar(select(AwardTally.points).where(
        AwardTally.participant_id == pid, AwardTally.indicator_code == "INF-1",
        AwardTally.period == work_date.strftime("%Y-%m")))


def _rejections(s: Session, oid: int) -> int:
    cid = s.scalar(select(Objection.contribution_id).where(Objection.id == oid))
    return s.scalar(select(func.count()).select_from(ContributionEvent).where(
        ContributionEvent.contribution_id == cid, ContributionEvent.to_state == "rejected"))


def test_two_objections_upheld_at_once_release_the_cap_room_once(committed_factory):
    with committed_factory() as setup:
        pid, work_date, (o1, o2), clerk, verifier, approver = _capped_with_two_objections(setup)

    errors = _while_holding(
        committed_factory,
        lambda s: notices.resolve(s, approver, o1, uphold=True, resolution="属实"),
        lambda s: notices.resolve(s, approver, o2, uphold=True, resolution="属实"))
    assert not errors, errors
    with committed_factory() as check:
        assert _month_tally(check, pid, work_date) == 10 and _rejections(check, o1) == 1
        assert {check.get(Objection, o).status for o in (o1, o2)} == {"upheld"}
        # c0 keeps its 10. Four more red reports the same month: the cap of 30 allows 20 more.
        more = [submissions.submit(check, clerk, f.submission("INF-1", [(pid, 1)], warning_colour="red",
                                                               work_date=work_date, description=f"另一线索 {i}"))
                for i in range(4)]
        got = workflow.verify_many(check, verifier, [m.id for m in more])
        check.commit()
    assert sum(v.proposed_points for v in got) == 20


def test_an_uphold_racing_a_reject_releases_the_cap_room_once(committed_factory):
    with committed_factory() as setup:
        pid, work_date, (o1, _o2), _clerk, verifier, approver = _capped_with_two_objections(setup)
        cid = setup.scalar(select(Objection.contribution_id).where(Objection.id == o1))

    errors = _while_holding(
        committed_factory,
        lambda s: workflow.reject(s, verifier, cid, "重复上报"),
        lambda s: notices.resolve(s, approver, o1, uphold=True, resolution="属实"))
    assert not errors, errors
    with committed_factory() as check:
        assert _month_tally(check, pid, work_date) == 10 and _rejections(check, o1) == 1
        assert check.get(Objection, o1).status == "upheld"


def test_the_award_job_commits_batch_by_batch(committed_factory, monkeypatch):
    """A run over a backlog commits each batch: when the worker dies in its third batch the first
    two stay awarded (and a resident's objection never waits for the whole run), and the next run
    takes the rest."""
    from scoring import tasks

    with committed_factory() as setup:
        tree = f.region_tree(setup)
        clerk, verifier = f.staff(setup, "clerk", tree.town_a), f.staff(setup, "verifier", tree.town_a)
        made = [f.contribution(setup, clerk, f.participant(setup, tree.grid_a), "PRO-1") for _ in range(5)]
        workflow.verify_many(setup, verifier, [c.id for c in made])
        # Ended long ago, so the claims (oldest notice first) take these before anything else due.
        setup.execute(update(Contribution).where(Contribution.id.in_([c.id for c in made]))
                      .values(notice_until=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)))
        setup.commit()
        ids = [c.id for c in made]

    real, calls = awards.award_due, []

    def dies_in_the_third_batch(session: Session, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("worker lost")
        return real(session, **kwargs)

    monkeypatch.setattr(awards, "award_due", dies_in_the_third_batch)
    with pytest.raises(RuntimeError):
        tasks.award_due.apply(kwargs={"batch": 2})

    def awarded() -> int:
        with committed_factory() as s:
            return s.scalar(select(func.count()).select_from(Contribution)
                            .where(Contribution.id.in_(ids), Contribution.state == "awarded"))

    assert awarded() == 4
    monkeypatch.setattr(awards, "award_due", real)
    tasks.award_due.apply(kwargs={"batch": 2})
    assert awarded() == 5
