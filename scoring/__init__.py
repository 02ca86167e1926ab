"""Scoring: contributions, verification, versioned rules, grades and honours (built on the ledger)."""
