"""Accounts, balances and statements, with object-level access checks."""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, false, func, or_, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session, aliased

from infra.auth import Principal
from infra.db import dialect_insert
from infra.errors import NotFound
from infra.security import mask_name, mask_phone
from identity.models import Participant, Partner, Region
from identity.services import is_county_scope, sees_full_names
from ledger.models import Account, BalanceShard, Entry, Posting

ISSUANCE = "issuance"
ADJUSTMENT = "adjustment"
ESCROW = "escrow"


def _open(session: Session, *, kind: str, code: str, name: str, shards: int, allow_negative: bool,
          participant_id: int | None = None, partner_id: int | None = None) -> Account:
    """Get or create, safe under concurrency: the unique code decides who creates it."""
    existing = session.scalar(select(Account).where(Account.code == code))
    if existing is not None:
        return existing
    insert = dialect_insert(session)
    result = session.execute(insert(Account.__table__).values(
        kind=kind, code=code, name=name, shard_count=shards, allow_negative=allow_negative,
        participant_id=participant_id, partner_id=partner_id, created_at=dt.datetime.now(dt.timezone.utc),
    ).on_conflict_do_nothing(index_elements=["code"]).returning(Account.__table__.c.id)).first()
    if result is not None:
        session.execute(insert(BalanceShard.__table__), [
            {"account_id": result.id, "shard": s, "balance": 0, "allow_negative": allow_negative, "last_seq": 0,
             "last_hash": "0" * 64} for s in range(shards)])
    account = session.scalar(select(Account).where(Account.code == code))
    assert account is not None
    return account


def participant_account(session: Session, participant_id: int) -> Account:
    return _open(session, kind="participant", code=f"participant:{participant_id}", name=f"participant {participant_id}",
                 shards=1, allow_negative=False, participant_id=participant_id)


def system_account(session: Session, kind: str, shards: int) -> Account:
    """The issuance or adjustment account: where awarded points come from."""
    return _open(session, kind=kind, code=kind, name=kind, shards=shards, allow_negative=True)


def partner_account(session: Session, partner_id: int, shards: int) -> Account:
    """Where points redeemed at a partner's outlets land, for settlement."""
    return _open(session, kind="partner", code=f"partner:{partner_id}", name=f"partner {partner_id}",
                 shards=shards, allow_negative=True, partner_id=partner_id)


def balance(session: Session, account_id: int) -> int:
    """Cached balance: one indexed read whatever the ledger's size."""
    return int(session.scalar(select(func.coalesce(func.sum(BalanceShard.balance), 0))
                              .where(BalanceShard.account_id == account_id)))


def balance_at(session: Session, account_id: int, at: dt.datetime) -> int:
    """Balance as of a past moment: the sum of entries effective up to then."""
    return int(session.scalar(select(func.coalesce(func.sum(Entry.amount), 0))
                              .where(Entry.account_id == account_id, Entry.effective_at <= at)))


def account_region_path(session: Session, account: Account) -> str:
    """Where an account belongs, for scope checks; system accounts belong to the whole county."""
    if account.participant_id is not None:
        return session.scalar(select(Participant.region_path).where(Participant.id == account.participant_id)) or "/"
    if account.partner_id is not None:
        return session.scalar(select(Region.path).join(Partner, Partner.region_id == Region.id)
                              .where(Partner.id == account.partner_id)) or "/"
    return county_path(session)


def county_path(session: Session) -> str:
    """The whole county's region path: where system accounts, and whatever names no one, belong."""
    return session.scalar(select(Region.path).where(Region.parent_id.is_(None)).order_by(Region.id)) or "/"


def get_account(session: Session, actor: Principal, account_id: int) -> Account:
    """The account if the caller may see it, else 404 (never someone else's data)."""
    account = session.get(Account, account_id)
    if account is None or not can_see(session, actor, account):
        raise NotFound("Account not found.", code="account_not_found")
    return account


def can_see(session: Session, actor: Principal, account: Account) -> bool:
    if actor.kind == "participant":
        return account.participant_id == actor.id
    if not actor.is_staff:
        return False
    if account.participant_id is not None:
        path = session.scalar(select(Participant.region_path).where(Participant.id == account.participant_id))
        return actor.in_scope(path)
    if account.partner_id is not None:  # county staff, and only of the partner's county
        return is_county_scope(actor) and actor.in_scope(account_region_path(session, account))
    return is_county_scope(actor)


def my_account(session: Session, actor: Principal) -> Account:
    return participant_account(session, actor.id)


# Words a source gives for the postings it causes, so that a participant reads beside the posting
# how its points were worked out (a contribution's award: rule, quantity, multiplier, caps). The
# ledger imports no domain: the domain registers, for its source type and posting kind, a function
# (session, source ids, participant id) -> {source id: {"zh": text, "en": text}}.
Explainer = Callable[[Session, Sequence[str], int], Mapping[str, Mapping[str, str]]]
EXPLAINERS: dict[tuple[str, str], Explainer] = {}


def register_explainer(source_type: str, kind: str, explainer: Explainer) -> None:
    EXPLAINERS[(source_type, kind)] = explainer


