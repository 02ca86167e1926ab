"""Corrections with four eyes: manual adjustments (above a threshold) and reversals need an
approver who is not the requester. A correction is always a new posting; nothing is edited."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from infra.auth import Principal
from infra.db import utcnow
from infra.errors import Conflict, Forbidden, IdempotencyConflict, NotFound, ValidationFailed
from infra.idempotency import stored_key
from identity.models import Participant, StaffUser
from identity.services import audit, get_participant_in_scope, one_hand
from ledger.models import Account, ApprovalRequest, BalanceShard, Entry, Posting
from ledger.services import accounts, posting_sql
from ledger.services.posting import Leg, PostingRequest, PostingResult, post

REQUESTER_ROLES = ("clerk", "verifier", "approver")
APPROVER_ROLES = ("approver",)
# Small adjustments post at once only while their running total for the participant over this
# window stays within the threshold; splitting a large one into small ones does not dodge approval.
SMALL_ADJUSTMENT_WINDOW = dt.timedelta(days=30)
IMMEDIATE_SOURCE = "immediate_adjustment"
# Postings whose source is owned by another domain are corrected there (e.g. a contribution's
# award is revoked in scoring, which also frees its cap room), never by a bare ledger reversal.
MANAGED_SOURCES: dict[str, str] = {}
# Postings the redemption counter writes. The counter keeps its own record of each (a redemption's
# refunded points, a hold's status) and settles partners from it: a bare ledger reversal would
# leave that record saying the points are still spent, so the counter's refund could credit them
# again. They are corrected at the counter: a refund of the redemption, or a void of the hold.
COUNTER_KINDS = ("redemption", "hold", "release", "refund")
COUNTER_SOURCES = ("redemption", "hold", "refund")
COUNTER_CORRECTION = ("Corrected at the counter: the outlet refunds the redemption "
                      "(POST /api/v1/outlet/redemptions/{id}/refunds) or voids the hold "
                      "(POST /api/v1/outlet/holds/{id}/void).")


def register_managed_source(source_type: str, how_to_correct: str) -> None:
    MANAGED_SOURCES[source_type] = how_to_correct


@dataclass(frozen=True)
class AdjustmentOutcome:
    request: ApprovalRequest | None
    posting_id: int | None

    @property
    def status(self) -> str:
        return "posted" if self.posting_id is not None else "pending"


def reverse(session: Session, actor: Principal, posting_id: int, reason: str, *,
            idempotency_key: str | None = None, idem_scope: str | None = None) -> PostingResult:
    """Post the exact mirror of a posting, linked to it. Refuses reversals and double reversals."""
    original = session.get(Posting, posting_id)
    if original is None:
        raise NotFound("Posting not found.", code="posting_not_found")
    _refuse_counter_posting(original)  # a backstop: request_reversal refuses them first
    _check_reversible(session, original)
    # A system account's shards are interchangeable (it may go negative): the mirror leg takes any
    # free shard like every other posting, rather than waiting for the original one.
    sharded = posting_sql.sharded_accounts(session)
    request = PostingRequest(
        kind="reversal", reason=reason, reverses_id=original.id, idempotency_key=idempotency_key,
        legs=[Leg(e.account_id, -e.amount, None if e.account_id in sharded else e.shard) for e in original.entries],
        source_type=original.source_type, source_id=original.source_id, meta={"reverses_kind": original.kind},
    )
    try:
        with session.begin_nested():
            return post(session, actor, request, idem_scope=idem_scope)
    except IntegrityError as exc:  # a concurrent reversal won the UNIQUE(reverses_id) race
        raise Conflict("This posting has already been reversed.", code="already_reversed",
                       details={"posting_id": [f"Posting {posting_id} is already reversed."]}) from exc


def _refuse_counter_posting(posting: Posting) -> None:
    """The counter's postings are undone by the counter, so its records and the ledger agree."""
    if posting.kind in COUNTER_KINDS or posting.source_type in COUNTER_SOURCES:
        raise Conflict("This posting is corrected where it came from.", code="managed_source",
                       details={"posting_id": [COUNTER_CORRECTION]})


