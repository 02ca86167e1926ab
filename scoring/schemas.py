"""Scoring schemas: contributions, workflow actions, notices, rules, grades and honours."""
from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext
from marshmallow import fields, validate

from infra.api import DumpSchema, Id, IdempotentArgs, Int4, LoadSchema, page_schema, words
from infra.field_messages import localize_message
from infra.i18n import is_english
from infra.security import mask_name
from scoring.models import (
    CLASSES, COLOURS, DUPLICATE_NOTE, GAVE_UP, GAVE_UP_REASON, HONOURS, MAX_FACTOR, NOTHING_TO_POST, OBJECTION_NOTE,
    RESIDENT_LABEL, UNITS,
)



class MemberIn(LoadSchema):
    participant_id = Id(required=True)
    share = Int4(load_default=1, min=1, max=100)


class CaseRecordIn(LoadSchema):
    """The eight-step method: look, listen, ask, help, report, analyse, explain, record."""

    look = fields.String(validate=validate.Length(max=2000), metadata={"description": "看"})
    listen = fields.String(validate=validate.Length(max=2000), metadata={"description": "听"})
    ask = fields.String(validate=validate.Length(max=2000), metadata={"description": "问"})
    help = fields.String(validate=validate.Length(max=2000), metadata={"description": "帮"})
    report = fields.String(validate=validate.Length(max=2000), metadata={"description": "报"})
    analyse = fields.String(validate=validate.Length(max=2000), metadata={"description": "想"})
    explain = fields.String(validate=validate.Length(max=2000), metadata={"description": "讲"})
    record = fields.String(validate=validate.Length(max=2000), metadata={"description": "记"})


class ContributionIn(IdempotentArgs):
    """Work reported by staff (the key optional, as for adjustments) or, as `MyContributionIn`, by
    a participant."""

    indicator_code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}-[0-9]{1,2}\Z"))
    work_date = fields.Date(required=True)
    description = fields.String(required=True, validate=validate.Length(min=4, max=2000))
    members = fields.List(fields.Nested(MemberIn), validate=validate.Length(min=1, max=20),
                          metadata={"description": "Participants; for a participant's own submission, may be omitted"})
    conflict_item = fields.String(load_default=None, validate=validate.Regexp(r"^C[0-9]-[0-9]{2}\Z"))
    warning_colour = fields.String(load_default=None, validate=validate.OneOf(COLOURS))
    case_record = fields.Nested(CaseRecordIn, load_default=dict)
    quantity = Int4(load_default=1, min=1, max=1000)
    incident_ref = fields.String(load_default=None, validate=validate.Length(min=3, max=100),
                                 metadata={"description": "The grid system's incident number, if any; stored "
                                                          "trimmed and in upper case (one incident, one key)"})


class MyContributionIn(ContributionIn):
    """A participant's report, from a phone on whatever network there is: the idempotency key is
    required, so that a report sent again after a lost answer is never a second contribution."""

    idempotency_key = fields.String(required=True, validate=validate.Length(min=8, max=100), metadata={
        "description": "One per report (not per sending): send it again with the same key to get the same "
                       "contribution."})


class MemberOut(DumpSchema):
    participant_id = fields.Integer()
    share = fields.Integer()
    points = fields.Integer(allow_none=True)


class EventOut(DumpSchema):
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    actor_kind = fields.String()
    actor_label = fields.Method("_actor_label")
    at = fields.DateTime()
    note = fields.Function(lambda event: system_note(event.note))

    def _actor_label(self, event: Any) -> str:
        return resident_label() if event.actor_label == RESIDENT_LABEL else event.actor_label


_OBJECTION_NOTE = re.compile(re.escape(OBJECTION_NOTE).replace(re.escape("{id}"), r"(\d+)"))


def system_note(note: str | None) -> str | None:
    """An event's note in the reader's language when the system wrote it (`OBJECTION_NOTE`,
    `NOTHING_TO_POST`, stored in English); a note staff wrote (a reason) as written."""
    if note == NOTHING_TO_POST:
        return gettext("Every member was at the cap: nothing to post.")
    found = _OBJECTION_NOTE.fullmatch(note or "")
    if found:
        return gettext("Objection %(id)s lodged.", id=found.group(1))
    return note


