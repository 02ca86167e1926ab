"""The award job: contributions whose public notice has ended with no open objection become
ledger postings. Idempotent: each contribution's posting has the key `contribution:<id>`, and
rows are claimed with SKIP LOCKED so several workers never award the same one (nor one whose
objection is being lodged: see `_claim`).

Set-based: on PostgreSQL one statement claims the batch, reads each one's members with their
accounts and writes the events (`_claim_pg`); the postings go through the ledger's `post_many`;
one statement marks the contributions awarded. The events are written before the postings, so the
balance rows `post_many` locks are held as briefly as possible. Elsewhere (SQLite) the same work
takes a Core select per table (`due`, `_members`, `_accounts`) and one statement per write."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from infra.auth import SYSTEM, Principal
from infra.db import utcnow
from infra.driver import execute
from ledger.models import Account
from ledger.services import accounts
from ledger.services.posting import Leg, PostingRequest, post_many
from scoring.models import NOTHING_TO_POST, Contribution, ContributionEvent, ContributionMember, Objection
from scoring.services import bulk_sql
from scoring.services.engine import explain

IDEM_SCOPE = "scoring"


def statement_words(session: Session, contribution_ids: Sequence[str], participant_id: int) -> dict[str, dict[str, str]]:
    """How an award's points were worked out, in plain words for this participant, in both
    languages: {contribution id: {"zh": text, "en": text}}. The participant's statement shows them
    beside the award's posting (`accounts.register_explainer`): the contribution keeps its
    explanation, so the posting does not carry a copy of the words for every member."""
    ids = [int(i) for i in contribution_ids if i.isdigit()]
    rows = session.execute(select(Contribution.id, Contribution.explanation)
                           .where(bulk_sql.any_of(Contribution.id, ids, session))).all() if ids else []
    return {str(cid): {"zh": explain(e, participant_id), "en": explain(e, participant_id, "en")}
            for cid, e in rows if e}


accounts.register_explainer("contribution", "award", statement_words)


def due(session: Session, now: dt.datetime, limit: int) -> list[Any]:
    """Claim up to `limit` contributions due for award, SKIP LOCKED: rows of id, indicator_code,
    description, notice_until and explanation, in id order. They are claimed in the order their
    notice ended, which the partial notice index gives: ordering by id instead makes every claim
    walk past all the rows already awarded, so a run of n awards costs n squared."""
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


# (id, indicator_code, description, notice_until, indicator name (zh), rule version,
#  [(participant, points, account or None)])
Claimed = tuple[int, str, str, Any, str, int, list[tuple[int, Any, Any]]]

# One round trip (`scoring_claim_awards`, migrations 0009 and 0013): claim (SKIP LOCKED, in notice
# order), each one's members in participant order with their accounts, and the events of the
# transition, in id order. A contribution whose members were all at the cap is awarded with
# nothing to post, and its event says so. A function, so that its plan does not depend on fresh
# statistics. Of the explanation it returns only what the posting names (the indicator's name and
# the rule version): the words stay with the contribution (see `statement_words`).
_CLAIM_PG = "SELECT * FROM scoring_claim_awards(%(now)s, %(limit)s, %(actor_kind)s, %(actor_id)s, %(actor_label)s, " \
            "%(at)s, %(empty_note)s)"

_AWARDED_PG = ("UPDATE contributions t SET state = 'awarded', awarded_at = %s, posting_id = v.posting_id "
               "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, posting_id) WHERE t.id = v.id")


def _claim_pg(session: Session, now: dt.datetime, limit: int, actor: Principal) -> list[Claimed]:
    rows = execute(session, _CLAIM_PG, {
        "now": now, "limit": limit, "actor_kind": actor.kind, "actor_id": actor.id,
        "actor_label": actor.label[:100], "at": utcnow(), "empty_note": NOTHING_TO_POST}, fetch=True, binary=True)
    return [(cid, code, description, notice_until, name_zh, rule_version,
             list(zip(pids or (), points or (), accts or ())))
            for cid, code, description, notice_until, name_zh, rule_version, pids, points, accts in rows]


def _claim_portable(session: Session, now: dt.datetime, limit: int, actor: Principal) -> list[Claimed]:
    batch = due(session, now, limit)
    if not batch:
        return []
    ids = [c.id for c in batch]
    members = _members(session, ids)
    member_accounts = _accounts(session, {pid for cid in ids for pid, points in members[cid] if points})
    claimed = [(c.id, c.indicator_code, c.description, c.notice_until, c.explanation["name_zh"],
                c.explanation["rule_version"], [(pid, points, member_accounts.get(pid)) for pid, points in members[c.id]])
               for c in batch]
    events = {"from_state": "in_notice", "to_state": "awarded", "actor_kind": actor.kind, "actor_id": actor.id,
              "actor_label": actor.label[:100], "at": utcnow()}
    bulk_sql.insert_rows(session, ContributionEvent.__table__,  # type: ignore[arg-type]
                         {"contribution_id": ids,
                          "note": [None if any(p for _pid, p, _a in mine) else NOTHING_TO_POST
                                   for *_c, mine in claimed]}, events)
    return claimed


def _claim(session: Session, now: dt.datetime, limit: int, actor: Principal, postgres: bool) -> list[Claimed]:
    """Claim a batch, then look again, with a fresh snapshot, for open objections to it.

    The claim sees objections committed before its statement began. `notices.lodge` locks the
    row, so while a lodge is in flight the claim skips the row, and a lodge that comes after the
    claim waits and finds the award made. But a lodge that commits after the claim began and
    before the claim reached the row is neither seen nor skipped. The look again finds it: the
    claim (its locks and events) is undone to the savepoint and taken again, and the new claim
    sees the objection. Rare (a resident objecting at the very end of the notice), and each
    round needs another lodge to commit within it, so the loop ends."""
    claim = _claim_pg if postgres else _claim_portable
    while True:
        savepoint = session.begin_nested()
        batch = claim(session, now, limit, actor)
        objected = session.scalar(select(Objection.id).where(
            bulk_sql.any_of(Objection.contribution_id, [c[0] for c in batch], session),
            Objection.status == "open").limit(1)) if batch else None
        if objected is None:
            savepoint.commit()
            return batch
        savepoint.rollback()


def award_due(session: Session, *, now: dt.datetime | None = None, limit: int = 1000, shards: int = 16,
              actor: Principal = SYSTEM) -> int:
    """Award one batch; returns how many contributions it awarded (run until it returns 0)."""
    now = now or utcnow()
    session.flush()  # pending ORM changes first: what follows reads and writes the tables directly
    postgres = bulk_sql.is_postgres(session)
    batch = _claim(session, now, limit, actor, postgres)
    if not batch:
        return 0
    issuance = accounts.system_account(session, accounts.ISSUANCE, shards)
    requests, with_points = [], []
    effective_cap = utcnow()
    for cid, code, description, notice_until, name_zh, rule_version, mine in batch:
        legs = []
        for pid, points, account in mine:
            if points:
                if account is None:  # rare: a participant without an account yet
                    account = accounts.participant_account(session, pid).id
                legs.append(Leg(account, points))
        if not legs:  # every member was at the cap: awarded, with nothing to post
            continue
        legs.append(Leg(issuance.id, -sum(leg.amount for leg in legs)))
        requests.append(PostingRequest(
            kind="award", reason=f"{name_zh}（{code}）：{description[:80]}",
            idempotency_key=f"contribution:{cid}", source_type="contribution", source_id=str(cid),
            effective_at=min(notice_until or now, effective_cap), legs=legs,
            meta={"indicator": code, "rule_version": rule_version}))
        with_points.append(cid)
    results = post_many(session, actor, requests, idem_scope=IDEM_SCOPE)
    posting_of = {cid: r.posting_id for cid, r in zip(with_points, results)}
    ids = [c[0] for c in batch]
    postings = [posting_of.get(cid) for cid in ids]
    if postgres:
        execute(session, _AWARDED_PG, (now, bulk_sql.int_array(ids), bulk_sql.int_array(postings)))
    else:
        bulk_sql.update_rows(session, Contribution.__table__, ("id",),  # type: ignore[arg-type]
                             {"id": ids, "posting_id": postings}, {"state": "awarded", "awarded_at": now})
    bulk_sql.expire(session, ids)
    return len(batch)
