"""Who takes part: regions (county > township > village > grid), staff, participants, partners
with outlets and API keys, sign-in tokens, and the append-only audit log of staff actions."""
