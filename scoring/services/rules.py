"""Rule sets as versioned data: seeded from a data file, drafted, validated, published, and never
changed once published. The version in force on the day the work was done scores it."""
from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity.services import audit, is_county_scope
from infra.auth import Principal
from infra.clock import local_date
from infra.db import utcnow
from infra.driver import on_postgresql
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed
from scoring.models import CLASSES, COLOURS, HONOURS, MAX_FACTOR, UNITS, Indicator, RuleSet
from scoring.services.engine import IndicatorRule

DATA = Path(__file__).resolve().parent.parent / "data"
INDICATOR_FIELDS = ("code", "class_", "name_zh", "name_en", "base_points", "unit", "multiplier", "multipliers",
                    "cap_month", "cap_year", "cap_activity", "shared", "requires")
REQUIREMENTS = ("conflict_item", "warning_colour", "case_record", "quantity")
# Advisory lock (pg_advisory_xact_lock(space, key), spaces as in scoring.services.imports) that
# every change of the rules holds until its commit: drafting, editing and publishing take turns.
RULES_LOCK = (0x4A59_0003, 0)
# How far after today a version may take effect (`RULES_MAX_LEAD_DAYS`): each version must take
# effect after the last one published, so one dated 9999-12-31 would leave the county no later
# date for any version, ever.
MAX_LEAD_DAYS = 365


@functools.cache
def screening_list() -> dict[str, Any]:
    return json.loads((DATA / "screening_list.json").read_text())


@functools.cache
def conflict_items() -> dict[str, dict[str, Any]]:
    return {item["code"]: {**item, "category": c["code"], "category_zh": c["zh"], "category_en": c["en"]}
            for c in screening_list()["categories"] for item in c["items"]}


def _indicator_from_data(data: dict[str, Any]) -> Indicator:
    """From the data file's and the GET output's spelling ("class") or from the edit schema's
    loaded data, which names the field as the model does ("class_")."""
    values = {k: data.get(k) for k in INDICATOR_FIELDS}
    if values["class_"] is None:
        values["class_"] = data.get("class")
    values["multipliers"] = values["multipliers"] or {}
    values["requires"] = values["requires"] or []
    values["shared"] = bool(values["shared"])
    values["unit"] = values["unit"] or "case"
    return Indicator(**values)


def seed_rules(session: Session, actor: Principal | None = None) -> RuleSet:
    """Version 1 from `data/rules_v1.json`, published; a no-op when any version exists."""
    existing = session.scalar(select(RuleSet).order_by(RuleSet.version).limit(1))
    if existing is not None:
        return existing
    data = json.loads((DATA / "rules_v1.json").read_text())
    rule_set = RuleSet(version=1, name=data["name"], effective_from=dt.date.fromisoformat(data["effective_from"]),
                       notice_days=data["notice_days"], grades=data["grades"], honours=data["honours"],
                       indicators=[_indicator_from_data(i) for i in data["indicators"]])
    session.add(rule_set)
    session.flush()
    problems = validate(rule_set)
    assert not problems, problems
    rule_set.status, rule_set.published_at = "published", utcnow()
    session.flush()
    return rule_set


def in_force(session: Session, on: dt.date) -> RuleSet:
    """Published versions never change, so the answer is cached for the session's transaction."""
    cache = session.info.setdefault("rules_in_force", {})
    if on in cache and cache[on] in session:
        return cache[on]
    rule_set = session.scalar(select(RuleSet).where(RuleSet.status == "published", RuleSet.effective_from <= on)
                              .order_by(RuleSet.effective_from.desc(), RuleSet.version.desc()).limit(1))
    if rule_set is None:
        raise ValidationFailed("No rules were in force on that date.", code="no_rules_in_force",
                               details={"work_date": [f"No published rule set covers {on.isoformat()}."]})
    cache[on] = rule_set
    return rule_set


