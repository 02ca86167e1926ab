"""The PostgreSQL path of the counter's redeem: one call of `redemption_redeem` (migrations 0007, 0010).

Why: the claim, the limits, the posting and the redemption row were three to five statements, each
a round trip plus Python work (the posting request, an ORM insert), on a machine whose two cores
the web workers share with PostgreSQL. The function takes the same steps with the same guards and
either finishes the redemption (`done`), or returns having written nothing for `counter.redeem`
to answer (a replay, an invalid code) or to do the whole redemption the step-by-step way
(`python`), or raises a refusal with nothing left behind (migration 0010). So it runs as a unit of
work of its own, one round trip, when the request has not begun a transaction.

The posting's fingerprint and request digest are the ledger's: built here by `chain` with
placeholders for the three things only the database knows (the posting id, the reason, which names
the scenario, and the legs, which name the accounts), which the function fills in.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from infra.auth import Principal
from infra.driver import run_alone
from infra.idempotency import stored_key
from ledger.services.chain import canonical_json, posting_fingerprint
from ledger.services.posting import MAX_REASON
from redemption.models import Redemption
from redemption.services.claim import SCENARIO_COLUMNS
from redemption.services.common import IDEM_SCOPE, periods

# Placeholders; canonical JSON writes each as "\u0000…\u0000", which no real value can contain
# (PostgreSQL text holds no NUL), and the function replaces exactly those tokens.
ID, REASON, LEGS = "\x00id\x00", "\x00reason\x00", "\x00legs\x00"

REDEEM_SQL = (
    "SELECT o.o_outcome AS outcome, o.o_prior_id AS prior_id, o.o_participant_id AS participant_id, "
    "o.o_redemption_id AS redemption_id, o.o_posting_id AS posting_id, "
    + ", ".join(f"(o.o_scenario).{c}" for c in SCENARIO_COLUMNS)
    + " FROM redemption_redeem(%(outlet_id)s, %(partner_id)s, %(key_id)s, %(actor_label)s, %(scenario_id)s, "
      "%(code_digest)s, %(idem_key)s, %(request_digest)s, %(now)s, %(today)s, %(periods)s::text[], %(idem_scope)s, "
      "%(posting_key)s, %(fp_template)s, %(digest_template)s, %(max_reason)s) o")

# A retry's answer: the redemption row as the ORM would load it (every column).
PRIOR_COLUMNS = tuple(Redemption.__table__.columns.keys())
PRIOR_SQL = f"SELECT {', '.join(PRIOR_COLUMNS)} FROM redemptions WHERE id = %(id)s"

# What a redemption posting's request digest is taken over, the same for every redemption.
DIGEST_TEMPLATE = canonical_json({"kind": "redemption", "reason": REASON, "legs": LEGS, "source": [None, None],
                                  "meta": {}, "effective_at": None, "reverses_id": None})

DONE, PYTHON = "done", "python"
REFUSED, POSTING_TAKEN = "JY010", "JY011"  # SQLSTATEs: a limit or the quota; the posting key taken


@dataclass(frozen=True)
class Outcome:
    """`outcome`: unauthorized, replay, no_scenario, code_invalid, python (nothing written: do it
    all in Python) or done. `row` carries the ids and, from `code_invalid` on, the scenario's
    columns (SCENARIO_COLUMNS) as attributes. Refusals after the claim raise (REFUSED,
    POSTING_TAKEN, the ledger's INSUFFICIENT) and leave nothing behind."""

    outcome: str
    row: Any


def posting_key(outlet: Principal, idem_key: str) -> str:
    """The redemption posting's idempotency key, as `counter._post` forms it."""
    return stored_key(f"{outlet.id}:redeem:{idem_key}")


def templates(outlet: Principal, idem_key: str, now: dt.datetime) -> tuple[str, str]:
    """The posting's fingerprint (`chain.posting_fingerprint`) and the JSON its request digest is
    taken over (`PostingRequest.digest`), with ID, REASON and LEGS in place of the unknowns."""
    fingerprint = posting_fingerprint({
        "id": ID, "kind": "redemption", "reason": REASON, "actor_kind": outlet.kind, "actor_id": outlet.id,
        "actor_label": outlet.label[:100], "source_type": None, "source_id": None, "meta": {}, "effective_at": now,
        "idem_scope": IDEM_SCOPE, "idem_key": posting_key(outlet, idem_key), "reverses_id": None})
    return fingerprint, DIGEST_TEMPLATE


def redeem(session: Session, outlet: Principal, *, scenario_id: int, code_digest: str, idem_key: str,
           request_digest: str, now: dt.datetime, today: dt.date) -> Outcome:
    """One call, run as its own unit of work when the session has begun none (`run_alone`).
    The outlet's key is checked in the call when the outlet came from memory (`check_key`)."""
    fingerprint, digest = templates(outlet, idem_key, now)
    keys = periods(today)
    (row,) = run_alone(session, REDEEM_SQL, {
        "outlet_id": outlet.id, "partner_id": outlet.partner_id, "key_id": outlet.extra.get("check_key"),
        "actor_label": outlet.label[:100], "scenario_id": scenario_id,
        "code_digest": code_digest, "idem_key": idem_key, "request_digest": request_digest, "now": now,
        # An array literal (the keys hold no quotes or commas): the driver's list adaptation costs more.
        "today": today, "periods": f"{{{keys['day']},{keys['month']},{keys['year']}}}", "idem_scope": IDEM_SCOPE,
        "posting_key": posting_key(outlet, idem_key), "fp_template": fingerprint, "digest_template": digest,
        "max_reason": MAX_REASON})
    return Outcome(row.outcome, row)


def prior(session: Session, redemption_id: int) -> dict[str, Any]:
    """The columns of the redemption a retry replays (`replay` gave its id), read as a unit of
    work of its own when the session has begun none: no BEGIN, no COMMIT and no ORM query for
    the most common retry of all, the counter's resend after a timeout."""
    (row,) = run_alone(session, PRIOR_SQL, {"id": redemption_id})
    values = row._asdict()
    values["created_at"] = values["created_at"].astimezone(dt.timezone.utc)  # as `UtcDateTime` loads it
    return values
