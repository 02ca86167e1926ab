"""Identity models. Regions carry a materialised path ("/1/4/17/") so a staff scope check is a
prefix comparison that an index serves."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from infra.db import Base, BigId, utcnow

REGION_LEVELS = ("county", "township", "village", "grid")


class Region(Base):
    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint("level IN ('county','township','village','grid')", name="level"),
        UniqueConstraint("code"),
        Index("ix_regions_path", "path"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    level: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    path: Mapped[str] = mapped_column(String(200), default="")

    parent: Mapped[Region | None] = relationship(remote_side=[id])


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("phone"), Index("ix_participants_region_path", "region_path"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    # Copy of the grid's path so scope filters need no join.
    region_path: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40), default="grid_leader")
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    region: Mapped[Region] = relationship()


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint("role IN ('clerk','verifier','approver','auditor','admin')", name="role"),
        UniqueConstraint("username"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(50))
    display_name: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(10))
    scope_region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    # A staff member who is also a volunteer: used to stop them awarding points to themselves.
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The admin who created the account (None: the command line, or the demo). Whoever creates an
    # account sets its first password, so the two are never each other's second pair of eyes.
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    scope_region: Mapped[Region] = relationship()


class Partner(Base):
    __tablename__ = "partners"
    __table_args__ = (UniqueConstraint("code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(100))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    outlets: Mapped[list[Outlet]] = relationship(back_populates="partner", order_by="Outlet.id")


class Outlet(Base):
    __tablename__ = "outlets"
    __table_args__ = (UniqueConstraint("partner_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(200))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    active: Mapped[bool] = mapped_column(default=True)

    partner: Mapped[Partner] = relationship(back_populates="outlets")


class ApiKey(Base):
    """An outlet's key. Only its SHA-256 digest is stored; the key is shown once at issue."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_digest"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_digest: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    # The issuing request's idempotency key, scoped to its sender: a retry gets this key, not a second.
    idem_key: Mapped[str | None] = mapped_column(String(100), unique=True)

    outlet: Mapped[Outlet] = relationship()


class AuthToken(Base):
    """A bearer token for staff or a participant; stored as a digest, revocable, expiring."""

    __tablename__ = "auth_tokens"
    __table_args__ = (
        UniqueConstraint("token_digest"),
        CheckConstraint("subject_kind IN ('staff','participant')", name="subject_kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64))
    subject_kind: Mapped[str] = mapped_column(String(12))
    subject_id: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class AuditEntry(Base):
    """Who did what, when, from where. Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_object", "object_type", "object_id"),
        Index("ix_audit_log_actor", "actor_kind", "actor_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(40))
    # Region path of the object, so auditors see only actions inside their scope.
    region_path: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
