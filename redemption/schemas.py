"""Redemption schemas: the catalogue, codes, counter operations, eligibility and settlement."""
from __future__ import annotations

from marshmallow import fields, validate

from infra.api import DumpSchema, Id, IdempotentArgs, Int4, LoadSchema, words
from infra.i18n import is_english
from redemption.models import FAMILIES
from redemption.services.common import yuan
from redemption.services.eligibility import REASONS

CODE = validate.Regexp(r"^[0-9]{8}\Z", error="Eight digits.")



class ScenarioOut(DumpSchema):
    id = fields.Integer()
    code = fields.String()
    family = fields.String()
    name = fields.Method("_name")
    name_zh = fields.String()
    name_en = fields.String()
    partner_id = fields.Integer()
    kind = fields.String(metadata={"description": "spend (points deducted) or privilege (a grade is required)"})
    points_cost = fields.Integer()
    required_grade = fields.String(allow_none=True)
    yuan_value = fields.Function(lambda s: yuan(s.yuan_value_fen))
    limit_day = fields.Integer(allow_none=True)
    limit_month = fields.Integer(allow_none=True)
    limit_year = fields.Integer(allow_none=True)
    total_quota = fields.Integer(allow_none=True)
    quota_used = fields.Integer()
    stock_note = fields.String(allow_none=True)
    valid_from = fields.Date()
    valid_until = fields.Date(allow_none=True)
    terms = fields.Method("_terms")
    status = fields.String()

    def _name(self, s: object) -> str:
        return getattr(s, "name_en" if is_english() else "name_zh")

    def _terms(self, s: object) -> str:
        return getattr(s, "terms_en" if is_english() else "terms_zh")


class PlaceOut(DumpSchema):
    id = fields.Integer()
    name = fields.String()
    address = fields.String(allow_none=True)


class CatalogueScenarioOut(ScenarioOut):
    places = fields.List(fields.Nested(PlaceOut), metadata={
        "description": "Where: the open outlets that honour it (none while its partner or every outlet is suspended)"})


class Reason(DumpSchema):
    code = fields.String()
    message = fields.Method("_message")
    need = fields.Raw(allow_none=True)
    have = fields.Raw(allow_none=True)
    limit = fields.Integer(allow_none=True)
    starts = fields.String(attribute="from", data_key="from", metadata={
        "description": "not_started: the day it begins (YYYY-MM-DD)"})
    until = fields.String(metadata={"description": "ended: its last day (YYYY-MM-DD)"})

    def _message(self, r: dict) -> str:
        zh, en = REASONS.get(r["code"], (r["code"], r["code"]))
        return en if is_english() else zh


class VerdictOut(DumpSchema):
    scenario = fields.Nested(ScenarioOut)
    eligible = fields.Boolean()
    reasons = fields.List(fields.Nested(Reason))
    places = fields.List(fields.Nested(PlaceOut), allow_none=True, metadata={
        "description": "Where it can be used now: the open outlets of an open partner (null at a counter)"})


class CodeOut(DumpSchema):
    code = fields.String(metadata={"description": "Eight digits to type at the counter; single use"})
    expires_at = fields.DateTime()
    qr_svg = fields.String(metadata={"description": "The code's QR image (SVG markup, image/svg+xml)"})


class LookupIn(LoadSchema):
    code = fields.String(required=True, validate=CODE)


class LookupOut(DumpSchema):
    """What the counter needs, and nothing more about the person."""

    masked_name = fields.String()
    grade = fields.String(allow_none=True)
    scenarios = fields.List(fields.Nested(VerdictOut), attribute="verdicts")


class RedeemIn(IdempotentArgs):
    code = fields.String(required=True, validate=CODE)
    scenario_id = Id(required=True)
    idempotency_key = fields.String(required=True, validate=validate.Length(min=8, max=100))


class HoldIn(RedeemIn):
    points = Int4(load_default=None, min=1, max=100000)


class CaptureIn(LoadSchema):
    points = Int4(load_default=None, min=1, max=100000)
    idempotency_key = fields.String(required=True, validate=validate.Length(min=8, max=100))


class RefundIn(LoadSchema):
    points = Int4(load_default=None, min=1, max=100000,
                  metadata={"description": "Omit for a full refund of what remains"})
    reason = fields.String(required=True, validate=words(max=300))
    idempotency_key = fields.String(required=True, validate=validate.Length(min=8, max=100))


class RedemptionOut(DumpSchema):
    id = fields.Integer()
    scenario_id = fields.Integer()
    outlet_id = fields.Integer()
    kind = fields.String()
    points = fields.Integer()
    yuan_value = fields.Function(lambda r: yuan(r.yuan_value_fen))
    refunded_points = fields.Integer()
    posting_id = fields.Integer(allow_none=True)
    scenario_name = fields.Function(lambda r: r.terms.get("name_zh"))
    created_at = fields.DateTime()