def _check_reversible(session: Session, original: Posting) -> None:
    if original.kind == "reversal":
        raise Conflict("A reversal cannot itself be reversed; post a new correction instead.",
                       code="cannot_reverse_reversal", details={"posting_id": ["This posting is a reversal."]})
    done = session.scalar(select(Posting.id).where(Posting.reverses_id == original.id))
    if done is not None:
        raise Conflict("This posting has already been reversed.", code="already_reversed",
                       details={"posting_id": [f"Reversed by posting {done}."]})


def posting_region(session: Session, actor: Principal, posting: Posting, *, field: str | None = None) -> str:
    """The posting's region for scope checks: its participant's, else the county's. Outside the
    actor's scope it is a 404 like a missing posting, naming `field` when the id came in a body."""
    paths = []
    for entry in posting.entries:
        account = session.get(Account, entry.account_id)
        assert account is not None
        if account.participant_id is not None:
            paths.append(accounts.account_region_path(session, account))
    if not paths and posting.entries:
        account = session.get(Account, posting.entries[0].account_id)
        assert account is not None
        paths.append(accounts.account_region_path(session, account))
    if not paths:  # no entries at all (deleted behind the triggers' back): the county's, as verify reports it
        paths.append(accounts.county_path(session))
    if not all(actor.in_scope(p) for p in paths):
        raise NotFound("Posting not found.", code="posting_not_found", details=_no_posting(field))
    return paths[0]


def _no_posting(field: str | None) -> dict[str, list[str]] | None:
    """The 404's details: missing and out of scope read the same, so neither reveals the other."""
    return {field: ["No such posting in your scope."]} if field else None


def _beneficiaries(session: Session, posting: Posting) -> set[int]:
    ids = [e.account_id for e in posting.entries]
    return {pid for pid in session.scalars(select(Account.participant_id).where(Account.id.in_(ids))) if pid}


def _refuse_self_dealing(actor: Principal, participant_ids: set[int]) -> None:
    if actor.participant_id is not None and actor.participant_id in participant_ids:
        raise Forbidden("You cannot act on your own points.", code="self_dealing")


def _existing_request(session: Session, actor: Principal, key: str | None, **expected: object) -> ApprovalRequest | None:
    """A retry with the same key returns the first request; the same key for something else is refused."""
    if key is None:
        return None
    found = session.scalar(select(ApprovalRequest).where(ApprovalRequest.idem_key == _request_key(actor, key)))
    if found is not None and any(getattr(found, k) != v for k, v in expected.items()):
        raise IdempotencyConflict("This idempotency key was already used for a different request.", details={
            "idempotency_key": [f"Key {key!r} was used for approval request {found.id} with other content."]})
    return found


def _request_key(actor: Principal, key: str | None) -> str | None:
    """A request's key as stored: the client's, scoped to the requester (within the column)."""
    return stored_key(f"{actor.id}:{key}") if key else None


def _existing_immediate(session: Session, actor: Principal, key: str | None, request: PostingRequest) -> int | None:
    """The posting a first attempt with this key made at once, so a retry returns it instead of
    counting it towards the threshold and asking for it a second time; a different payload under
    the key is refused, as the posting engine refuses it."""
    if key is None:
        return None
    found = session.execute(select(Posting.id, Posting.request_digest).where(
        Posting.idem_scope == f"{actor.kind}:{actor.id}", Posting.idem_key == stored_key(key))).first()
    if found is None:
        return None
    if found.request_digest != request.digest():
        raise IdempotencyConflict("This idempotency key was already used for a different request.", details={
            "idempotency_key": [f"Key {key!r} was used for posting {found.id} with other content."]})
    return int(found.id)


def _refuse_key_of_a_posting(session: Session, actor: Principal, key: str | None) -> None:
    """A key that already made an adjustment at once is not a new reversal's: the same key with
    other content is a 422, whichever of the two the first attempt was."""
    if key is None:
        return
    found = session.scalar(select(Posting.id).where(
        Posting.idem_scope == f"{actor.kind}:{actor.id}", Posting.idem_key == stored_key(key)))
    if found is not None:
        raise IdempotencyConflict("This idempotency key was already used for a different request.", details={
            "idempotency_key": [f"Key {key!r} was used for posting {found} with other content."]})


