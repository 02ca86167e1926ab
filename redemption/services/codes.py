"""One-time codes: 8 random digits, valid for minutes, single use, bound to one participant.
Only an HMAC of the digits is stored; look-ups are rate-limited per outlet and per code."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import secrets

import qrcode
import qrcode.image.svg
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity.models import Participant
from infra.auth import Principal
from infra.db import utcnow
from infra.errors import Conflict, Forbidden, Unauthorized
from redemption.models import OneTimeCode
from redemption.services import refusals

DIGITS = 8
MAX_ACTIVE = 3


def digest(secret_key: str, digits: str) -> str:
    return hmac.new(secret_key.encode(), f"otc:{digits}".encode(), hashlib.sha256).hexdigest()


def issue(session: Session, actor: Principal, *, secret_key: str, ttl: dt.timedelta) -> tuple[str, OneTimeCode]:
    if actor.kind != "participant":
        raise Forbidden("Codes are for participants.", code="participants_only")
    # Still on the programme, read under a share lock: a request that resolved its token just
    # before a clerk took the participant off (`admin.services.set_participant_active`) either
    # finds them inactive here, or holds the clerk's update back until its code is committed,
    # where the withdrawal then finds it. Without it the code outlived the withdrawal.
    if not session.scalar(select(Participant.active).where(Participant.id == actor.id).with_for_update(read=True)):
        raise Unauthorized("Sign in first.")
    now = utcnow()
    active = session.scalars(select(OneTimeCode).where(
        OneTimeCode.participant_id == actor.id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now)
        .order_by(OneTimeCode.id)).all()
    for old in active[: max(len(active) - MAX_ACTIVE + 1, 0)]:
        old.expires_at = now  # a new code retires the oldest beyond the few kept live
    for _attempt in range(5):
        digits = f"{secrets.randbelow(10 ** DIGITS):0{DIGITS}d}"
        code = OneTimeCode(participant_id=actor.id, code_digest=digest(secret_key, digits), expires_at=now + ttl)
        try:
            with session.begin_nested():
                session.add(code)
                session.flush()
            return digits, code
        except IntegrityError:
            continue
    raise Conflict("Could not make a code; try again.", code="code_busy")


def find(session: Session, digits: str, *, secret_key: str, now: dt.datetime | None = None) -> OneTimeCode:
    """A live code, or one 404 for every failure (unknown, expired, used), so guesses learn nothing."""
    now = now or utcnow()
    code = session.scalar(select(OneTimeCode).where(OneTimeCode.code_digest == digest(secret_key, digits)))
    if code is None or code.used_at is not None or code.expires_at <= now:
        raise refusals.code_invalid()
    return code


def qr_svg(digits: str) -> bytes:
    """The digits alone: a counter's scanner types what it reads into the code field, which takes
    exactly eight digits (a prefix made every scanned code a 422)."""
    image = qrcode.make(digits, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def withdraw(session: Session, participant_id: int, now: dt.datetime | None = None) -> int:
    """End the participant's unused codes now (a participant taken off the programme cannot redeem
    with a code shown minutes before); returns how many were live."""
    now = now or utcnow()
    return session.execute(update(OneTimeCode).where(
        OneTimeCode.participant_id == participant_id, OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now)
        .values(expires_at=now).execution_options(synchronize_session=False)).rowcount
