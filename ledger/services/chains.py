"""The arithmetic of a batch: each balance shard's legs, in batch order, extend its hash chain.

Why separate: every shard's chain depends only on that shard's starting state, so a batch can be
worked out from an unlocked read of the balances and then, once the rows are locked, redone only
for the shards another transaction moved in between. The locked stretch, which is what concurrent
batches queue on, then holds almost no computation.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ledger.services.chain import entry_hash

Key = tuple[int, int]  # (account id, shard)


class Start(NamedTuple):
    """A shard's state before the batch (a tuple: a thousand of them are made per batch)."""

    balance: int
    seq: int
    last_hash: str
    allow_negative: bool


class Short(NamedTuple):
    """The first leg of a chain that its balance does not cover."""

    posting_index: int
    account_id: int
    balance: int
    amount: int


# A leg of a chain: (posting index, leg index, amount). A worked leg: (seq, balance after, hash).
ChainLeg = tuple[int, int, int]
Worked = tuple[int, int, str]


def start(row: Sequence[Any]) -> Start:
    """A balance row (account_id, shard, balance, allow_negative, last_seq, last_hash) as a Start."""
    return Start(row[2], row[4], row[5], row[3])


def starts(rows: Sequence[Sequence[Any]]) -> dict[Key, Start]:
    """Balance rows (account_id, shard, balance, allow_negative, last_seq, last_hash) by shard."""
    return {(row[0], row[1]): start(row) for row in rows}


def group(legs: Sequence[Sequence[tuple[int, int, int]]]) -> dict[Key, list[ChainLeg]]:
    """Legs (account, shard, amount) per posting -> each shard's legs in batch order."""
    chains: dict[Key, list[ChainLeg]] = {}
    for p, posting_legs in enumerate(legs):
        for i, (account_id, shard, amount) in enumerate(posting_legs):
            chains.setdefault((account_id, shard), []).append((p, i, amount))
    return chains


def work(key: Key, start: Start, chain: list[ChainLeg], fingerprints: Sequence[str]) -> list[Worked] | Short:
    """Extend one shard's chain with its legs; a Short if a balance would go below zero."""
    account_id, shard = key
    balance, seq, last = start.balance, start.seq, start.last_hash
    out: list[Worked] = []
    for p, _i, amount in chain:
        after = balance + amount
        if after < 0 and not start.allow_negative:
            return Short(p, account_id, balance, amount)
        seq += 1
        digest = entry_hash(last, fingerprints[p], account_id, shard, seq, amount, after)
        out.append((seq, after, digest))
        balance, last = after, digest
    return out