def _lock_balance(session: Session, account_id: int) -> None:
    """Serialises adjustments of one participant: two small ones racing see each other, and a
    retry racing its first attempt sees what the first attempt wrote."""
    session.execute(select(BalanceShard.balance).where(BalanceShard.account_id == account_id).with_for_update())


def _recent_immediate_total(session: Session, account_id: int, now: dt.datetime) -> int:
    """Sum of |points| adjusted without approval in the window (under `_lock_balance`)."""
    return int(session.scalar(
        select(func.coalesce(func.sum(func.abs(Entry.amount)), 0)).join(Posting, Posting.id == Entry.posting_id)
        .where(Entry.account_id == account_id, Posting.kind == "adjustment", Posting.source_type == IMMEDIATE_SOURCE,
               Posting.created_at >= now - SMALL_ADJUSTMENT_WINDOW)) or 0)


def request_adjustment(session: Session, actor: Principal, *, participant_id: int, amount: int, reason: str,
                       threshold: int, adjustment_shards: int, idempotency_key: str | None = None) -> AdjustmentOutcome:
    """Small adjustments post at once; larger ones wait for an approver."""
    if not actor.has_role(*REQUESTER_ROLES):
        raise Forbidden("Your role does not allow adjustments.", code="role_required")
    person = get_participant_in_scope(session, actor, participant_id, field="participant_id")
    _refuse_self_dealing(actor, {person.id})
    if amount == 0:
        raise ValidationFailed("Amount must not be zero.", details={"amount": ["Must not be zero."]})
    account = accounts.participant_account(session, person.id)
    # The lock first: a retry racing its first attempt then finds what that attempt wrote.
    _lock_balance(session, account.id)
    if existing := _existing_request(session, actor, idempotency_key, kind="adjustment", account_id=account.id,
                                     amount=amount, reason=reason):
        return AdjustmentOutcome(request=existing, posting_id=existing.result_posting_id)
    immediate = _adjustment_request(session, account.id, amount, reason, adjustment_shards, idempotency_key,
                                    source=(IMMEDIATE_SOURCE, None))
    if (posted := _existing_immediate(session, actor, idempotency_key, immediate)) is not None:
        return AdjustmentOutcome(request=None, posting_id=posted)
    now = dt.datetime.now(dt.timezone.utc)
    if abs(amount) + _recent_immediate_total(session, account.id, now) <= threshold:
        result = post(session, actor, immediate)
        audit(session, actor, "ledger.adjust", object_type="posting", object_id=result.posting_id,
              region_path=person.region_path, details={"participant_id": person.id, "amount": amount, "reason": reason})
        return AdjustmentOutcome(request=None, posting_id=result.posting_id)
    request = ApprovalRequest(kind="adjustment", account_id=account.id, amount=amount, reason=reason,
                              region_path=person.region_path, requested_by=actor.id,
                              idem_key=_request_key(actor, idempotency_key))
    session.add(request)
    session.flush()
    audit(session, actor, "ledger.adjust.request", object_type="approval_request", object_id=request.id,
          region_path=person.region_path, details={"participant_id": person.id, "amount": amount, "reason": reason})
    return AdjustmentOutcome(request=request, posting_id=None)


def _adjustment_request(session: Session, account_id: int, amount: int, reason: str, shards: int, key: str | None,
                        *, source: tuple[str, str | None]) -> PostingRequest:
    counter = accounts.system_account(session, accounts.ADJUSTMENT, shards)
    return PostingRequest(kind="adjustment", reason=reason, idempotency_key=key, source_type=source[0],
                          source_id=source[1], legs=[Leg(account_id, amount), Leg(counter.id, -amount)])


def _post_adjustment(session: Session, actor: Principal, account_id: int, amount: int, reason: str, shards: int,
                     key: str | None, *, source: tuple[str, str | None], idem_scope: str | None = None) -> PostingResult:
    return post(session, actor, _adjustment_request(session, account_id, amount, reason, shards, key, source=source),
                idem_scope=idem_scope)