def grades_in_force(session: Session, start: dt.date, end: dt.date | None) -> list[str]:
    """The grade codes of the published rule sets in force on some day from `start` to `end`
    (None: open-ended), each once, in each rule set's order (highest first). Eligibility ranks a
    required grade on the rule set in force on the day (`in_force`): a grade none of these define
    could never be met in that time (`grade_not_defined`)."""
    in_force_from: dict[dt.date, RuleSet] = {}  # on a tie of dates the highest version is in force
    for rule_set in session.scalars(select(RuleSet).where(RuleSet.status == "published")
                                    .order_by(RuleSet.effective_from, RuleSet.version)):
        in_force_from[rule_set.effective_from] = rule_set
    days = sorted(in_force_from)
    first = [d for d in days if d <= start][-1:]  # the one in force on `start`, if any
    later = [d for d in days if d > start and (end is None or d <= end)]
    codes: list[str] = []
    for day in first + later:
        codes.extend(g["code"] for g in in_force_from[day].grades or [] if g.get("code") not in codes)
    return codes


def indicator_rule(rule_set: RuleSet, code: str) -> tuple[Indicator, IndicatorRule]:
    for ind in rule_set.indicators:
        if ind.code == code:
            return ind, IndicatorRule(
                code=ind.code, name_zh=ind.name_zh, name_en=ind.name_en, base_points=ind.base_points, unit=ind.unit,
                multiplier=ind.multiplier, multipliers=ind.multipliers or {}, cap_month=ind.cap_month,
                cap_year=ind.cap_year, cap_activity=ind.cap_activity, shared=ind.shared, rule_version=rule_set.version)
    raise ValidationFailed("This indicator is not in the rules in force on that date.", code="unknown_indicator",
                           details={"indicator_code": [f"{code} is not in rule set version {rule_set.version}."]})


def get(session: Session, version: int, *, fresh: bool = False, field: str = "version") -> RuleSet:
    """A version; `fresh`: as committed now, whatever this session read of it before. `field`: the
    request's name for the number (the path's `version`, a draft's `from_version`), which a 404 names."""
    stmt = select(RuleSet).where(RuleSet.version == version)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    rule_set = session.scalar(stmt)
    if rule_set is None:
        raise NotFound("Rule set not found.", details={field: [str(version)]})
    return rule_set


def list_versions(session: Session) -> list[RuleSet]:
    return list(session.scalars(select(RuleSet).order_by(RuleSet.version.desc())))


def _require_admin(actor: Principal) -> None:
    """The rule set scores the whole county, so only an admin with county scope drafts, edits
    or publishes it; a township or village admin is refused."""
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin edits rules.", code="role_required")
    if not is_county_scope(actor):
        raise Forbidden("Only a county admin edits the county's rules.", code="scope_required")


def _take_turns(session: Session) -> None:
    """Changes of the rules one at a time, each seeing the last one committed: two publishes at
    once would both find the same latest date and both go out (the same day twice, or out of
    order), and an edit racing a publish either met the freezing trigger (a 500) or, replacing
    only indicators (rows the publish does not lock), changed a version just published. On
    SQLite, writers take turns anyway."""
    if on_postgresql(session):
        session.execute(select(func.pg_advisory_xact_lock(*RULES_LOCK)))


def _latest_published(session: Session) -> dt.date | None:
    return session.scalar(select(func.max(RuleSet.effective_from)).where(RuleSet.status == "published"))


def first_free_day(session: Session) -> dt.date:
    """The first day a new version could take effect: today, or the day after the latest version
    published if that takes effect later (publishing requires a later date)."""
    today = local_date()
    latest = _latest_published(session)
    if latest is None or latest < today:
        return today
    return latest + dt.timedelta(days=1) if latest < dt.date.max else latest


def _refuse_far_date(effective_from: dt.date, max_lead_days: int) -> None:
    """A 422 naming `effective_from` for a date more than `max_lead_days` after today."""
    today = local_date()
    try:
        last = today + dt.timedelta(days=max(max_lead_days, 0))
    except OverflowError:
        return
    if effective_from > last:
        raise ValidationFailed("New rules take effect within %(days)s days of today.", code="rules_invalid",
                               days=max_lead_days, details={"effective_from": [f"{last.isoformat()} at the latest."]})


def draft_from(session: Session, actor: Principal, base_version: int) -> RuleSet:
    """A new draft copying a version; edit it, validate it, publish it. It takes effect, unless
    edited, on the first day it could be published (`first_free_day`), not on the copied
    version's date, which publishing would refuse."""
    _require_admin(actor)
    _take_turns(session)
    base = get(session, base_version, field="from_version")
    version = (session.scalar(select(func.max(RuleSet.version))) or 0) + 1
    draft = RuleSet(version=version, name=base.name, effective_from=first_free_day(session),
                    notice_days=base.notice_days, grades=list(base.grades), honours=dict(base.honours),
                    created_by=actor.id,
                    indicators=[Indicator(**{k: getattr(i, k) for k in INDICATOR_FIELDS}) for i in base.indicators])
    session.add(draft)
    session.flush()
    audit(session, actor, "rules.draft", object_type="rule_set", object_id=version, region_path=actor.scope_path,
          details={"from": base_version})
    return draft


