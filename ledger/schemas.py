"""Ledger schemas: balances, statements, postings, corrections and integrity checks."""
from __future__ import annotations

import datetime as dt

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from infra.api import DumpSchema, Id, IdempotentArgs, Int4, LoadSchema, UtcDateTime, page_schema, words
from infra.i18n import is_english
from infra.security import mask_name, mask_phone
from ledger.services.posting import FUTURE_SKEW


KIND_LABELS = {
    "award": ("积分奖励", "Award"), "redemption": ("积分兑换", "Redemption"), "refund": ("兑换退回", "Refund"),
    "reversal": ("冲正", "Reversal"), "adjustment": ("人工调整", "Adjustment"),
    "hold": ("积分冻结", "Hold"), "release": ("冻结释放", "Release"),
}


def _kind_label(kind: str) -> str:
    zh, en = KIND_LABELS.get(kind, (kind, kind))
    return en if is_english() else zh


class BalanceArgs(LoadSchema):
    at = UtcDateTime(load_default=None, metadata={
        "description": "Balance as of this moment (ISO 8601 with zone); not one still to come."})

    @validates("at")
    def _not_to_come(self, value: dt.datetime | None, **_kw: object) -> None:
        """A balance later than now is not known yet (a hold may be released, points awarded):
        answering today's balance labelled with that moment would be a guess. A few minutes
        ahead, as a phone's clock may be, is the ledger's own tolerance for effective times."""
        if value is not None and value > dt.datetime.now(dt.timezone.utc) + FUTURE_SKEW:
            raise ValidationError("Must not be in the future.")


class BalanceOut(DumpSchema):
    account_id = fields.Integer()
    balance = fields.Integer()
    as_of = fields.DateTime(allow_none=True)


class StatementArgs(LoadSchema):
    limit = Int4(load_default=20, min=1, max=100)
    before = Id(load_default=None, metadata={"description": "Cursor: the `next` value of the previous page."})
    since = UtcDateTime(load_default=None)
    until = UtcDateTime(load_default=None)


class StatementLineOut(DumpSchema):
    entry_id = fields.Integer()
    posting_id = fields.Integer()
    kind = fields.String()
    kind_label = fields.Method("_kind_label")
    reason = fields.String(metadata={"description": "Why the points moved, in plain words"})
    amount = fields.Integer()
    balance_after = fields.Integer(allow_none=True)
    effective_at = fields.DateTime()
    recorded_at = fields.DateTime()
    source_type = fields.String(allow_none=True)
    source_id = fields.String(allow_none=True)
    reverses_id = fields.Integer(allow_none=True)
    reversed_by_id = fields.Integer(allow_none=True)
    explanation = fields.Method("_explanation", metadata={
        "description": "How the points were worked out, in plain words, when the source explains it"})

    def _kind_label(self, line: object) -> str:
        return _kind_label(getattr(line, "kind"))

    def _explanation(self, line: object) -> str | None:
        """The source's words for this participant (`accounts.register_explainer`); postings
        written before that carry them in their metadata."""
        locale = "en" if is_english() else "zh"
        words = getattr(line, "explanation", None)
        if words:
            return words.get(locale)
        texts = (getattr(line, "meta") or {}).get("explain", {}).get(locale, {})
        return texts.get(str(getattr(line, "participant_id"))) if isinstance(texts, dict) else None


StatementOut = page_schema(StatementLineOut, "StatementOut")


class EntryOut(DumpSchema):
    id = fields.Integer()
    account_id = fields.Integer()
    shard = fields.Integer()
    seq = fields.Integer()
    amount = fields.Integer()
    hash = fields.String()


class PostingOut(DumpSchema):
    id = fields.Integer()
    kind = fields.String()
    reason = fields.String()
    actor_kind = fields.String()
    actor_label = fields.String()
    source_type = fields.String(allow_none=True)
    source_id = fields.String(allow_none=True)
    meta = fields.Dict()
    effective_at = fields.DateTime()
    created_at = fields.DateTime()
    reverses_id = fields.Integer(allow_none=True)
    entries = fields.List(fields.Nested(EntryOut))


class ParticipantBrief(DumpSchema):
    id = fields.Integer()
    name = fields.Function(lambda p: p.name, metadata={"description": "Full for staff who work with people; "
                                                                      "masked for auditors"})
    phone = fields.Function(lambda p: mask_phone(p.phone))
    region_id = fields.Integer()


class MaskedParticipantBrief(ParticipantBrief):
    name = fields.Function(lambda p: mask_name(p.name))


class AccountRowOut(DumpSchema):
    id = fields.Function(lambda r: r.account.id)
    kind = fields.Function(lambda r: r.account.kind)
    code = fields.Function(lambda r: r.account.code)
    balance = fields.Integer()
    participant = fields.Nested(ParticipantBrief, allow_none=True)


AccountPageOut = page_schema(AccountRowOut, "AccountPageOut")