class HoldOut(DumpSchema):
    id = fields.Integer()
    scenario_id = fields.Integer()
    points = fields.Integer()
    status = fields.String()
    expires_at = fields.DateTime()
    redemption_id = fields.Integer(allow_none=True)


class RefundOut(DumpSchema):
    id = fields.Integer()
    redemption_id = fields.Integer()
    points = fields.Integer()
    yuan_value = fields.Function(lambda r: yuan(r.yuan_value_fen))
    reason = fields.String()
    posting_id = fields.Integer()
    created_at = fields.DateTime()


class MonthArgs(LoadSchema):
    month = fields.String(required=True, validate=validate.Regexp(r"^20[0-9][0-9]-(0[1-9]|1[0-2])\Z", error="A month as YYYY-MM."))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "xlsx"]))


class SettlementArgs(MonthArgs):
    partner_id = Id(required=True)


class SettlementOut(DumpSchema):
    partner_id = fields.Function(lambda s: s.partner.id)
    partner = fields.Function(lambda s: s.partner.name)
    month = fields.String()
    redeemed_points = fields.Integer()
    refunded_points = fields.Integer()
    net_points = fields.Integer()
    redeemed_yuan = fields.Function(lambda s: yuan(s.redeemed_fen))
    refunded_yuan = fields.Function(lambda s: yuan(s.refunded_fen))
    net_yuan = fields.String()
    privilege_uses = fields.Integer()
    privilege_yuan = fields.String(metadata={
        "description": "The yuan value of the month's privilege uses (no points deducted), repaid to the partner"})
    total_yuan = fields.String(metadata={"description": "net_yuan + privilege_yuan: what the month's lines come to"})
    ledger_month_net = fields.Integer(allow_none=True, metadata={
        "description": "Net points on the partner's ledger account this month; null on an outlet's own report"})
    ledger_balance = fields.Integer(allow_none=True, metadata={
        "description": "The partner's ledger account, ever; null on an outlet's own report"})
    reconciled = fields.Boolean(allow_none=True, metadata={
        "description": "Ledger account = redemptions - refunds, this month and ever; null (not applicable) on an "
                       "outlet's own report, which holds only its counter's lines"})
    lines = fields.List(fields.Dict())


class ScenarioIn(LoadSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9-]{2,16}\Z"))
    family = fields.String(required=True, validate=validate.OneOf(FAMILIES))
    name_zh = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name_en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    partner_id = Id(required=True)
    outlet_ids = fields.List(Id(), required=True, validate=validate.Length(min=1))
    kind = fields.String(required=True, validate=validate.OneOf(["spend", "privilege"]))
    points_cost = Int4(load_default=0, min=0, max=100000)
    required_grade = fields.String(load_default=None, validate=validate.Length(min=1, max=10), metadata={
        "description": "A grade of the published rules in force on the scenario's dates (rules_v1: A, AA, AAA)"})
    yuan_value_fen = Int4(load_default=0, min=0)
    limit_day = Int4(load_default=None, min=1)
    limit_month = Int4(load_default=None, min=1)
    limit_year = Int4(load_default=None, min=1)
    total_quota = Int4(load_default=None, min=1)
    stock_note = fields.String(load_default=None, validate=validate.Length(max=200))
    valid_from = fields.Date(required=True)
    valid_until = fields.Date(load_default=None)
    terms_zh = fields.String(load_default="", validate=validate.Length(max=2000))
    terms_en = fields.String(load_default="", validate=validate.Length(max=2000))


class ScenarioPatch(LoadSchema):
    family = fields.String(validate=validate.OneOf(FAMILIES))
    name_zh = fields.String(validate=validate.Length(min=1, max=200))
    name_en = fields.String(validate=validate.Length(min=1, max=200))
    outlet_ids = fields.List(Id(), validate=validate.Length(min=1))
    points_cost = Int4(min=0, max=100000)
    required_grade = fields.String(allow_none=True, validate=validate.Length(min=1, max=10), metadata={
        "description": "A grade of the published rules in force on the scenario's dates"})
    yuan_value_fen = Int4(min=0)
    limit_day = Int4(allow_none=True, min=1)
    limit_month = Int4(allow_none=True, min=1)
    limit_year = Int4(allow_none=True, min=1)
    total_quota = Int4(allow_none=True, min=1)
    stock_note = fields.String(allow_none=True, validate=validate.Length(max=200))
    valid_from = fields.Date()
    valid_until = fields.Date(allow_none=True)
    terms_zh = fields.String(validate=validate.Length(max=2000))
    terms_en = fields.String(validate=validate.Length(max=2000))


class CatalogueArgs(LoadSchema):
    family = fields.String(load_default=None, validate=validate.OneOf(FAMILIES))
    partner_id = Id(load_default=None)