def update_draft(session: Session, actor: Principal, version: int, changes: dict[str, Any], *,
                 max_lead_days: int = MAX_LEAD_DAYS) -> RuleSet:
    """Replace a draft's settings and indicators. Published versions are refused (and the
    database refuses them too); so is an `effective_from` more than `max_lead_days` away."""
    _require_admin(actor)
    _take_turns(session)
    draft = get(session, version, fresh=True)
    if draft.status != "draft":
        raise Conflict("A published rule set never changes; draft a new version.", code="rules_published")
    if "effective_from" in changes:
        _refuse_far_date(changes["effective_from"], max_lead_days)
    candidate = RuleSet(version=draft.version, name=changes.get("name", draft.name),
                        effective_from=changes.get("effective_from", draft.effective_from),
                        notice_days=changes.get("notice_days", draft.notice_days),
                        grades=changes.get("grades", draft.grades), honours=changes.get("honours", draft.honours),
                        indicators=[_indicator_from_data(i) for i in changes["indicators"]] if "indicators" in changes
                        else [Indicator(**{k: getattr(i, k) for k in INDICATOR_FIELDS}) for i in draft.indicators])
    problems = validate(candidate)
    if problems:  # nothing is saved: the draft stays as it was
        raise _invalid(problems)
    for key in ("name", "effective_from", "notice_days", "grades", "honours"):
        if key in changes:
            setattr(draft, key, changes[key])
    if "indicators" in changes:
        draft.indicators.clear()
        session.flush()  # old rows go before the new ones take their codes
        draft.indicators.extend(_indicator_from_data(i) for i in changes["indicators"])
    session.flush()
    audit(session, actor, "rules.edit", object_type="rule_set", object_id=version, region_path=actor.scope_path,
          details={"fields": sorted(changes)})
    return draft


def validate(rule_set: RuleSet) -> list[dict[str, str]]:
    """Every problem, each naming the indicator and the field."""
    problems: list[dict[str, str]] = []

    def bad(indicator: str, field_name: str, message: str) -> None:
        problems.append({"indicator": indicator, "field": field_name, "message": message})

    seen: set[str] = set()
    classes: set[str] = set()
    for ind in rule_set.indicators:
        code = ind.code or "?"
        if ind.code in seen:
            bad(code, "code", "Duplicate indicator code.")
        seen.add(ind.code)
        if ind.class_ not in CLASSES:
            bad(code, "class", f"One of {', '.join(CLASSES)}.")
        classes.add(ind.class_)
        if not ind.name_zh or not ind.name_en:
            bad(code, "name_zh" if not ind.name_zh else "name_en", "Names in Chinese and English are required.")
        if not isinstance(ind.base_points, int) or ind.base_points < 0:
            bad(code, "base_points", "A whole number, zero or more.")
        if ind.unit not in UNITS:
            bad(code, "unit", f"One of {', '.join(UNITS)}.")
        for cap in ("cap_month", "cap_year", "cap_activity"):
            value = getattr(ind, cap)
            if value is not None and (not isinstance(value, int) or value < 0):
                bad(code, cap, "A whole number, zero or more, or empty for no cap.")
        if ind.cap_month is not None and ind.cap_year is not None and ind.cap_year < ind.cap_month:
            bad(code, "cap_year", "The yearly cap cannot be below the monthly cap.")
        if ind.multiplier not in (None, "warning_colour"):
            bad(code, "multiplier", "Only 'warning_colour' or none.")
        if ind.multiplier == "warning_colour":
            if set(ind.multipliers or {}) != set(COLOURS):
                bad(code, "multipliers", "Give a factor for each of blue, yellow, orange, red.")
            elif any(not isinstance(v, int) or not 1 <= v <= MAX_FACTOR for v in ind.multipliers.values()):
                bad(code, "multipliers", f"Factors are whole numbers from 1 to {MAX_FACTOR}.")
            if "warning_colour" not in (ind.requires or []):
                bad(code, "requires", "A colour multiplier needs the warning colour to be required.")
        for req in ind.requires or []:
            if req not in REQUIREMENTS:
                bad(code, "requires", f"Unknown requirement {req!r}; one of {', '.join(REQUIREMENTS)}.")
    if len(rule_set.indicators) == 0:
        bad("-", "indicators", "A rule set needs indicators.")
    missing = set(CLASSES) - classes
    if rule_set.indicators and missing:
        bad("-", "class", f"No indicator for class {', '.join(sorted(missing))}.")
    previous = None
    grade_codes: set[str] = set()
    for grade in rule_set.grades or []:
        if grade.get("code") in grade_codes:  # a code names one threshold: honours and privileges require it
            bad(f"grade {grade['code']}", "code", "Duplicate grade code.")
        grade_codes.add(grade.get("code"))
        if not isinstance(grade.get("min_points"), int) or grade["min_points"] < 0 or not grade.get("code"):
            bad(f"grade {grade.get('code', '?')}", "min_points", "Each grade has a code and whole min_points.")
        elif previous is not None and grade["min_points"] >= previous:
            bad(f"grade {grade['code']}", "min_points", "Grades are listed from highest to lowest threshold.")
        else:
            previous = grade["min_points"]
    _validate_honours(rule_set, bad)
    return problems


