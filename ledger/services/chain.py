"""Hashing for the tamper-evident chains. Pure functions: the writer and the verifier share them,
so a disagreement can only come from altered data."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from json.encoder import encode_basestring as _encode_string  # type: ignore[attr-defined]
from typing import Any


def canonical_time(value: dt.datetime) -> str:
    """UTC, microseconds, 'Z' (as strftime("%Y-%m-%dT%H:%M:%S.%fZ") writes it, in a third of the time)."""
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _json(value: Any) -> str:
    """One scalar as canonical_json writes it (strings through the C encoder json itself uses)."""
    kind = value.__class__
    if kind is str:
        return _encode_string(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return canonical_json(value)


def posting_fingerprint(p: Mapping[str, Any], meta_json: str | None = None) -> str:
    """Everything about a posting that must never change, as one canonical string: exactly
    canonical_json of {actor, effective_at, id, idem, kind, meta, reason, reverses_id, source}
    (keys sorted), written out directly because a batch makes one per posting. `meta_json` is the
    metadata's canonical JSON when the caller already has it."""
    return (f'{{"actor":[{_json(p["actor_kind"])},{_json(p["actor_id"])},{_json(p["actor_label"])}],'
            f'"effective_at":"{canonical_time(p["effective_at"])}","id":{_json(p["id"])},'
            f'"idem":[{_json(p["idem_scope"])},{_json(p["idem_key"])}],"kind":{_json(p["kind"])},'
            f'"meta":{meta_json if meta_json is not None else canonical_json(p["meta"] or {})},'
            f'"reason":{_json(p["reason"])},"reverses_id":{_json(p["reverses_id"])},'
            f'"source":[{_json(p["source_type"])},{_json(p["source_id"])}]}}')


def posting_request_digest(kind: str, reason: str, legs: Iterable[tuple[int, int]], source_type: str | None,
                           source_id: str | None, meta_json: str, effective_at: str | None,
                           reverses_id: int | None) -> str:
    """request_digest of a posting request, {effective_at, kind, legs, meta, reason, reverses_id,
    source} written out directly (one per posting of a batch); `legs` sorted (account, amount)."""
    legs_json = ",".join(f"[{_json(a)},{_json(n)}]" for a, n in legs)
    text = (f'{{"effective_at":{_json(effective_at)},"kind":{_json(kind)},"legs":[{legs_json}],'
            f'"meta":{meta_json},"reason":{_json(reason)},"reverses_id":{_json(reverses_id)},'
            f'"source":[{_json(source_type)},{_json(source_id)}]}}')
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(prev_hash: str, posting_fp: str, account_id: int, shard: int, seq: int, amount: int,
               balance_after: int) -> str:
    material = f"{prev_hash}|{posting_fp}|{account_id}|{shard}|{seq}|{amount}|{balance_after}"
    return hashlib.sha256(material.encode()).hexdigest()


def request_digest(payload: dict[str, Any]) -> str:
    """Digest of what a caller asked for, to tell a retry from a reused idempotency key."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


_FLAT = frozenset({str, int, bool, type(None)})


class BatchCanon:
    """posting_fingerprint and posting_request_digest for the postings of one batch, which mostly
    share their actor, times, scope, kind, reason, metadata and source: those parts are written
    once per batch instead of once per posting (a sixth of a batch's client CPU went to writing
    them again). The strings are exactly the single-posting functions' (tests compare them)."""

    def __init__(self) -> None:
        self._heads: dict[tuple[Any, ...], tuple[str, str]] = {}
        self._tails: dict[tuple[Any, ...], str] = {}
        self._digest_heads: dict[tuple[Any, ...], str] = {}
        self._digest_tails: dict[tuple[Any, ...], str] = {}
        self._metas: dict[tuple[Any, ...], str] = {}

    def meta_json(self, meta: Mapping[str, Any] | None) -> str:
        """canonical_json(meta), written once per distinct metadata of the batch (a batch of awards
        has a handful). Cached only for flat metadata of strings, integers, booleans and None,
        keyed on each value's class too (True == 1 hashes alike but JSON writes them apart); floats
        (0.0 == -0.0) and nested values are written every time."""
        if not meta:
            return "{}"
        key: tuple[Any, ...] = ()
        for k, v in meta.items():
            kind = v.__class__
            if k.__class__ is not str or kind not in _FLAT:
                return canonical_json(meta)
            key += (k, kind, v)
        got = self._metas.get(key)
        if got is None:
            got = self._metas[key] = canonical_json(meta)
        return got

    def fingerprint(self, p: Mapping[str, Any], meta_json: str) -> str:
        # Value classes are part of the keys: True == 1, but JSON writes them apart.
        actor_id, reverses_id = p["actor_id"], p["reverses_id"]
        key = (p["actor_kind"], actor_id, actor_id.__class__, p["actor_label"], p["effective_at"], p["idem_scope"])
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = (
                f'{{"actor":[{_json(p["actor_kind"])},{_json(actor_id)},{_json(p["actor_label"])}],'
                f'"effective_at":"{canonical_time(p["effective_at"])}","id":', f',"idem":[{_json(p["idem_scope"])},')
        key = (p["kind"], meta_json, p["reason"], reverses_id, reverses_id.__class__, p["source_type"], p["source_id"])
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = (
                f'],"kind":{_json(p["kind"])},"meta":{meta_json},"reason":{_json(p["reason"])},'
                f'"reverses_id":{_json(reverses_id)},"source":[{_json(p["source_type"])},{_json(p["source_id"])}]}}')
        return head[0] + _json(p["id"]) + head[1] + _json(p["idem_key"]) + tail

    def request_digest(self, kind: str, reason: str, legs: Iterable[tuple[int, int]], source_type: str | None,
                       source_id: str | None, meta_json: str, effective_at: str | None,
                       reverses_id: int | None) -> str:
        key = (effective_at, kind)
        head = self._digest_heads.get(key)
        if head is None:
            head = self._digest_heads[key] = f'{{"effective_at":{_json(effective_at)},"kind":{_json(kind)},"legs":['
        key = (meta_json, reason, reverses_id, reverses_id.__class__, source_type, source_id)
        tail = self._digest_tails.get(key)
        if tail is None:
            tail = self._digest_tails[key] = (
                f'],"meta":{meta_json},"reason":{_json(reason)},"reverses_id":{_json(reverses_id)},'
                f'"source":[{_json(source_type)},{_json(source_id)}]}}')
        legs_json = ",".join([f"[{a},{n}]" if a.__class__ is int and n.__class__ is int else f"[{_json(a)},{_json(n)}]"
                              for a, n in legs])
        return hashlib.sha256((head + legs_json + tail).encode()).hexdigest()
