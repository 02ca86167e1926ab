"""Clients' idempotency keys as the tables that remember them keep them. Shared by the ledger
(postings, approval requests), identity (API keys) and scoring (contributions)."""
from __future__ import annotations

import hashlib

from infra.auth import Principal

KEY_LENGTH = 100  # every idem_key column: postings, approval_requests, api_keys, contributions


def stored_key(key: str) -> str:
    """An idempotency key as a table of keys keeps it: as given when it fits the column, else a
    digest of it. Why: callers prefix the client's key (up to 100 characters) with their own
    (`<outlet>:redeem:`, `<staff id>:`), and the longer key was the database's `value too long`
    (a 500); the digest is the same on every retry, so the retry still finds the first result."""
    if len(key) <= KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def sender_key(actor: Principal, key: str) -> str:
    """The client's key scoped to whoever sent it (two people may pick the same one), as stored."""
    return stored_key(f"{actor.kind}:{actor.id}:{key}")