def request_reversal(session: Session, actor: Principal, *, posting_id: int, reason: str,
                     idempotency_key: str | None = None) -> ApprovalRequest:
    """Ask for a reversal; postings another domain manages are refused and sent back there."""
    if not actor.has_role(*REQUESTER_ROLES):
        raise Forbidden("Your role does not allow reversals.", code="role_required")
    posting = session.get(Posting, posting_id)
    if posting is None:
        raise NotFound("Posting not found.", code="posting_not_found", details=_no_posting("posting_id"))
    region = posting_region(session, actor, posting, field="posting_id")
    _refuse_counter_posting(posting)
    if posting.source_type in MANAGED_SOURCES:
        raise Conflict("This posting is corrected where it came from.", code="managed_source",
                       details={"posting_id": [MANAGED_SOURCES[posting.source_type]]})
    _refuse_self_dealing(actor, _beneficiaries(session, posting))
    # Its participants' balance rows first, as an adjustment takes them: two requests for one
    # posting at once (or a retry in flight) take turns, so the second sees the first's request.
    for account_id in sorted(session.scalars(select(Account.id).where(
            Account.id.in_([e.account_id for e in posting.entries]), Account.participant_id.is_not(None)))):
        _lock_balance(session, account_id)
    if existing := _existing_request(session, actor, idempotency_key, kind="reversal", posting_id=posting_id,
                                     reason=reason):
        return existing
    _refuse_key_of_a_posting(session, actor, idempotency_key)
    _check_reversible(session, posting)
    pending = session.scalar(select(ApprovalRequest.id).where(
        ApprovalRequest.posting_id == posting_id, ApprovalRequest.status == "pending"))
    if pending is not None:
        raise Conflict("A reversal of this posting is already waiting for approval.", code="reversal_pending",
                       details={"posting_id": [f"See request {pending}."]})
    request = ApprovalRequest(kind="reversal", posting_id=posting_id, reason=reason, region_path=region,
                              requested_by=actor.id,
                              idem_key=_request_key(actor, idempotency_key))
    session.add(request)
    session.flush()
    audit(session, actor, "ledger.reverse.request", object_type="approval_request", object_id=request.id,
          region_path=region, details={"posting_id": posting_id, "reason": reason})
    return request


def get_request(session: Session, actor: Principal, request_id: int, *, lock: bool = False) -> ApprovalRequest:
    request = session.get(ApprovalRequest, request_id, with_for_update=lock, populate_existing=lock)
    if request is None or not actor.in_scope(request.region_path):
        raise NotFound("Approval request not found.")
    return request


@dataclass(frozen=True)
class Party:
    """An account a request moves: an adjustment's, with the points it would add (negative:
    take); a reversal's, with what the original posting moved there (the reversal undoes it).
    The participant's name only for one in the reader's scope."""
    account_id: int
    account_code: str
    account_kind: str
    participant_id: int | None
    name: str | None
    amount: int


@dataclass(frozen=True)
class Original:
    """The posting a reversal would undo, as an approver weighs it."""
    id: int
    kind: str
    reason: str
    effective_at: dt.datetime


@dataclass(frozen=True)
class ApprovalRow:
    """A request as the list shows it: the request's own fields, plus what deciding it needs."""
    request: ApprovalRequest
    requested_by_name: str | None
    accounts: list[Party]
    original: Original | None

    def __getattr__(self, name: str) -> object:
        return getattr(self.request, name)


