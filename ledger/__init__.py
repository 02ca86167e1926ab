"""The append-only, double-entry points ledger: accounts, postings, entries, balances, hash
chains, verification and reconciliation, and the four-eyes corrections (adjustments, reversals)."""
