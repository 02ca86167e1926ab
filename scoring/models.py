"""Scoring tables: versioned rule sets with their indicators, contributions and their workflow,
objections during public notice, cap tallies, evidence files, imports and honour nominations."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint, Date, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from infra.db import Base, BigId, utcnow
from infra.field_messages import N_

CLASSES = ("information", "mediation", "promotion")
UNITS = ("case", "hour", "household", "session", "event", "visit")
COLOURS = ("blue", "yellow", "orange", "red")
# The largest warning-colour factor: base points (<= 1,000) x quantity (<= 1,000) x factor stays
# far inside the INTEGER columns points are kept in.
MAX_FACTOR = 10
# The honours a rule set sets thresholds for (min_points, min_grade), read by grades.candidates.
HONOURS = ("most_beautiful_family", "loan_priority")
STATES = ("submitted", "verified", "rejected", "in_notice", "awarded", "revoked")
# States in which a contribution holds its incident for its indicator (one award per incident).
HOLDING_STATES = ("verified", "in_notice", "awarded")


class RuleSet(Base):
    """A dated, versioned rule set. Once published it never changes (a trigger refuses it)."""

    __tablename__ = "rule_sets"
    __table_args__ = (
        UniqueConstraint("version"),
        CheckConstraint("status IN ('draft','published')", name="status"),
        CheckConstraint("notice_days BETWEEN 0 AND 60", name="notice_days"),
        Index("ix_rule_sets_effective", "status", "effective_from"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    notice_days: Mapped[int] = mapped_column(SmallInteger, default=5)
    grades: Mapped[list[dict[str, Any]]] = mapped_column(default=list)  # [{code, min_points, zh, en}] high to low
    honours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    published_at: Mapped[dt.datetime | None]

    indicators: Mapped[list[Indicator]] = relationship(back_populates="rule_set", order_by="Indicator.code",
                                                       cascade="all, delete-orphan")


class Indicator(Base):
    __tablename__ = "indicators"
    __table_args__ = (
        UniqueConstraint("rule_set_id", "code"),
        CheckConstraint("class_ IN ('information','mediation','promotion')", name="class"),
        CheckConstraint("base_points >= 0", name="base_points"),
        CheckConstraint("cap_month IS NULL OR cap_month >= 0", name="cap_month"),
        CheckConstraint("cap_year IS NULL OR cap_year >= 0", name="cap_year"),
        CheckConstraint("cap_activity IS NULL OR cap_activity >= 0", name="cap_activity"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_set_id: Mapped[int] = mapped_column(ForeignKey("rule_sets.id"))
    code: Mapped[str] = mapped_column(String(16))
    class_: Mapped[str] = mapped_column(String(12))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    base_points: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(12), default="case")
    multiplier: Mapped[str | None] = mapped_column(String(20))  # e.g. "warning_colour"
    multipliers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cap_month: Mapped[int | None] = mapped_column(Integer)
    cap_year: Mapped[int | None] = mapped_column(Integer)
    cap_activity: Mapped[int | None] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(default=False)
    requires: Mapped[list[str]] = mapped_column(default=list)

    rule_set: Mapped[RuleSet] = relationship(back_populates="indicators")


class Contribution(Base):
    __tablename__ = "contributions"
    __table_args__ = (
        CheckConstraint("state IN ('submitted','verified','rejected','in_notice','awarded','revoked')", name="state"),
        CheckConstraint("quantity >= 1", name="quantity"),
        CheckConstraint("warning_colour IS NULL OR warning_colour IN ('blue','yellow','orange','red')", name="colour"),
        CheckConstraint("verified_by IS NULL OR submitted_by_staff IS NULL OR verified_by <> submitted_by_staff",
                        name="four_eyes"),
        Index("ix_contributions_state", "state", "region_path"),
        # Partial: most contributions have no incident number, and each index entry is written at
        # verification and again at award (migration 0006).
        Index("ix_contributions_incident", "indicator_code", "incident_key",
              postgresql_where=text("incident_key IS NOT NULL"), sqlite_where=text("incident_key IS NOT NULL")),
        # One incident earns one award per indicator: only one contribution may hold it.
        Index("uq_contributions_incident_holder", "indicator_code", "incident_key", unique=True,
              postgresql_where=text("incident_key IS NOT NULL AND state IN ('verified','in_notice','awarded')"),
              sqlite_where=text("incident_key IS NOT NULL AND state IN ('verified','in_notice','awarded')")),
        # Only the award job reads it, for contributions on notice (with the literal state, so that
        # a generic plan can use it).
        Index("ix_contributions_notice", "notice_until",
              postgresql_where=text("state = 'in_notice'"), sqlite_where=text("state = 'in_notice'")),
        # A submission sent again with its idempotency key finds the first, and one racing it waits
        # for it here (migration 0023). Partial: imports and staff without a key write no entry.
        Index("uq_contributions_idem_key", "idem_key", unique=True,
              postgresql_where=text("idem_key IS NOT NULL"), sqlite_where=text("idem_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    indicator_code: Mapped[str] = mapped_column(String(16))
    # rule_set_id and verified_by are checked once per statement on PostgreSQL (trigger
    # `contributions_references`, migration 0009), as posting_id is.
    rule_set_id: Mapped[int | None] = mapped_column(BigId)
    work_date: Mapped[dt.date] = mapped_column(Date)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    region_path: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    conflict_item: Mapped[str | None] = mapped_column(String(10))
    warning_colour: Mapped[str | None] = mapped_column(String(8))
    case_record: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    incident_key: Mapped[str | None] = mapped_column(String(120))
    duplicate_of: Mapped[list[int]] = mapped_column(default=list)  # suspected duplicates, for the verifier
    duplicate_suspect: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(10), default="submitted")
    submitted_by_participant: Mapped[int | None] = mapped_column(ForeignKey("participants.id"))
    submitted_by_staff: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("import_jobs.id"))
    # The submitting request's idempotency key, scoped to its submitter (`submissions.submit_once`).
    idem_key: Mapped[str | None] = mapped_column(String(100))
    verified_by: Mapped[int | None] = mapped_column(BigId)
    verified_at: Mapped[dt.datetime | None]
    notice_until: Mapped[dt.datetime | None]
    proposed_points: Mapped[int | None] = mapped_column(Integer)
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # On PostgreSQL the posting is checked once per statement (trigger `contributions_references`,
    # migration 0006): a per-row foreign key cost the award's update more than the update itself.
    posting_id: Mapped[int | None] = mapped_column(BigId)
    awarded_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    members: Mapped[list[ContributionMember]] = relationship(back_populates="contribution",
                                                             order_by="ContributionMember.participant_id",
                                                             cascade="all, delete-orphan")
    events: Mapped[list[ContributionEvent]] = relationship(
        primaryjoin="Contribution.id == foreign(ContributionEvent.contribution_id)", order_by="ContributionEvent.id")
    objections: Mapped[list[Objection]] = relationship(order_by="Objection.id")
    evidence: Mapped[list[EvidenceFile]] = relationship(order_by="EvidenceFile.id")


class ContributionMember(Base):
    """A participant named on a contribution, with a share weight for joint work."""

    __tablename__ = "contribution_members"
    __table_args__ = (CheckConstraint("share >= 1", name="share"), Index("ix_contribution_members_participant",
                                                                         "participant_id"))

    contribution_id: Mapped[int] = mapped_column(ForeignKey("contributions.id"), primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    share: Mapped[int] = mapped_column(Integer, default=1)
    points: Mapped[int | None] = mapped_column(Integer)

    contribution: Mapped[Contribution] = relationship(back_populates="members")


# The actor label of an event a resident caused on someone else's work (an objection): members
# read the history, and objectors stay anonymous to them.
RESIDENT_LABEL = "village resident"
# Notes the system writes on events, stored in English like the label and shown in the reader's
# language (scoring.schemas.system_note); staff's own notes (reasons) are shown as written.
OBJECTION_NOTE = "objection {id} lodged"
NOTHING_TO_POST = "every member at the cap: nothing to post"
# The submission's note when others' work may describe the same incident, followed by their ids:
# for staff; members read the event without it (scoring.schemas.MemberContributionDetailOut).
DUPLICATE_NOTE = "possible duplicate of "


class ContributionEvent(Base):
    """Every transition with actor and time. Append-only."""

    __tablename__ = "contribution_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Checked once per statement on PostgreSQL (trigger `contribution_events_references`, 0006).
    contribution_id: Mapped[int] = mapped_column(BigId, index=True)
    from_state: Mapped[str | None] = mapped_column(String(10))
    to_state: Mapped[str] = mapped_column(String(10))
    actor_kind: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class Objection(Base):
    __tablename__ = "objections"
    __table_args__ = (CheckConstraint("status IN ('open','upheld','dismissed')", name="status"),
                      Index("ix_objections_open", "contribution_id", "status"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contribution_id: Mapped[int] = mapped_column(ForeignKey("contributions.id"))
    lodged_by: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="open")
    lodged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[dt.datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)


class AwardTally(Base):
    """Points reserved or awarded per participant, indicator and period, so caps hold whatever
    the order of verification. The row is locked while a cap is applied."""

    __tablename__ = "award_tallies"
    __table_args__ = (CheckConstraint("points >= 0", name="points"),)

    # Checked once per statement on PostgreSQL (trigger `award_tallies_references`, migration 0009).
    participant_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    indicator_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-11" or "2026"
    points: Mapped[int] = mapped_column(Integer, default=0)


class EvidenceFile(Base):
    __tablename__ = "evidence_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contribution_id: Mapped[int] = mapped_column(ForeignKey("contributions.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    uploaded_by_kind: Mapped[str] = mapped_column(String(12))
    uploaded_by_id: Mapped[int] = mapped_column(BigId)


# An import given up on (`imports.give_up`): its one error has this code, the runs started as
# `attempts`, and this reason in English; read in the reader's language (`scoring.schemas`).
GAVE_UP = "too_many_attempts"
GAVE_UP_REASON = N_("The import was started %(attempts)s times and never finished: the file may be too large or "
                    "damaged for the server to read. Nothing was imported; check the file, or split it, and upload "
                    "it again.")


class ImportJob(Base):
    __tablename__ = "import_jobs"
    __table_args__ = (CheckConstraint("status IN ('queued','validating','importing','done','failed')", name="status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    stored_name: Mapped[str] = mapped_column(String(80))  # <sha256><suffix> under instance/imports
    status: Mapped[str] = mapped_column(String(10), default="queued")
    total_rows: Mapped[int | None] = mapped_column(Integer)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    imported_rows: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    created_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    scope_path: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    # Runs started (`imports.start_attempt`), committed before each imports: a run whose worker died
    # leaves its count behind, so a file that kills workers is given up on, not run for ever.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Nomination(Base):
    __tablename__ = "nominations"
    __table_args__ = (UniqueConstraint("year", "honour", "participant_id"),
                      CheckConstraint("honour IN ('most_beautiful_family','loan_priority')", name="honour"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    year: Mapped[int] = mapped_column(Integer)
    honour: Mapped[str] = mapped_column(String(30))
    township_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    points: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    nominated_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    nominated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
