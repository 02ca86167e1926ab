"""The award job: contributions whose public notice has ended with no open objection become
ledger postings. Idempotent: each contribution's posting has the key `contribution:<id>`, and
rows are claimed with SKIP LOCKED so several workers never award the same one."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from infra.auth import SYSTEM, Principal
from infra.db import utcnow
from ledger.models import Account
from ledger.services import accounts
from ledger.services.posting import Leg, PostingRequest, post_many
from scoring.models import Contribution, Objection
from scoring.services.engine import explain
from scoring.services.submissions import record_event

IDEM_SCOPE = "scoring"


def due(session: Session, now: dt.datetime, limit: int) -> list[Contribution]:
    open_objection = exists().where(Objection.contribution_id == Contribution.id, Objection.status == "open")
    return list(session.scalars(
        select(Contribution).where(Contribution.state == "in_notice", Contribution.notice_until <= now, ~open_objection)
        .order_by(Contribution.id).limit(limit).with_for_update(skip_locked=True)
        .options(selectinload(Contribution.members))))


def award_due(session: Session, *, now: dt.datetime | None = None, limit: int = 1000, shards: int = 16,
              actor: Principal = SYSTEM) -> int:
    """Award one batch; returns how many contributions it awarded (run until it returns 0)."""
    now = now or utcnow()
    batch = due(session, now, limit)
    if not batch:
        return 0
    issuance = accounts.system_account(session, accounts.ISSUANCE, shards)
    wanted = {m.participant_id for c in batch for m in c.members if m.points}
    member_accounts = dict(session.execute(select(Account.participant_id, Account.id)
                                           .where(Account.participant_id.in_(wanted))).all()) if wanted else {}
    requests, with_points = [], []
    for c in batch:
        legs = []
        for m in c.members:
            if m.points:
                if m.participant_id not in member_accounts:
                    member_accounts[m.participant_id] = accounts.participant_account(session, m.participant_id).id
                legs.append(Leg(member_accounts[m.participant_id], m.points))
        total = sum(leg.amount for leg in legs)
        if total == 0:  # every member was at the cap: awarded, with nothing to post
            continue
        legs.append(Leg(issuance.id, -total))
        e = c.explanation
        explain_map = {lang: {str(m.participant_id): explain(e, m.participant_id, lang) for m in c.members}
                       for lang in ("zh", "en")}
        requests.append(PostingRequest(
            kind="award", reason=f"{e['name_zh']}（{c.indicator_code}）：{c.description[:80]}",
            idempotency_key=f"contribution:{c.id}", source_type="contribution", source_id=str(c.id),
            effective_at=min(c.notice_until or now, utcnow()), legs=legs,
            meta={"indicator": c.indicator_code, "rule_version": e["rule_version"], "explain": explain_map}))
        with_points.append(c)
    results = post_many(session, actor, requests, idem_scope=IDEM_SCOPE)
    posting_of = {c.id: r.posting_id for c, r in zip(with_points, results)}
    for c in batch:
        c.state, c.awarded_at, c.posting_id = "awarded", now, posting_of.get(c.id)
        record_event(session, c, actor, "awarded", from_state="in_notice",
                     note=None if c.posting_id else "every member at the cap: nothing to post")
    session.flush()
    return len(batch)
