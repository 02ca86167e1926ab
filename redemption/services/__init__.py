"""Redemption services, by concept: the catalogue, one-time codes, eligibility, the counter
(look-up, redeem, hold, capture, void, refund) and settlement."""
