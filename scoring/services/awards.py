"""The award job: contributions whose public notice has ended with no open objection become
ledger postings. Idempotent: each contribution's posting has the key `contribution:<id>`, and
rows are claimed with SKIP LOCKED so several workers never award the same one.

Set-based: the batch is read with Core selects and written with one statement per table
(`bulk_sql`); only the postings go through the ledger's `post_many`. The events are written before
the postings, so the balance rows `post_many` locks are held as briefly as possible."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from infra.auth import SYSTEM, Principal
from infra.db import utcnow
from ledger.models import Account
from ledger.services import accounts
from ledger.services.posting import Leg, PostingRequest, post_many
from scoring.models import Contribution, ContributionEvent, ContributionMember, Objection
from scoring.services import bulk_sql
from scoring.services.engine import explain

IDEM_SCOPE = "scoring"
NOTHING_TO_POST = "every member at the cap: nothing to post"


def due(session: Session, now: dt.datetime, limit: int) -> list[Any]:
    """Claim up to `limit` contributions due for award, SKIP LOCKED: rows of id, indicator_code,
    description, notice_until and explanation, in id order. They are claimed in the order their
    notice ended, which the (state, notice_until) index gives: ordering by id instead makes every
    claim walk past all the rows already awarded, so a run of n awards costs n squared."""
    open_objection = exists().where(Objection.contribution_id == Contribution.id, Objection.status == "open")
    rows = list(session.execute(
        select(Contribution.id, Contribution.indicator_code, Contribution.description, Contribution.notice_until,
               Contribution.explanation)
        .where(Contribution.state == "in_notice", Contribution.notice_until <= now, ~open_objection)
        .order_by(Contribution.notice_until).limit(limit).with_for_update(of=Contribution, skip_locked=True)))
    return sorted(rows, key=lambda r: r.id)


def _members(session: Session, ids: list[int]) -> dict[int, list[tuple[int, int | None]]]:
    cm = ContributionMember
    out: dict[int, list[tuple[int, int | None]]] = defaultdict(list)
    for cid, pid, points in session.execute(
            select(cm.contribution_id, cm.participant_id, cm.points)
            .where(bulk_sql.any_of(cm.contribution_id, ids, session)).order_by(cm.contribution_id, cm.participant_id)):
        out[cid].append((pid, points))
    return out


def _accounts(session: Session, wanted: set[int]) -> dict[int, int]:
    """Participant id -> account id, opening the (rare) missing ones."""
    found = dict(session.execute(select(Account.participant_id, Account.id)
                                 .where(bulk_sql.any_of(Account.participant_id, sorted(wanted), session))).all()) \
        if wanted else {}
    for pid in sorted(wanted - found.keys()):
        found[pid] = accounts.participant_account(session, pid).id
    return found


def award_due(session: Session, *, now: dt.datetime | None = None, limit: int = 1000, shards: int = 16,
              actor: Principal = SYSTEM) -> int:
    """Award one batch; returns how many contributions it awarded (run until it returns 0)."""
    now = now or utcnow()
    session.flush()  # pending ORM changes first: what follows reads and writes the tables directly
    batch = due(session, now, limit)
    if not batch:
        return 0
    ids = [c.id for c in batch]
    members = _members(session, ids)
    issuance = accounts.system_account(session, accounts.ISSUANCE, shards)
    member_accounts = _accounts(session, {pid for cid in ids for pid, points in members[cid] if points})
    requests, with_points, empty = [], [], []
    for c in batch:
        mine = members[c.id]
        legs = [Leg(member_accounts[pid], points) for pid, points in mine if points]
        if not legs:  # every member was at the cap: awarded, with nothing to post
            empty.append(c.id)
            continue
        total = sum(leg.amount for leg in legs)
        legs.append(Leg(issuance.id, -total))
        e = c.explanation
        explain_map = {lang: {str(pid): explain(e, pid, lang) for pid, _p in mine} for lang in ("zh", "en")}
        requests.append(PostingRequest(
            kind="award", reason=f"{e['name_zh']}（{c.indicator_code}）：{c.description[:80]}",
            idempotency_key=f"contribution:{c.id}", source_type="contribution", source_id=str(c.id),
            effective_at=min(c.notice_until or now, utcnow()), legs=legs,
            meta={"indicator": c.indicator_code, "rule_version": e["rule_version"], "explain": explain_map}))
        with_points.append(c.id)
    events = {"from_state": "in_notice", "to_state": "awarded", "actor_kind": actor.kind, "actor_id": actor.id,
              "actor_label": actor.label[:100], "at": utcnow()}
    event_table = ContributionEvent.__table__
    bulk_sql.insert_rows(session, event_table, {"contribution_id": with_points}, {**events, "note": None})  # type: ignore[arg-type]
    bulk_sql.insert_rows(session, event_table, {"contribution_id": empty}, {**events, "note": NOTHING_TO_POST})  # type: ignore[arg-type]
    results = post_many(session, actor, requests, idem_scope=IDEM_SCOPE)
    posting_of = {cid: r.posting_id for cid, r in zip(with_points, results)}
    bulk_sql.update_rows(session, Contribution.__table__, ("id",),  # type: ignore[arg-type]
                         {"id": ids, "posting_id": [posting_of.get(cid) for cid in ids]},
                         {"state": "awarded", "awarded_at": now})
    bulk_sql.expire(session, ids)
    return len(batch)