def _explanations(session: Session, postings: Sequence[Posting], participant_id: int | None
                  ) -> dict[int, Mapping[str, str]]:
    """Posting id -> the source's words for this participant, one call per registered source."""
    wanted: dict[tuple[str, str], list[Posting]] = defaultdict(list)
    if participant_id is not None:
        for p in postings:
            if p.source_id is not None and (p.source_type, p.kind) in EXPLAINERS:
                wanted[(p.source_type, p.kind)].append(p)  # type: ignore[index]
    out: dict[int, Mapping[str, str]] = {}
    for key, group in wanted.items():
        words = EXPLAINERS[key](session, sorted({p.source_id for p in group}), participant_id)  # type: ignore[arg-type,misc]
        for p in group:
            if p.source_id in words:
                out[p.id] = words[p.source_id]  # type: ignore[index]
    return out


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    posting_id: int
    kind: str
    reason: str
    amount: int
    balance_after: int | None
    effective_at: dt.datetime
    recorded_at: dt.datetime
    source_type: str | None
    source_id: str | None
    reverses_id: int | None
    reversed_by_id: int | None
    meta: dict[str, Any]
    participant_id: int | None = None
    explanation: Mapping[str, str] | None = None  # {"zh": text, "en": text}, from the source


# A page's entry ids on PostgreSQL, which has no (account_id, id) index on entries (migration
# 0015): each shard's newest `limit + 1` entries up to its top seq come from the unique
# (account_id, shard, seq) index, and the page is the newest of those by id. Within a shard ids
# grow with seq: its entries are written under its balance row's lock and ids come from one
# sequence. With a cursor, each shard's top is the highest seq whose entry id is below it, found by
# halving [0, last_seq] with index probes (about twenty per shard at a million entries); a missing
# entry halves downwards.
_ID_AT_MID = ("(SELECT e.id FROM entries e WHERE e.account_id = :account AND e.shard = t.shard"
              " AND e.seq = (t.lo + t.hi) / 2)")
_TOPS = "tops(shard, top) AS (SELECT shard, last_seq FROM balances WHERE account_id = :account)"
_TOPS_BEFORE = (
    "t(shard, lo, hi) AS (SELECT shard, CAST(0 AS BIGINT), last_seq + 1 FROM balances WHERE account_id = :account"
    f" UNION ALL SELECT shard, CASE WHEN {_ID_AT_MID} < :before THEN (lo + hi) / 2 ELSE lo END,"
    f" CASE WHEN {_ID_AT_MID} < :before THEN hi ELSE (lo + hi) / 2 END FROM t WHERE hi - lo > 1),"
    " tops(shard, top) AS (SELECT shard, lo FROM t WHERE hi - lo <= 1)")


def _in_window(q: Any, since: dt.datetime | None, until: dt.datetime | None) -> Any:
    """The statement query kept to entries effective within [since, until] (either may be open)."""
    if since is not None:
        q = q.where(Entry.effective_at >= since)
    if until is not None:
        q = q.where(Entry.effective_at <= until)
    return q


def _page_ids(session: Session, account: Account, limit: int, before_id: int | None, since: dt.datetime | None,
              until: dt.datetime | None) -> Any:
    """The ids of a sharded account's statement page (and one more), newest first by id, as a subquery."""
    if session.get_bind().dialect.name != "postgresql":  # SQLite: small, embedded; a sort is cheap there
        q = select(Entry.id).where(Entry.account_id == account.id)
        if before_id is not None:
            q = q.where(Entry.id < before_id)
        return _in_window(q, since, until).order_by(Entry.id.desc()).limit(limit + 1)
    times = [c for c, v in (("e.effective_at >= :since", since), ("e.effective_at <= :until", until)) if v is not None]
    sql = ("WITH RECURSIVE " + (_TOPS if before_id is None else _TOPS_BEFORE)
           + " SELECT page.id FROM tops CROSS JOIN LATERAL (SELECT e.id FROM entries e WHERE e.account_id = :account"
           " AND e.shard = tops.shard AND e.seq <= tops.top" + "".join(" AND " + c for c in times)
           + " ORDER BY e.seq DESC LIMIT :n) page ORDER BY page.id DESC LIMIT :n")
    params = {"account": account.id, "n": limit + 1, "before": before_id, "since": since, "until": until}
    return select(sql_text(sql).bindparams(**{k: v for k, v in params.items() if f":{k}" in sql})
                  .columns(id=BigInteger).subquery("page").c.id)


