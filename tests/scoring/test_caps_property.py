"""Caps hold whatever the order in which contributions are verified (property test on PostgreSQL)."""
from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.clock import local_date
from scoring.services import submissions, workflow
from tests import factories as f

CAPPED = {"INF-1": 30, "MED-4": 8, "PRO-3": 20, "PRO-4": 30}
RAW = {"INF-1": lambda colour, q: 2 * {"blue": 1, "yellow": 2, "orange": 3, "red": 5}[colour],
       "MED-4": lambda colour, q: 1, "PRO-3": lambda colour, q: q, "PRO-4": lambda colour, q: q}

work = st.lists(st.tuples(st.sampled_from(sorted(CAPPED)), st.sampled_from(["blue", "yellow", "orange", "red"]),
                          st.integers(1, 12), st.sets(st.integers(0, 2), min_size=1)), min_size=1, max_size=14)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=work, order=st.randoms(use_true_random=False))
def test_caps_are_never_exceeded_in_any_verification_order(session, items, order):
    with session.begin_nested() as outer:
        tree = f.region_tree(session)
        people = [f.participant(session, tree.grid_a) for _ in range(3)]
        clerk = f.staff(session, "clerk", tree.town_a)
        verifier = f.staff(session, "verifier", tree.town_a)
        day = local_date().replace(day=1)
        made = []
        for n, (code, colour, qty, who) in enumerate(items):
            extra = {"conflict_item": "C2-01", "warning_colour": colour} if code == "INF-1" else \
                    {"conflict_item": None, "warning_colour": None}
            made.append(submissions.submit(session, clerk, f.submission(
                code, [(people[i].id, 1) for i in sorted(who)], work_date=day, quantity=qty if code.startswith("PRO")
                else 1, description=f"工作 {n}", **extra)))
        shuffled = list(made)
        order.shuffle(shuffled)
        for c in shuffled:
            workflow.verify_many(session, verifier, [c.id])
        earned: dict[tuple[int, str], int] = defaultdict(int)
        raw: dict[tuple[int, str], int] = defaultdict(int)
        for c, (code, colour, qty, _who) in zip(made, items):
            for m in c.members:
                earned[(m.participant_id, code)] += m.points
                raw[(m.participant_id, code)] += RAW[code](colour, qty if code.startswith("PRO") else 1)
        for key, points in earned.items():
            assert points <= CAPPED[key[1]]
            assert points == min(CAPPED[key[1]], raw[key])  # greedy filling: order changes who, not how much
        outer.rollback()
