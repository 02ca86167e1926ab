"""Every pattern an input field must match is matched whole: `$` would also accept a final
newline ("clerk1\\n" beside "clerk1"), and `\\d` any script's digits ("１３８…" beside "138…")."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError, fields, validate

from tests.schemas import load_schemas


def _patterns() -> dict[str, validate.Regexp]:
    out = {}
    for schema in load_schemas():
        for name, field in schema._declared_fields.items():
            inner = field.inner if isinstance(field, fields.List) else field
            for v in inner.validators:
                if isinstance(v, validate.Regexp):
                    out[f"{schema.__name__}.{name}"] = v
    return out


def test_every_input_pattern_ends_at_the_end_of_the_string_and_takes_ascii_digits_only():
    found = _patterns()
    assert {"StaffIn.username", "PartnerIn.code", "ParticipantIn.phone"} <= set(found), sorted(found)
    loose = [k for k, v in found.items() if not v.regex.pattern.endswith(r"\Z") or r"\d" in v.regex.pattern]
    assert loose == []


@pytest.mark.parametrize(("field", "good"), [
    ("StaffIn.username", "clerk.one"), ("PartnerIn.code", "P-01"), ("ParticipantIn.phone", "13800138000"),
    ("ScenarioIn.code", "RICE-1"), ("ContributionIn.indicator_code", "INF-1"), ("ContributionIn.conflict_item", "C1-02"),
    ("IndicatorSchema.code", "INF-12"), ("RedeemIn.code", "12345678"), ("SettlementArgs.month", "2026-03"),
])
def test_a_good_value_passes_and_the_same_with_a_newline_does_not(field, good):
    pattern = _patterns()[field]
    assert pattern(good) == good
    with pytest.raises(ValidationError):
        pattern(good + "\n")