def statement(session: Session, account: Account, *, limit: int = 20, before_id: int | None = None,
              since: dt.datetime | None = None, until: dt.datetime | None = None) -> tuple[list[StatementLine], int | None]:
    """Newest first, keyset-paged on entry id (stable under concurrent appends)."""
    reversal = aliased(Posting)
    q = (select(Entry, Posting, reversal.id.label("reversed_by_id"))
         .join(Posting, Posting.id == Entry.posting_id)
         .outerjoin(reversal, reversal.reverses_id == Posting.id))
    if account.shard_count == 1:
        # One shard (every participant): its entries newest first by seq, which is id order there.
        q = q.where(Entry.account_id == account.id, Entry.shard == 0)
        if before_id is not None:  # from the cursor's seq when it is this account's entry
            own = (select(Entry.seq).where(Entry.id == before_id, Entry.account_id == account.id, Entry.shard == 0)
                   .scalar_subquery())
            q = q.where(Entry.id < before_id, Entry.seq < func.coalesce(own, 2**62))
        q = _in_window(q, since, until).order_by(Entry.seq.desc()).limit(limit + 1)
    else:
        q = (q.where(Entry.id.in_(_page_ids(session, account, limit, before_id, since, until)))
             .order_by(Entry.id.desc()).limit(limit + 1))
    rows = session.execute(q).all()
    words = _explanations(session, [p for _e, p, _r in rows[:limit]], account.participant_id)
    lines = [StatementLine(
        entry_id=e.id, posting_id=p.id, kind=p.kind, reason=p.reason, amount=e.amount,
        balance_after=e.balance_after if account.shard_count == 1 else None, effective_at=e.effective_at,
        recorded_at=p.created_at, source_type=p.source_type, source_id=p.source_id, reverses_id=p.reverses_id,
        reversed_by_id=rev_id, meta=p.meta or {}, participant_id=account.participant_id, explanation=words.get(p.id),
    ) for e, p, rev_id in rows[:limit]]
    next_cursor = lines[-1].entry_id if len(rows) > limit else None
    return lines, next_cursor


@dataclass(frozen=True)
class AccountRow:
    account: Account
    balance: int
    participant: Participant | None


def find_accounts(session: Session, actor: Principal, *, q: str | None = None, region_path: str | None = None,
                  kind: str | None = None, limit: int = 20, after_id: int | None = None) -> tuple[list[AccountRow], int | None]:
    """Accounts the staff member may see, filtered by name / phone / account code / region."""
    bal = (select(BalanceShard.account_id, func.sum(BalanceShard.balance).label("balance"))
           .group_by(BalanceShard.account_id).subquery())
    partner_region = aliased(Region)
    stmt = (select(Account, bal.c.balance, Participant)
            .join(bal, bal.c.account_id == Account.id)
            .outerjoin(Participant, Participant.id == Account.participant_id)
            .outerjoin(Partner, Partner.id == Account.partner_id)
            .outerjoin(partner_region, partner_region.id == Partner.region_id)
            .order_by(Account.id).limit(limit + 1))
    scope_filter = actor.scope_filter(Participant.region_path)
    if is_county_scope(actor):
        # System accounts belong to every county; a partner's account only to its own (`can_see`).
        system_or_partner = Account.participant_id.is_(None) & or_(
            Account.partner_id.is_(None), actor.scope_filter(partner_region.path))
        stmt = stmt.where(or_(system_or_partner, scope_filter))
    else:
        stmt = stmt.where(scope_filter)
    if region_path:
        stmt = stmt.where(Participant.region_path.startswith(region_path))
    if kind:
        stmt = stmt.where(Account.kind == kind)
    if q:
        text = q.strip()
        digits = _phone_digits(text)
        # Phones match whole, or by their last four digits: never by arbitrary fragments, which
        # would let a reader rebuild a masked number digit by digit.
        if digits is not None and len(digits) == 11:
            phone_match = Participant.phone == digits
        elif digits is not None and len(digits) == 4:
            phone_match = Participant.phone.endswith(digits)
        else:
            phone_match = false()
        # Names likewise: a reader who sees them masked (张*梅) matches only a whole name, or a
        # fragment search would confirm the hidden characters one guess at a time.
        name_match = (Participant.name.contains(text, autoescape=True) if sees_full_names(actor)
                      else Participant.name == text)
        stmt = stmt.where(or_(name_match, phone_match, Account.code == text))
    if after_id is not None:
        stmt = stmt.where(Account.id > after_id)
    rows = session.execute(stmt).all()
    out = [AccountRow(account=a, balance=int(b or 0), participant=p) for a, b, p in rows[:limit]]
    return out, (out[-1].account.id if len(rows) > limit else None)


def _phone_digits(text: str) -> str | None:
    """The text as ASCII digits when it is only digits, full-width ones too (typed on a Chinese
    keyboard: １３９…, which str.isdigit accepts but no stored number equals); else None."""
    folded = unicodedata.normalize("NFKC", text)
    return folded if folded.isascii() and folded.isdigit() else None


_ACCOUNT_CODE = re.compile(r"^(?:(?:participant|partner):[0-9]+|issuance|adjustment|escrow)\Z")


def query_for_audit(q: str) -> dict[str, str]:
    """A search as the audit log keeps it: what kind of query it was and a masked form, so that
    auditors reading the log see who searched, not the phone numbers and names searched for."""
    text = q.strip()
    digits = _phone_digits(text)
    if digits is not None and len(digits) == 4:
        return {"kind": "phone_last4", "q": digits}  # the part a masked number shows anyway
    if digits is not None:
        return {"kind": "phone", "q": mask_phone(digits)}
    if _ACCOUNT_CODE.match(text):
        return {"kind": "account_code", "q": text}
    return {"kind": "name", "q": mask_name(text)}