def resident_label() -> str:
    """How an objector is named (`RESIDENT_LABEL`, stored in English), in the reader's language."""
    return gettext("village resident")


class EvidenceOut(DumpSchema):
    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    uploaded_at = fields.DateTime()


class ObjectionOut(DumpSchema):
    id = fields.Integer()
    contribution_id = fields.Integer()
    text = fields.String()
    status = fields.String()
    lodged_at = fields.DateTime()
    resolution = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)


class MemberContributionOut(DumpSchema):
    """A contribution as its members read it: no `duplicate_of`, which names other people's work
    (the same incident may have been reported from another village) for the verifier only."""

    id = fields.Integer()
    indicator_code = fields.String()
    work_date = fields.Date()
    region_id = fields.Integer()
    description = fields.String()
    conflict_item = fields.String(allow_none=True)
    warning_colour = fields.String(allow_none=True)
    case_record = fields.Dict()
    quantity = fields.Integer()
    incident_key = fields.String(allow_none=True)
    state = fields.String()
    submitted_at = fields.DateTime()
    verified_at = fields.DateTime(allow_none=True)
    notice_until = fields.DateTime(allow_none=True)
    proposed_points = fields.Integer(allow_none=True)
    explanation = fields.Dict()
    decision_reason = fields.String(allow_none=True)
    posting_id = fields.Integer(allow_none=True)
    awarded_at = fields.DateTime(allow_none=True)
    members = fields.List(fields.Nested(MemberOut))


class ContributionOut(MemberContributionOut):
    """A contribution as staff read it."""

    duplicate_of = fields.List(fields.Integer(), metadata={"description": "Possible duplicates, for the verifier"})


_IN_REACH = fields.Boolean(metadata={"description": "Whether my scope covers every member: only then may I verify, "
                                                    "reject or revoke it (joint work may name people of other villages)"})


class QueueItemOut(ContributionOut):
    """A contribution in the staff queue."""

    in_reach = _IN_REACH


class ContributionDetailOut(ContributionOut):
    in_reach = _IN_REACH
    events = fields.List(fields.Nested(EventOut))
    objections = fields.List(fields.Nested(ObjectionOut))
    evidence = fields.List(fields.Nested(EvidenceOut))