def list_requests(session: Session, actor: Principal, *, status: str | None = "pending", limit: int = 50,
                  after_id: int | None = None) -> list[ApprovalRow]:
    """A page of requests in my scope, each with its requester's name, the accounts it moves (the
    participant by name) and, for a reversal, the original posting: one statement, whatever the
    page's size. Names come in full; the view masks them for readers who see them masked."""
    page = select(ApprovalRequest.id).where(actor.scope_filter(ApprovalRequest.region_path))
    if status:
        page = page.where(ApprovalRequest.status == status)
    if after_id:
        page = page.where(ApprovalRequest.id > after_id)
    ids = page.order_by(ApprovalRequest.id).limit(limit).subquery()
    # An adjustment names its account; a reversal's accounts are the original's entries.
    account_id = func.coalesce(ApprovalRequest.account_id, Entry.account_id)
    stmt = (select(ApprovalRequest, StaffUser.display_name, Posting.id, Posting.kind, Posting.reason,
                   Posting.effective_at, Account.id, Account.code, Account.kind, Participant.id,
                   Participant.name, Participant.region_path, func.coalesce(ApprovalRequest.amount, Entry.amount))
            .join(ids, ids.c.id == ApprovalRequest.id)
            .outerjoin(StaffUser, StaffUser.id == ApprovalRequest.requested_by)
            .outerjoin(Posting, Posting.id == ApprovalRequest.posting_id)
            .outerjoin(Entry, Entry.posting_id == ApprovalRequest.posting_id)
            .outerjoin(Account, Account.id == account_id)
            .outerjoin(Participant, Participant.id == Account.participant_id)
            .order_by(ApprovalRequest.id, Entry.id))
    rows: dict[int, ApprovalRow] = {}
    for (request, requester, original_id, kind, reason, effective_at, acc_id, code, acc_kind, person_id, name,
         person_path, amount) in session.execute(stmt):
        row = rows.get(request.id)
        if row is None:
            original = Original(original_id, kind, reason, effective_at) if original_id is not None else None
            row = rows[request.id] = ApprovalRow(request, requester, [], original)
        if acc_id is not None:
            shown = name if person_path is not None and actor.in_scope(person_path) else None
            row.accounts.append(Party(acc_id, code, acc_kind, person_id, shown, int(amount)))
    return list(rows.values())


def decide(session: Session, actor: Principal, request_id: int, *, approve: bool, note: str | None,
           adjustment_shards: int) -> ApprovalRequest:
    """The second pair of eyes. The approver is never the requester (checked here and by a CHECK),
    nor the admin who created the requester's account, nor an account the requester created, nor
    (for a township or village admin's accounts) another account of the same creator: one person
    may hold both (`one_hand`)."""
    if not actor.has_role(*APPROVER_ROLES):
        raise Forbidden("Only an approver decides corrections.", code="role_required")
    # The row lock makes two approvers acting at once decide one after the other.
    request = get_request(session, actor, request_id, lock=True)
    if request.status != "pending":
        raise Conflict("This request has already been decided.", code="already_decided",
                       details={"status": [request.status]})
    if request.requested_by == actor.id:
        raise Forbidden("You cannot approve your own request.", code="four_eyes")
    if request.requested_by in one_hand(session, actor):
        raise Forbidden("You cannot decide a request made by a staff account you created, by the one that "
                        "created yours, or by one the same township or village admin created.", code="four_eyes")
    if request.kind == "adjustment":
        owner = session.scalar(select(Account.participant_id).where(Account.id == request.account_id))
        _refuse_self_dealing(actor, {owner} if owner else set())
    else:
        original = session.get(Posting, request.posting_id)
        assert original is not None
        _refuse_self_dealing(actor, _beneficiaries(session, original))
    if approve:
        if request.kind == "adjustment":
            assert request.account_id is not None and request.amount is not None
            result = _post_adjustment(session, actor, request.account_id, request.amount, request.reason,
                                      adjustment_shards, f"request:{request.id}",
                                      source=("approval_request", str(request.id)), idem_scope="approval")
        else:
            assert request.posting_id is not None
            result = reverse(session, actor, request.posting_id, request.reason,
                             idempotency_key=f"request:{request.id}", idem_scope="approval")
        request.result_posting_id = result.posting_id
    request.status = "approved" if approve else "rejected"
    request.decided_by = actor.id
    request.decided_at = utcnow()
    request.decision_note = note
    session.flush()
    audit(session, actor, f"ledger.{request.kind}.{request.status}", object_type="approval_request",
          object_id=request.id, region_path=request.region_path,
          details={"note": note, "result_posting_id": request.result_posting_id})
    return request
