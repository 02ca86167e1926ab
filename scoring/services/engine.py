"""The scoring function: pure and deterministic. Given an indicator's rule, the facts of a
contribution and what each participant has already used of the caps, it returns whole points per
participant and an explanation a participant can read beside the posting."""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

COLOUR_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}
UNIT_ZH = {"case": "件", "hour": "小时", "household": "户", "session": "次", "event": "场", "visit": "次"}


@dataclass(frozen=True)
class IndicatorRule:
    code: str
    name_zh: str
    name_en: str
    base_points: int
    unit: str = "case"
    multiplier: str | None = None
    multipliers: Mapping[str, int] = field(default_factory=dict)
    cap_month: int | None = None
    cap_year: int | None = None
    cap_activity: int | None = None
    shared: bool = False
    rule_version: int = 1


@dataclass(frozen=True)
class Facts:
    members: Sequence[tuple[int, int]]  # (participant id, share weight)
    quantity: int = 1
    warning_colour: str | None = None


@dataclass(frozen=True)
class Score:
    points: dict[int, int]
    explanation: dict[str, Any]

    @property
    def total(self) -> int:
        return sum(self.points.values())


def split_largest_remainder(total: int, weights: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Whole points in proportion to weights; leftovers go to the largest fractional parts
    (ties to the lower participant id), so the parts always add up to the total."""
    weight_sum = sum(w for _, w in weights)
    if weight_sum <= 0:
        raise ValueError("weights must be positive")
    floors = {pid: total * w // weight_sum for pid, w in weights}
    remainders = sorted(((total * w % weight_sum, -pid) for pid, w in weights), reverse=True)
    for _rem, neg_pid in remainders[: total - sum(floors.values())]:
        floors[-neg_pid] += 1
    return floors


def score(rule: IndicatorRule, facts: Facts, used_month: Mapping[int, int], used_year: Mapping[int, int]) -> Score:
    if not facts.members:
        raise ValueError("a contribution names at least one participant")
    factor = 1
    if rule.multiplier == "warning_colour":
        if facts.warning_colour not in rule.multipliers:
            raise ValueError(f"no multiplier for warning colour {facts.warning_colour!r}")
        factor = int(rule.multipliers[facts.warning_colour])
    raw = rule.base_points * facts.quantity * factor
    activity_capped = rule.cap_activity is not None and raw > rule.cap_activity
    gross = min(raw, rule.cap_activity) if rule.cap_activity is not None else raw
    shares = split_largest_remainder(gross, facts.members) if rule.shared else {pid: gross for pid, _ in facts.members}
    points: dict[int, int] = {}
    caps: dict[str, dict[str, Any]] = {}
    for pid, _weight in facts.members:
        value = shares[pid]
        applied: dict[str, Any] = {}
        for period, cap, used in (("month", rule.cap_month, used_month.get(pid, 0)),
                                  ("year", rule.cap_year, used_year.get(pid, 0))):
            if cap is not None:
                room = max(cap - used, 0)
                if value > room:
                    applied[period] = {"cap": cap, "used": used, "before": value, "after": room}
                    value = room
        points[pid] = value
        if applied:
            caps[str(pid)] = applied
    explanation = {
        "rule_version": rule.rule_version, "indicator": rule.code, "name_zh": rule.name_zh, "name_en": rule.name_en,
        "base_points": rule.base_points, "quantity": facts.quantity, "unit": rule.unit,
        "multiplier": {"colour": facts.warning_colour, "factor": factor} if rule.multiplier else None,
        "raw": raw, "activity_cap": rule.cap_activity if activity_capped else None,
        "shared": rule.shared, "shares": {str(pid): w for pid, w in facts.members} if rule.shared else None,
        "caps": caps, "points": {str(pid): p for pid, p in points.items()},
    }
    return Score(points=points, explanation=explanation)


def explain(explanation: Mapping[str, Any], participant_id: int, locale: str = "zh") -> str:
    """The explanation in plain words, for one participant."""
    return _words(*_key(explanation, str(participant_id)))[1 if locale.startswith("en") else 0]


def _key(e: Mapping[str, Any], pid: str) -> tuple[tuple[Any, ...], tuple[Any, ...], int]:
    """What the words depend on: the contribution's part, this participant's caps and points."""
    m = e.get("multiplier")
    caps = e["caps"].get(pid)
    return ((e["rule_version"], e["indicator"], e["name_zh"], e["name_en"], e["base_points"], e["quantity"], e["unit"],
             (m["colour"], m["factor"]) if m else None, e["raw"], e.get("activity_cap"),
             len(e["shares"]) if e.get("shared") else None),
            tuple((period, c["cap"], c["used"], c["after"]) for period, c in caps.items()) if caps else (),
            e["points"].get(pid, 0))


@functools.lru_cache(maxsize=4096)
def _words(lead: tuple[Any, ...], caps: tuple[tuple[str, int, int, int], ...], mine: int) -> tuple[str, str]:
    """(zh, en). Cached: contributions have few distinct explanations once the participant is
    left out, and every statement page words each award in both languages."""
    rule_version, indicator, name_zh, name_en, base_points, quantity, unit, multiplier, raw, activity_cap, sharers = lead
    en = [f"Rules v{rule_version}, {indicator} ({name_en}): {base_points} points × {quantity} {unit}"]
    zh = [f"依据第{rule_version}版规则 {indicator}「{name_zh}」：基础分 {base_points} × {quantity}{UNIT_ZH.get(unit, '')}"]
    if multiplier:
        en.append(f" × {multiplier[1]} for a {multiplier[0]} warning")
        zh.append(f" × {COLOUR_ZH.get(multiplier[0], '')}预警系数 {multiplier[1]}")
    en.append(f" = {raw}.")
    zh.append(f" = {raw} 分。")
    if activity_cap is not None:
        en.append(f" Capped at {activity_cap} per activity.")
        zh.append(f"单次活动上限 {activity_cap} 分。")
    if sharers is not None:
        en.append(f" Shared among {sharers} mediators by their shares.")
        zh.append(f"由 {sharers} 名调解员按份额分配。")
    for period, cap, used, after in caps:
        en.append(f" {period.capitalize()} cap {cap}, {used} already earned: {after} counted.")
        zh.append(f"{'本月' if period == 'month' else '本年'}上限 {cap} 分，已得 {used} 分，计入 {after} 分。")
    en.append(f" You receive {mine}.")
    zh.append(f"您获得 {mine} 分。")
    return "".join(zh), "".join(en)
