"""Public notice (公示): during the notice period the proposed award is listed to the village and
anyone there may object; an open objection blocks the award until staff resolve it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from identity.models import Participant
from identity.services import audit
from infra.auth import Principal
from infra.db import utcnow
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed
from infra.security import mask_name
from scoring.models import OBJECTION_NOTE, RESIDENT_LABEL, Contribution, Objection
from scoring.services.submissions import record_event, village_path
from scoring.services.workflow import VERIFIER_ROLES, check_four_eyes, covers_members, lock, reject_unchecked


@dataclass(frozen=True)
class NoticeView:
    id: int
    indicator_code: str
    name_zh: str
    name_en: str
    work_date: dt.date
    description: str
    proposed_points: int
    notice_until: dt.datetime
    names: list[str]
    open_objections: int


@dataclass(frozen=True)
class NoticePage:
    items: list[NoticeView]
    next: int | None  # the last item's id, to pass as `after`; None on the last page


def notices_for(session: Session, actor: Principal, *, limit: int = 50, after: int | None = None,
                objected: bool = False) -> NoticePage:
    """Proposed awards on notice in the reader's village (participants) or scope (staff), the
    notice ending soonest first, a page at a time: a busy village can have more on notice than
    one page, and each of them must be visible to be objected to. `after`: the previous page's
    `next` (its last contribution; a notice's end never moves, so the position stays valid).
    `objected`: only notices held by an open objection, which staff must resolve (among many
    notices they would otherwise page through them all)."""
    if actor.kind == "participant":
        person = session.get(Participant, actor.id)
        assert person is not None
        in_reach = Contribution.region_path.startswith(village_path(person.region_path))
    else:
        in_reach = actor.scope_filter(Contribution.region_path)
    query = select(Contribution).where(Contribution.state == "in_notice", in_reach)
    if objected:
        query = query.where(select(Objection.id).where(Objection.contribution_id == Contribution.id,
                                                       Objection.status == "open").exists())
    if after is not None:
        anchor = session.execute(select(Contribution.notice_until, Contribution.id)
                                 .where(Contribution.id == after, in_reach)).first()
        if anchor is None or anchor.notice_until is None:
            raise NotFound("Contribution not found.", details={"after": [str(after)]})
        query = query.where(or_(Contribution.notice_until > anchor.notice_until,
                                and_(Contribution.notice_until == anchor.notice_until, Contribution.id > anchor.id)))
    items = list(session.scalars(query.order_by(Contribution.notice_until, Contribution.id).limit(limit + 1)))
    more, items = len(items) > limit, items[:limit]
    ids = {m.participant_id for c in items for m in c.members}
    names = dict(session.execute(select(Participant.id, Participant.name).where(Participant.id.in_(ids))).all())
    views = [NoticeView(id=c.id, indicator_code=c.indicator_code, name_zh=c.explanation.get("name_zh", ""),
                        name_en=c.explanation.get("name_en", ""), work_date=c.work_date, description=c.description,
                        proposed_points=c.proposed_points or 0, notice_until=c.notice_until,  # type: ignore[arg-type]
                        names=[mask_name(names.get(m.participant_id, "")) for m in c.members],
                        open_objections=sum(1 for o in c.objections if o.status == "open")) for c in items]
    return NoticePage(items=views, next=views[-1].id if more else None)


def lodge(session: Session, actor: Principal, contribution_id: int, text: str, *,
          now: dt.datetime | None = None) -> Objection:
    """Only a notice the village was shown: any other id of the village is a 404 as an unknown one
    is. The contribution's row is locked before its state is checked, so lodging and the award
    job's claim (SKIP LOCKED) take turns: either the claim skips or re-claims without the row, or
    the objection waits for the award and is refused (notice_closed), never accepted and ignored."""
    now = now or utcnow()
    if actor.kind != "participant":
        raise Forbidden("Objections are lodged by residents.", code="participants_only")
    person = session.get(Participant, actor.id)
    contribution = session.get(Contribution, contribution_id)
    if person is None or contribution is None or \
            not contribution.region_path.startswith(village_path(person.region_path)):
        raise NotFound("Notice not found.")
    contribution = lock(session, contribution_id)
    assert contribution is not None  # contributions are never deleted
    if contribution.notice_until is None:
        # Never on notice (waiting for a verifier, or rejected first): no notice to the village,
        # and a resident learns nothing of it, as of an id that does not exist. One that was on
        # notice was public: that its notice ended is no secret.
        raise NotFound("Notice not found.")
    if contribution.state != "in_notice" or contribution.notice_until <= now:
        raise Conflict("The public notice for this award has ended.", code="notice_closed")
    if not text.strip():
        raise ValidationFailed("Say what is wrong.", details={"text": ["Required."]})
    if person.id in {m.participant_id for m in contribution.members}:
        raise Forbidden("You cannot object to your own work.", code="own_work")
    # One resident, one objection per award: a dismissed one lodged again would hold the award back
    # again, as often as the resident liked, until the notice ends.
    already = session.scalar(select(Objection.status).where(Objection.contribution_id == contribution.id,
                                                            Objection.lodged_by == person.id,
                                                            Objection.status.in_(("open", "dismissed"))).limit(1))
    if already == "open":
        raise Conflict("You already have an open objection to this award.", code="objection_open")
    if already == "dismissed":
        raise Conflict("Your objection to this award has been heard and dismissed.", code="objection_heard")
    objection = Objection(contribution_id=contribution.id, lodged_by=person.id, text=text.strip())
    session.add(objection)
    session.flush()
    # The members read this history: the objector is a village resident there, not an id (the
    # row keeps actor_id). Who objected, from where, is in the audit log, for auditors.
    record_event(session, contribution, replace(actor, label=RESIDENT_LABEL), "in_notice",
                 note=OBJECTION_NOTE.format(id=objection.id), from_state="in_notice")
    audit(session, actor, "objection.lodge", object_type="objection", object_id=objection.id,
          region_path=contribution.region_path, details={"contribution_id": contribution.id})
    return objection


def resolve(session: Session, actor: Principal, objection_id: int, *, uphold: bool, resolution: str) -> Objection:
    """Upholding rejects the contribution (and frees its cap room); dismissing lets the award go
    ahead once no objection is open. The contribution is locked first (as every change of its
    state does), then the objection, and both are checked after the locks: two upholds at once,
    or an uphold and a verifier's reject, release the cap room once. Against a contribution
    already rejected or revoked an objection may still be closed either way (nothing else
    changes); upholding one against an award already made is refused: an approver revokes it.
    Staff whose scope misses a member of the work (joint work across townships) get a 404."""
    if not actor.has_role(*VERIFIER_ROLES):
        raise Forbidden("Only a verifier or approver resolves objections.", code="role_required")
    contribution_id = session.scalar(select(Objection.contribution_id).where(Objection.id == objection_id))
    contribution = lock(session, contribution_id) if contribution_id is not None else None
    objection = session.scalar(select(Objection).where(Objection.id == objection_id).with_for_update()
                               .execution_options(populate_existing=True)) if contribution else None
    if objection is None or contribution is None or not covers_members(session, actor, contribution):
        raise NotFound("Objection not found.")
    if objection.status != "open":
        raise Conflict("This objection has already been resolved.", code="already_resolved")
    check_four_eyes(session, actor, contribution)
    if actor.participant_id is not None and actor.participant_id == objection.lodged_by:
        raise Forbidden("You cannot resolve an objection you lodged.", code="four_eyes")
    if uphold and contribution.state == "awarded":
        raise Conflict("The award has already been made: an approver must revoke it before this objection "
                       "can be upheld.", code="already_awarded", details={"state": [contribution.state]})
    objection.status = "upheld" if uphold else "dismissed"
    objection.resolved_by, objection.resolved_at, objection.resolution = actor.id, utcnow(), resolution
    session.flush()
    audit(session, actor, f"objection.{objection.status}", object_type="objection", object_id=objection.id,
          region_path=contribution.region_path, details={"contribution_id": contribution.id, "resolution": resolution,
                                                         "contribution_state": contribution.state})
    if uphold and contribution.state == "in_notice":
        reject_unchecked(session, actor, contribution, f"异议成立：{resolution}")
    return objection