class _MemberEvents(fields.List):
    """Events as a member of the work reads them: a resident who is not a member (an objector)
    appears as a village resident, never by id, as `ObjectionOut` leaves out `lodged_by`. Covers
    events recorded before objections were written with that label. The submission's note of
    possible duplicates names other people's work, as `duplicate_of` does: left out."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        dumped = super()._serialize(value, attr, obj, **kwargs)
        if not value:
            return dumped
        members = {m.participant_id for m in obj.members}
        for event, out in zip(value, dumped):
            if event.actor_kind == "participant" and event.actor_id not in members:
                out["actor_label"] = resident_label()
            if (event.note or "").startswith(DUPLICATE_NOTE):
                out["note"] = None
        return dumped


class MemberContributionDetailOut(MemberContributionOut):
    """A contribution as its own members see it (objectors anonymous, no other work named)."""

    events = _MemberEvents(fields.Nested(EventOut))
    objections = fields.List(fields.Nested(ObjectionOut))
    evidence = fields.List(fields.Nested(EvidenceOut))


ContributionPageOut = page_schema(QueueItemOut, "ContributionPageOut")
MemberContributionPageOut = page_schema(MemberContributionOut, "MemberContributionPageOut")


class QueueArgs(LoadSchema):
    state = fields.String(load_default="submitted", validate=validate.OneOf(
        ["submitted", "verified", "rejected", "in_notice", "awarded", "revoked", "all"]))
    indicator_code = fields.String(load_default=None)
    duplicates_only = fields.Boolean(load_default=False)
    limit = Int4(load_default=50, min=1, max=200)
    after = Id(load_default=None)


class MineArgs(LoadSchema):
    state = fields.String(load_default="all", validate=validate.OneOf(
        ["submitted", "rejected", "in_notice", "awarded", "revoked", "all"]))
    limit = Int4(load_default=20, min=1, max=100)
    after = Id(load_default=None)


class VerifyIn(LoadSchema):
    note = fields.String(load_default=None, validate=words(min=1, max=500),
                         metadata={"description": "Optional; when given, words, not only blanks"})


class BulkVerifyIn(LoadSchema):
    contribution_ids = fields.List(Id(), required=True,
                                   validate=validate.Length(min=1, max=5000))
    note = fields.String(load_default=None, validate=words(min=1, max=500),
                         metadata={"description": "Optional; when given, words, not only blanks"})


class ReasonIn(LoadSchema):
    reason = fields.String(required=True, validate=words(max=500))


class ObjectionIn(LoadSchema):
    text = fields.String(required=True, validate=words(min=4, max=1000))


class ResolveIn(LoadSchema):
    uphold = fields.Boolean(required=True, truthy={True}, falsy={False})
    resolution = fields.String(required=True, validate=words(max=500))


class NoticeOut(DumpSchema):
    """What the village sees during public notice: the work, the proposal, masked names."""

    id = fields.Integer()
    indicator_code = fields.String()
    indicator_name = fields.Method("_indicator_name")
    work_date = fields.Date()
    description = fields.String()
    proposed_points = fields.Integer()
    notice_until = fields.DateTime()
    names = fields.List(fields.String(), metadata={"description": "Masked, e.g. 张*梅"})
    open_objections = fields.Integer()

    def _indicator_name(self, notice: object) -> str:
        return getattr(notice, "name_en" if is_english() else "name_zh")


NoticePageOut = page_schema(NoticeOut, "NoticePageOut")


class NoticeArgs(LoadSchema):
    limit = Int4(load_default=50, min=1, max=200)
    after = Id(load_default=None, metadata={"description": "Cursor: the `next` value of the previous page."})
    objected = fields.Boolean(load_default=False, metadata={
        "description": "Only notices with an open objection (the ones staff must resolve before the award)"})


class IndicatorSchema(LoadSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}-[0-9]{1,2}\Z"))
    class_ = fields.String(required=True, data_key="class", validate=validate.OneOf(CLASSES))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    base_points = Int4(required=True, min=0, max=1000)
    unit = fields.String(load_default="case", validate=validate.OneOf(UNITS))
    multiplier = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["warning_colour"]))
    multipliers = fields.Dict(keys=fields.String(validate=validate.OneOf(COLOURS)),
                              values=Int4(min=1, max=MAX_FACTOR), load_default=dict)
    cap_month = Int4(load_default=None, allow_none=True)
    cap_year = Int4(load_default=None, allow_none=True)
    cap_activity = Int4(load_default=None, allow_none=True)
    shared = fields.Boolean(load_default=False)
    requires = fields.List(fields.String(), load_default=list)


class GradeSchema(LoadSchema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=10))
    min_points = Int4(required=True)
    zh = fields.String(load_default=None)
    en = fields.String(load_default=None)


class HonourSchema(LoadSchema):
    """One honour's thresholds, as in the seed data; min_grade is checked against the rule set's
    grades when the draft is validated."""

    zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    min_points = Int4(required=True, min=0)
    min_grade = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=10))


class HonoursSchema(LoadSchema):
    most_beautiful_family = fields.Nested(HonourSchema, required=True)
    loan_priority = fields.Nested(HonourSchema, required=True)


class RuleSetEditIn(LoadSchema):
    name = fields.String(validate=validate.Length(min=2, max=200))
    effective_from = fields.Date()
    notice_days = Int4(min=0, max=60)
    grades = fields.List(fields.Nested(GradeSchema))
    honours = fields.Nested(HonoursSchema, metadata={"description": f"Thresholds for each of {', '.join(HONOURS)}"})
    indicators = fields.List(fields.Nested(IndicatorSchema), validate=validate.Length(min=1, max=100))


class DraftIn(LoadSchema):
    from_version = Int4(required=True, min=1)


class IndicatorOut(DumpSchema):
    code = fields.String()
    class_ = fields.String(data_key="class")
    name_zh = fields.String()
    name_en = fields.String()
    base_points = fields.Integer()
    unit = fields.String()
    multiplier = fields.String(allow_none=True)
    multipliers = fields.Dict()
    cap_month = fields.Integer(allow_none=True)
    cap_year = fields.Integer(allow_none=True)
    cap_activity = fields.Integer(allow_none=True)
    shared = fields.Boolean()
    requires = fields.List(fields.String())


class RuleSetOut(DumpSchema):
    version = fields.Integer()
    name = fields.String()
    effective_from = fields.Date()
    status = fields.String()
    notice_days = fields.Integer()
    grades = fields.List(fields.Dict())
    honours = fields.Dict()
    published_at = fields.DateTime(allow_none=True)
    indicators = fields.List(fields.Nested(IndicatorOut))


class ValidationReportOut(DumpSchema):
    valid = fields.Boolean()
    problems = fields.List(fields.Dict(), metadata={"description": "Each names the indicator and the field"})


class GradeOut(DumpSchema):
    participant_id = fields.Integer()
    points_12m = fields.Integer(metadata={"description": "Points earned in the trailing 12 months"})
    grade = fields.Dict(allow_none=True)
    next_grade = fields.Dict(allow_none=True)
    points_to_next = fields.Integer(allow_none=True)
    rule_version = fields.Integer()
    window_from = fields.Date()
    window_to = fields.Date()


class HonourArgs(LoadSchema):
    township_id = Id(required=True)
    year = Int4(required=True, min=2020, max=2100)
    honour = fields.String(required=True, validate=validate.OneOf(HONOURS))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "xlsx"]))


class CandidateOut(DumpSchema):
    rank = fields.Integer()
    participant_id = fields.Function(lambda c: c.participant.id)
    name = fields.Function(lambda c: c.participant.name, metadata={
        "description": "Full for staff who work with people (and nominate); masked for auditors"})
    points = fields.Integer(metadata={"description": "Points earned in the county's calendar year (the ranking)"})
    grade = fields.String(allow_none=True, metadata={"description": (
        "Credit grade (points earned in the 12 months before) as of 31 December of the year, or as of "
        "today for the current year; the honour's min_grade is held against it")})
    nominated = fields.Boolean()


class MaskedCandidateOut(CandidateOut):
    """As auditors see the ranking: they check it, they do not need to know who is who."""

    name = fields.Function(lambda c: mask_name(c.participant.name))


class NominationIn(LoadSchema):
    year = Int4(required=True, min=2020, max=2100)
    honour = fields.String(required=True, validate=validate.OneOf(HONOURS))
    participant_id = Id(required=True)
    note = fields.String(load_default=None, validate=validate.Length(max=500))


class NominationOut(DumpSchema):
    id = fields.Integer()
    year = fields.Integer()
    honour = fields.String()
    township_id = fields.Integer()
    participant_id = fields.Integer()
    points = fields.Integer()
    note = fields.String(allow_none=True)
    nominated_at = fields.DateTime()


class ImportJobOut(DumpSchema):
    id = fields.Integer()
    filename = fields.String()
    status = fields.String()
    total_rows = fields.Integer(allow_none=True)
    processed_rows = fields.Integer()
    imported_rows = fields.Integer()
    errors = fields.Function(lambda job: [import_error(e) for e in job.errors or []], metadata={
        "type": "array", "items": {"type": "object"},
        "description": "Every bad row: line, field, reason. A job given up on after its runs died has one, "
                       "`code` `too_many_attempts` with the runs started as `attempts`"})
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


def import_error(error: dict[str, Any]) -> dict[str, Any]:
    """An import job's error in the reader's language: reasons are stored in English as the
    import wrote them (`GAVE_UP_REASON`; a row's field messages, several joined by "; ").
    Anything no template or catalogue entry wrote (a value quoted from the file) stays as it is."""
    if error.get("code") == GAVE_UP:
        return {**error, "reason": gettext(GAVE_UP_REASON, attempts=error.get("attempts"))}
    reason = error.get("reason")
    if not isinstance(reason, str):
        return error
    return {**error, "reason": import_reason(reason)}


def import_reason(reason: str) -> str:
    """One stored reason in the reader's language: a field message as a whole (some hold a "; "
    themselves), else each of the messages joined in it; a refusal's own message (a row's
    `exc.message`, a msgid) through the catalogue."""
    whole = localize_message(reason)
    if whole != reason:
        return whole
    parts = reason.split("; ")
    return "; ".join(done if (done := localize_message(part)) != part or not part else gettext(part)
                     for part in parts)


class ScreeningOut(DumpSchema):
    title_zh = fields.String()
    title_en = fields.String()
    warning_colours = fields.List(fields.Dict())
    categories = fields.List(fields.Dict())

