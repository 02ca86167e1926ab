"""Scoring services, split by concept: the pure scoring engine, rule sets, contributions and
their workflow, public notice and objections, awards, grades and honours, bulk import."""
