"""Hashing for the tamper-evident chains. Pure functions: the writer and the verifier share them,
so a disagreement can only come from altered data."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any


def canonical_time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def posting_fingerprint(p: dict[str, Any]) -> str:
    """Everything about a posting that must never change, as one canonical string."""
    return canonical_json({
        "id": p["id"], "kind": p["kind"], "reason": p["reason"],
        "actor": [p["actor_kind"], p["actor_id"], p["actor_label"]],
        "source": [p["source_type"], p["source_id"]], "meta": p["meta"] or {},
        "effective_at": canonical_time(p["effective_at"]),
        "idem": [p["idem_scope"], p["idem_key"]], "reverses_id": p["reverses_id"],
    })


def entry_hash(prev_hash: str, posting_fp: str, account_id: int, shard: int, seq: int, amount: int,
               balance_after: int) -> str:
    material = f"{prev_hash}|{posting_fp}|{account_id}|{shard}|{seq}|{amount}|{balance_after}"
    return hashlib.sha256(material.encode()).hexdigest()


def request_digest(payload: dict[str, Any]) -> str:
    """Digest of what a caller asked for, to tell a retry from a reused idempotency key."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()
