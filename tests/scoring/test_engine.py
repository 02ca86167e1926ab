"""The scoring function: whole points, deterministic, caps and shares as the rules say."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scoring.services.engine import Facts, IndicatorRule, explain, score, split_largest_remainder

INF1 = IndicatorRule("INF-1", "矛盾隐患线索上报并经核实", "Lead reported", 2, multiplier="warning_colour",
                     multipliers={"blue": 1, "yellow": 2, "orange": 3, "red": 5}, cap_month=30)
MED3 = IndicatorRule("MED-3", "联合调解复杂纠纷", "Complex dispute", 15, shared=True)


def test_warning_colour_multiplies_base_points():
    assert [score(INF1, Facts(members=[(1, 1)], warning_colour=c), {}, {}).total
            for c in ("blue", "yellow", "orange", "red")] == [2, 4, 6, 10]


def test_monthly_cap_limits_the_points_and_says_so():
    result = score(INF1, Facts(members=[(1, 1)], warning_colour="red"), {1: 26}, {})
    assert result.points == {1: 4}
    assert "本月上限 30 分，已得 26 分，计入 4 分" in explain(result.explanation, 1)
    assert "Month cap 30, 26 already earned: 4 counted" in explain(result.explanation, 1, "en")


def test_shared_points_split_by_largest_remainder():
    result = score(MED3, Facts(members=[(5, 1), (3, 1), (9, 1), (4, 1)]), {}, {})
    assert result.points == {3: 4, 4: 4, 5: 4, 9: 3} and result.total == 15


@given(total=st.integers(0, 10_000), weights=st.lists(st.integers(1, 50), min_size=1, max_size=12))
def test_largest_remainder_is_whole_exact_and_fair(total, weights):
    parts = split_largest_remainder(total, list(enumerate(weights, start=1)))
    assert sum(parts.values()) == total
    weight_sum = sum(weights)
    for pid, w in enumerate(weights, start=1):
        assert abs(parts[pid] - total * w / weight_sum) < 1


@given(used=st.integers(0, 40), colour=st.sampled_from(["blue", "yellow", "orange", "red"]),
       members=st.lists(st.integers(1, 9), min_size=1, max_size=4, unique=True))
def test_same_input_always_scores_the_same(used, colour, members):
    facts = Facts(members=[(m, 1) for m in members], warning_colour=colour)
    first = score(INF1, facts, {m: used for m in members}, {})
    assert first == score(INF1, facts, {m: used for m in members}, {})
    assert all(0 <= p <= max(30 - used, 0) for p in first.points.values())


@given(colours=st.lists(st.sampled_from(["blue", "yellow", "orange", "red"]), max_size=30))
def test_a_month_of_reports_never_passes_the_cap(colours):
    used = 0
    for colour in colours:
        used += score(INF1, Facts(members=[(1, 1)], warning_colour=colour), {1: used}, {}).total
    assert used <= 30