def _validate_honours(rule_set: RuleSet, bad: Callable[[str, str, str], None]) -> None:
    """Honour thresholds as grades.candidates reads them: for each honour a mapping with whole
    min_points of zero or more and, if given, a min_grade among this rule set's grades."""
    honours = rule_set.honours
    if not isinstance(honours, dict):
        bad("honours", "honours", f"A mapping with settings for {', '.join(HONOURS)}.")
        return
    codes = [g.get("code") for g in rule_set.grades or [] if isinstance(g, dict)]
    for name in sorted(set(honours) - set(HONOURS)):
        bad("honours", name, f"Unknown honour; one of {', '.join(HONOURS)}.")
    for name in HONOURS:
        settings = honours.get(name)
        if settings is None:
            bad("honours", name, "Give this honour's thresholds: min_points, and min_grade if any.")
            continue
        if not isinstance(settings, dict):
            bad("honours", name, "A mapping with min_points and min_grade.")
            continue
        points = settings.get("min_points")
        if not isinstance(points, int) or isinstance(points, bool) or points < 0:
            bad("honours", f"{name}.min_points", "A whole number, zero or more.")
        grade = settings.get("min_grade")
        if grade is not None and grade not in codes:
            bad("honours", f"{name}.min_grade", f"One of this rule set's grades: {', '.join(map(str, codes))}.")


def _invalid(problems: list[dict[str, str]]) -> ValidationFailed:
    details: dict[str, list[str]] = {}
    for p in problems:
        details.setdefault(f"{p['indicator']}.{p['field']}", []).append(p["message"])
    return ValidationFailed("The rule set has errors.", code="rules_invalid", details=details)


def publish(session: Session, actor: Principal, version: int, *, max_lead_days: int = MAX_LEAD_DAYS) -> RuleSet:
    """From its effective date, today or later but at most `max_lead_days` away (a draft saved
    before that bound, or before the bound was lowered, is held to it here), and after the latest
    version published."""
    _require_admin(actor)
    _take_turns(session)
    draft = get(session, version, fresh=True)
    if draft.status != "draft":
        raise Conflict("Already published.", code="rules_published")
    problems = validate(draft)
    if problems:
        raise _invalid(problems)
    if draft.effective_from < local_date():  # the county's today: earlier work keeps its rules
        raise ValidationFailed("New rules take effect from today or later; past work keeps its rules.",
                               code="rules_invalid", details={"effective_from": ["Today or later."]})
    _refuse_far_date(draft.effective_from, max_lead_days)
    latest = _latest_published(session)
    if latest is not None and draft.effective_from <= latest:
        raise ValidationFailed("A new version must take effect after the current one.", code="rules_invalid",
                               details={"effective_from": [f"Later than {latest.isoformat()}."]})
    draft.status, draft.published_by, draft.published_at = "published", actor.id, utcnow()
    session.flush()
    session.info.pop("rules_in_force", None)
    audit(session, actor, "rules.publish", object_type="rule_set", object_id=version, region_path=actor.scope_path,
          details={"effective_from": draft.effective_from.isoformat()})
    return draft
