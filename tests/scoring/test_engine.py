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


def test_the_words_spell_out_each_step_for_each_participant():
    rule = IndicatorRule(code="INF-1", name_zh="预警", name_en="Warning", base_points=2, multiplier="warning_colour",
                         multipliers={"red": 4}, cap_month=10, cap_activity=7, shared=True)
    result = score(rule, Facts(members=[(1, 1), (2, 1)], warning_colour="red"), {1: 8}, {})
    words = {locale: {str(pid): explain(result.explanation, pid, locale) for pid in (1, 2)} for locale in ("zh", "en")}
    assert words["en"]["1"] == ("Rules v1, INF-1 (Warning): 2 points × 1 case × 4 for a red warning = 8. Capped at 7 "
                                "per activity. Shared among 2 mediators by their shares. Month cap 10, 8 already "
                                "earned: 2 counted. You receive 2.")
    assert words["zh"]["2"] == ("依据第1版规则 INF-1「预警」：基础分 2 × 1件 × 红色预警系数 4 = 8 分。单次活动上限 7 分。"
                                "由 2 名调解员按份额分配。您获得 3 分。")
    for pid in (1, 2):  # one participant's words never leak into another's (they are cached)
        assert words["zh"][str(pid)] == explain(result.explanation, pid)
        assert words["en"][str(pid)] == explain(result.explanation, pid, "en")
