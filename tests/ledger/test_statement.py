"""Statements read each shard by its (account_id, shard, seq) index (migration 0015): pages must
still be newest first by entry id, complete and without repeats across shards, on both backends."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from infra.auth import SYSTEM
from ledger.models import Entry
from ledger.services import accounts
from ledger.services.posting import Leg, PostingRequest, post, post_many
from tests import factories as f


def _pages(session, account, limit: int, **filters) -> list[list[int]]:  # noqa: ANN001
    pages, cursor = [], None
    while True:
        lines, cursor = accounts.statement(session, account, limit=limit, before_id=cursor, **filters)
        pages.append([line.entry_id for line in lines])
        if cursor is None:
            return pages


def _ids(session, account_id: int) -> list[int]:  # noqa: ANN001
    return list(session.scalars(select(Entry.id).where(Entry.account_id == account_id).order_by(Entry.id.desc())))


@pytest.mark.sqlite
def test_a_sharded_account_pages_newest_first_across_shards(any_session):
    session = any_session
    tree = f.region_tree(session)
    shop = f.partner_account(session, tree.town_a)
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    # Shards written out of step: a shard's newest entry is often older than another shard's oldest.
    for i, shard in enumerate([0, 0, 2, 1, 0, 3, 3, 3, 1, 2, 0, 0, 1]):
        post(session, SYSTEM, PostingRequest(kind="award", reason=f"r{i}", legs=[
            Leg(shop.id, i + 1, shard=shard), Leg(issuance.id, -(i + 1))]))
    post_many(session, SYSTEM, [PostingRequest(kind="award", reason=f"b{i}", legs=[
        Leg(shop.id, 1, shard=i % 3), Leg(issuance.id, -1)]) for i in range(7)])
    everything = _ids(session, shop.id)
    assert len(everything) == 20
    for limit in (1, 3, 7, 20, 50):
        pages = _pages(session, shop, limit)
        assert [i for page in pages for i in page] == everything
        assert all(len(page) == limit for page in pages[:-1])
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    assert [i for page in _pages(session, shop, 6, since=past) for i in page] == everything
    assert accounts.statement(session, shop, until=past) == ([], None)
    assert accounts.statement(session, account=f.account_of(session, f.participant(session, tree.grid_a)),
                              until=past) == ([], None)
    first, _ = accounts.statement(session, shop, limit=3)
    assert {line.reason for line in first} <= {f"b{i}" for i in range(7)} and first[0].balance_after is None


@pytest.mark.sqlite
def test_a_participant_pages_by_seq_and_a_foreign_cursor_still_pages_by_id(any_session):
    session = any_session
    tree = f.region_tree(session)
    person = f.account_of(session, f.participant(session, tree.grid_a))
    other = f.account_of(session, f.participant(session, tree.grid_a, name="李四"))
    marks = []
    for i in range(6):
        f.award(session, person.id, i + 1)
        marks.append(f.award(session, other.id, 1).posting_id)
    mine = _ids(session, person.id)
    assert [i for page in _pages(session, person, 4) for i in page] == mine
    # A cursor naming another account's entry: the entries older than it, by id.
    foreign = session.scalar(select(Entry.id).where(Entry.posting_id == marks[2], Entry.account_id == other.id))
    lines, _ = accounts.statement(session, person, limit=10, before_id=foreign)
    assert [line.entry_id for line in lines] == [i for i in mine if i < foreign]
    assert [line.amount for line in lines] == [3, 2, 1]
    # Beyond the newest entry, and before the oldest.
    assert [line.entry_id for line in accounts.statement(session, person, before_id=mine[0] + 10**6)[0]] == mine
    assert accounts.statement(session, person, before_id=mine[-1]) == ([], None)