class MaskedAccountRowOut(AccountRowOut):
    participant = fields.Nested(MaskedParticipantBrief, allow_none=True)


MaskedAccountPageOut = page_schema(MaskedAccountRowOut, "MaskedAccountPageOut")


class AccountSearchArgs(LoadSchema):
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=50),
                      metadata={"description": "Part of a name (the whole name for auditors, who see names masked), "
                                                "a whole phone number or its last four digits, or an account code"})
    region_id = Id(load_default=None)
    kind = fields.String(load_default=None, validate=validate.OneOf(
        ["participant", "issuance", "partner", "adjustment"]))
    limit = Int4(load_default=20, min=1, max=100)
    after = Id(load_default=None)


class AdjustmentIn(IdempotentArgs):
    participant_id = Id(required=True)
    amount = Int4(required=True, min=-100000, max=100000)
    reason = fields.String(required=True, validate=words(max=500))

    @validates_schema
    def _non_zero(self, data: dict, **_kw: object) -> None:
        if data.get("amount") == 0:
            raise ValidationError("Must not be zero.", field_name="amount")


class ReversalIn(IdempotentArgs):
    posting_id = Id(required=True)
    reason = fields.String(required=True, validate=words(max=500))


class ApprovalOut(DumpSchema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    account_id = fields.Integer(allow_none=True)
    amount = fields.Integer(allow_none=True)
    posting_id = fields.Integer(allow_none=True)
    reason = fields.String()
    requested_by = fields.Integer()
    requested_at = fields.DateTime()
    decided_by = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_note = fields.String(allow_none=True)
    result_posting_id = fields.Integer(allow_none=True)


class ApprovalPartyOut(DumpSchema):
    account_id = fields.Integer()
    account_code = fields.String()
    account_kind = fields.String()
    participant_id = fields.Integer(allow_none=True)
    name = fields.String(allow_none=True, metadata={
        "description": "The participant's name (full for staff who work with people, masked for auditors); "
                       "null for a system account or a participant outside my scope"})
    amount = fields.Integer(metadata={
        "description": "Adjustment: the points it would add (negative: take); reversal: what the original "
                       "posting moved on this account, which the reversal undoes"})


class MaskedApprovalPartyOut(ApprovalPartyOut):
    name = fields.Function(lambda p: mask_name(p.name) if p.name else None, allow_none=True)


class ApprovalOriginalOut(DumpSchema):
    id = fields.Integer()
    kind = fields.String()
    kind_label = fields.Function(lambda o: _kind_label(o.kind))
    reason = fields.String()
    effective_at = fields.DateTime()


class ApprovalRowOut(ApprovalOut):
    """A request in the list, with what an approver needs to decide it."""
    requested_by_name = fields.String(allow_none=True, metadata={"description": "The requester's display name"})
    accounts = fields.List(fields.Nested(ApprovalPartyOut), metadata={
        "description": "The accounts it moves: an adjustment's one; a reversal's, each account the original moved"})
    original = fields.Nested(ApprovalOriginalOut, allow_none=True, metadata={
        "description": "Reversal: the posting it would undo"})


class MaskedApprovalRowOut(ApprovalRowOut):
    accounts = fields.List(fields.Nested(MaskedApprovalPartyOut))


class AdjustmentOut(DumpSchema):
    status = fields.String(metadata={"description": "posted, or pending an approver"})
    posting_id = fields.Integer(allow_none=True)
    request = fields.Nested(ApprovalOut, allow_none=True)


class ApprovalListArgs(LoadSchema):
    status = fields.String(load_default="pending", validate=validate.OneOf(["pending", "approved", "rejected", "all"]))
    limit = Int4(load_default=50, min=1, max=100)
    after = Id(load_default=None)


class DecisionIn(LoadSchema):
    approve = fields.Boolean(required=True, truthy={True}, falsy={False})
    note = fields.String(load_default=None, validate=words(min=1, max=500),
                         metadata={"description": "Optional; when given, words, not only blanks"})


class CheckOut(DumpSchema):
    id = fields.Integer()
    kind = fields.String()
    period_key = fields.String(allow_none=True)
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    ok = fields.Boolean()
    stats = fields.Dict()
    problems = fields.Function(lambda c: (c.problems or {}).get("items", []))


class CheckStatusOut(DumpSchema):
    verify = fields.Nested(CheckOut, allow_none=True)
    reconcile = fields.Nested(CheckOut, allow_none=True)


class RunCheckIn(LoadSchema):
    kind = fields.String(required=True, validate=validate.OneOf(["verify", "reconcile"]))


class DigestSummaryOut(DumpSchema):
    day = fields.Date()
    created_at = fields.DateTime()
    digest = fields.String()
    chain_count = fields.Integer()
    entry_count = fields.Integer()


class DigestOut(DigestSummaryOut):
    heads = fields.Dict(metadata={"description": "account:shard -> [seq, hash] of every chain head"})
