"""Redemption tables: the partner scenarios, one-time codes, holds, redemptions and refunds, and
per-participant usage counters that make limits hold under concurrency."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from infra.db import Base, BigId, utcnow

FAMILIES = ("shopping", "dining", "healthcare", "tourism", "library", "sports", "approvals", "utilities", "parking",
            "rental", "transport", "loans", "training", "employment", "culture", "childcare", "elderly_care", "legal")


class Scenario(Base):
    """A "信易+" scenario. Terms may change for the future; each redemption keeps a copy of the
    terms it was made under, so a change never rewrites the past."""

    __tablename__ = "scenarios"
    __table_args__ = (
        UniqueConstraint("code"),
        CheckConstraint("kind IN ('spend','privilege')", name="kind"),
        CheckConstraint("kind <> 'spend' OR points_cost > 0", name="spend_costs_points"),
        CheckConstraint("kind <> 'privilege' OR (points_cost = 0 AND required_grade IS NOT NULL)",
                        name="privilege_needs_grade"),
        CheckConstraint("yuan_value_fen >= 0", name="yuan_value"),
        CheckConstraint("total_quota IS NULL OR quota_used <= total_quota", name="quota"),
        CheckConstraint("status IN ('active','suspended')", name="status"),
        Index("ix_scenarios_partner", "partner_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(16))
    family: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(String(10))
    points_cost: Mapped[int] = mapped_column(Integer, default=0)
    required_grade: Mapped[str | None] = mapped_column(String(10))
    yuan_value_fen: Mapped[int] = mapped_column(Integer, default=0)
    limit_day: Mapped[int | None] = mapped_column(Integer)
    limit_month: Mapped[int | None] = mapped_column(Integer)
    limit_year: Mapped[int | None] = mapped_column(Integer)
    total_quota: Mapped[int | None] = mapped_column(Integer)
    quota_used: Mapped[int] = mapped_column(Integer, default=0)
    stock_note: Mapped[str | None] = mapped_column(String(200))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    terms_zh: Mapped[str] = mapped_column(Text, default="")
    terms_en: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="active")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    outlets: Mapped[list[ScenarioOutlet]] = relationship(cascade="all, delete-orphan")


class ScenarioOutlet(Base):
    __tablename__ = "scenario_outlets"

    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"), primary_key=True)
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"), primary_key=True, index=True)


class OneTimeCode(Base):
    """A code a participant shows at the counter: short digits, minutes of validity, single use.
    Only a keyed digest is stored, so a database reader cannot use live codes."""

    __tablename__ = "one_time_codes"
    __table_args__ = (UniqueConstraint("code_digest"), Index("ix_one_time_codes_expiry", "expires_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    used_by_outlet: Mapped[int | None] = mapped_column(ForeignKey("outlets.id"))


class UsageCounter(Base):
    """Uses per participant, scenario and period (D2026-11-29, M2026-11, Y2026), raised with a
    conditional upsert so a limit can never be passed, however many counters act at once."""

    __tablename__ = "usage_counters"
    __table_args__ = (CheckConstraint("used >= 0", name="used"),)

    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(11), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class Hold(Base):
    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("status IN ('held','captured','voided','expired')", name="status"),
        CheckConstraint("points > 0", name="points"),
        UniqueConstraint("outlet_id", "idem_key"),
        Index("ix_holds_expiry", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"))
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    points: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="held")
    hold_posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"))
    release_posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"))
    terms: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the scenario's terms when held: the capture's
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    idem_key: Mapped[str] = mapped_column(String(100))
    request_digest: Mapped[str] = mapped_column(String(64))


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        CheckConstraint("kind IN ('spend','privilege')", name="kind"),
        CheckConstraint("points >= 0 AND refunded_points >= 0 AND refunded_points <= points", name="refund_bound"),
        CheckConstraint("kind <> 'privilege' OR points = 0", name="privilege_free"),
        UniqueConstraint("outlet_id", "idem_key"),
        Index("ix_redemptions_partner_time", "partner_id", "created_at"),
        Index("ix_redemptions_participant", "participant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenarios.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(Integer)
    yuan_value_fen: Mapped[int] = mapped_column(Integer)
    refunded_points: Mapped[int] = mapped_column(Integer, default=0)
    refunded_fen: Mapped[int] = mapped_column(Integer, default=0)
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    terms: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the scenario's terms at the time
    # What was taken for it, which a full refund gives back: {"periods": usage counter periods
    # raised, "quota": whether a unit of the quota} (`limits.take`). None: made before migration 0019.
    consumed: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    idem_key: Mapped[str] = mapped_column(String(100))
    request_digest: Mapped[str] = mapped_column(String(64))

    refunds: Mapped[list[Refund]] = relationship(order_by="Refund.id")


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("points > 0", name="points"), UniqueConstraint("outlet_id", "idem_key"),
                      Index("ix_refunds_redemption", "redemption_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    redemption_id: Mapped[int] = mapped_column(ForeignKey("redemptions.id"))
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"))
    points: Mapped[int] = mapped_column(Integer)
    yuan_value_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    idem_key: Mapped[str] = mapped_column(String(100))
    request_digest: Mapped[str] = mapped_column(String(64))
