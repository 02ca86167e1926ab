"""The chain's canonical strings are written out by hand for speed; they must stay exactly what
canonical JSON gives, or a posting written today would not verify against the same rules later."""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import text

from ledger.services.chain import BatchCanon, canonical_json, canonical_time, posting_fingerprint, request_digest
from ledger.services.posting import Leg, PostingRequest
from ledger.services.posting_sql import DIGEST_SEP, array_literal, hex_digests, time_elements, timestamps

BEIJING = dt.timezone(dt.timedelta(hours=8))


def reference_fingerprint(p: dict) -> str:
    return canonical_json({
        "id": p["id"], "kind": p["kind"], "reason": p["reason"], "actor": [p["actor_kind"], p["actor_id"], p["actor_label"]],
        "source": [p["source_type"], p["source_id"]], "meta": p["meta"] or {},
        "effective_at": canonical_time(p["effective_at"]), "idem": [p["idem_scope"], p["idem_key"]],
        "reverses_id": p["reverses_id"]})


POSTINGS = [
    dict(id=5, kind="award", reason='调解 "邻里" 纠纷 \\ \n\t\x01 é', actor_kind="staff", actor_id=3, actor_label="王*芳",
         source_type=None, source_id="x", meta={"b": [1, 2.5, None, True], "a": {"中": "文"}},
         effective_at=dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=BEIJING), idem_scope="staff:3", idem_key='k"\\',
         reverses_id=None),
    dict(id=2**40, kind="reversal", reason="r", actor_kind="system", actor_id=0, actor_label="", source_type="contribution",
         source_id=None, meta={}, effective_at=dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc), idem_scope="s",
         idem_key="k", reverses_id=7),
]


@pytest.mark.parametrize("posting", POSTINGS)
def test_fingerprint_is_the_canonical_json_of_the_posting(posting):
    assert posting_fingerprint(posting) == reference_fingerprint(posting)
    assert posting_fingerprint(posting, canonical_json(posting["meta"])) == reference_fingerprint(posting)


def test_a_batch_writes_the_same_fingerprints():
    """Shared parts are written once per batch; a value equal to another of another class (True
    and 1, an aware time in two zones) must still come out as the single-posting function writes it."""
    variants = [dict(p, id=p["id"] + i, idem_key=f"{p['idem_key']}{i}") for i in range(3) for p in POSTINGS]
    variants += [dict(POSTINGS[1], actor_id=True, reverses_id=True), dict(POSTINGS[1], actor_id=1, reverses_id=1),
                 dict(POSTINGS[0], effective_at=POSTINGS[0]["effective_at"].astimezone(dt.timezone.utc))]
    canon = BatchCanon()
    for p in variants + variants:
        assert canon.fingerprint(p, canonical_json(p["meta"])) == posting_fingerprint(p)


@pytest.mark.parametrize("request_", [
    PostingRequest(kind="award", legs=[Leg(5, 3), Leg(2, -3)], reason=' 入户 "宣传" ', meta={"z": 1, "a": [1.5]},
                   effective_at=dt.datetime(2026, 3, 1, 8, tzinfo=BEIJING), source_type="contribution", source_id="9"),
    PostingRequest(kind="reversal", legs=[Leg(1, 3), Leg(2, -3), Leg(9, 0)], reason="更正", reverses_id=4),
])
def test_request_digest_is_the_digest_of_the_canonical_request(request_):
    expected = request_digest({
        "kind": request_.kind, "reason": request_.reason.strip(),
        "legs": sorted([leg.account_id, leg.amount] for leg in request_.legs),
        "source": [request_.source_type, request_.source_id], "meta": request_.meta or {},
        "effective_at": request_.effective_at.isoformat() if request_.effective_at else None,
        "reverses_id": request_.reverses_id})
    assert request_.digest() == expected
    canon = BatchCanon()
    assert [request_.digest(canon=canon) for _ in range(2)] == [expected, expected]


@pytest.mark.parametrize("values", [
    [], ["a"], ["a", "b c"], ['x"y', "z"], ["a\\b", "{}"], [None, "a"], [None, None], ["NULL", ""], ["中文", '{"k":[1]}'],
])
def test_text_array_literals_reach_postgresql_unchanged(session, values):
    back = session.execute(text("SELECT CAST(:a AS text[])"), {"a": array_literal(values, "text")}).scalar_one()
    assert back == values


@pytest.mark.parametrize("moment", [
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    dt.datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=BEIJING),
    dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
])
def test_canonical_time_is_utc_with_microseconds(moment):
    assert canonical_time(moment) == moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("count", [0, 1, 3])
def test_hex_digests_reach_postgresql_unchanged(session, count):
    from infra.driver import execute

    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(count)]
    back = execute(session, "SELECT %s::text[]", [hex_digests(DIGEST_SEP.join(digests))], fetch=True)[0][0]
    assert back == digests


def test_hex_digests_refuse_what_is_not_a_list_of_digests():
    with pytest.raises(ValueError):
        hex_digests(DIGEST_SEP.join(["ab" * 32, "abc"]))


def test_binary_times_reach_postgresql_unchanged(session):
    from infra.driver import execute

    moments = [dt.datetime(2026, 11, 29, 14, 30, 1, 123456, tzinfo=dt.timezone.utc),
               dt.datetime(2026, 3, 1, 8, tzinfo=BEIJING), dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=BEIJING),
               dt.datetime(1970, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))), dt.datetime(2026, 3, 1, 8, tzinfo=BEIJING)]
    for values in ([], moments):
        back = execute(session, "SELECT %s::timestamptz[]", [timestamps("".join(time_elements(values)))], fetch=True)[0][0]
        assert back == values


def test_binary_arrays_reach_a_connection_opened_before_they_were_registered(session):
    """A connection whose adapters do not know the binary array types (opened before the module
    registered them) gets them on first use by a batch."""
    from psycopg.types.string import BytesDumper

    from infra.auth import SYSTEM
    from ledger.services import accounts
    from ledger.services.posting import Leg, PostingRequest, post_many
    from ledger.services.posting_sql import HexDigests, Timestamps
    from tests import factories as f

    adapters = session.connection().connection.driver_connection.adapters
    adapters.register_dumper(HexDigests, BytesDumper)
    adapters.register_dumper(Timestamps, BytesDumper)
    tree = f.region_tree(session)
    account = f.account_of(session, f.participant(session, tree.grid_a))
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    post_many(session, SYSTEM, [PostingRequest(kind="award", reason="r", legs=[Leg(account.id, 2), Leg(issuance.id, -2)])])
    assert accounts.balance(session, account.id) == 2


def test_a_batch_writes_each_metadata_as_canonical_json_does():
    """The batch writes each distinct metadata once; values that compare equal across classes
    (True and 1, 0.0 and -0.0) and nested values must still come out as canonical_json writes them."""
    metas = [{}, None, {"indicator": "PRO-1", "rule_version": 1}, {"rule_version": 1, "indicator": "PRO-1"},
             {"x": True}, {"x": 1}, {"x": 1.0}, {"x": 0.0}, {"x": -0.0}, {"x": None}, {"x": "中文\"q"},
             {"x": [1, 2]}, {"x": {"b": 1, "a": True}}, {"x": {"b": 1, "a": 1}}, {1: "int key"}]
    canon = BatchCanon()
    for meta in metas + metas:
        assert canon.meta_json(meta) == canonical_json(meta or {})
