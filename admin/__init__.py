"""Staff-facing API over the other domains' services: accounts and statements in scope,
corrections with four eyes, ledger integrity, people and partners, and the audit log."""
