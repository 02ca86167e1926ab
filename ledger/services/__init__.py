"""Ledger services, split by concept: the posting engine, accounts and statements, corrections
with four eyes, and integrity checks."""
