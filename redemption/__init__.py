"""Redemption: partner scenarios, one-time codes, holds, refunds and settlement (built on the ledger and scoring)."""
