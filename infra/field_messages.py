"""Per-field error messages in the reader's language.

marshmallow, webargs and our own validators write field messages in English, already formatted
("Longer than maximum length 100."), and a form on a phone shows them beside the field. The error
handlers pass every `details` message through `localize`: a message written by one of the
templates below comes back in the reader's language with its values kept; any other message
(an account id list, a service's own English detail) is left as it is. The templates are
marshmallow's and webargs' own, so a library upgrade that rewords one only loses its translation.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask_babel import gettext


def N_(text: str) -> str:
    """Marks a msgid for extraction (scripts/i18n.sh); translated when a message is localized."""
    return text

# (the library's template, with {name} for a value; the msgid, with %(name)s)
TEMPLATES: tuple[tuple[str, str], ...] = (
    # marshmallow fields and schemas
    ("Missing data for required field.", N_("Missing data for required field.")),
    ("Field may not be null.", N_("Field may not be null.")),
    ("Unknown field.", N_("Unknown field.")),
    ("Invalid input type.", N_("Invalid input type.")),
    ("Invalid type.", N_("Invalid type.")),
    ("Invalid value.", N_("Invalid value.")),
    ("Invalid input.", N_("Invalid input.")),
    ("Not a valid string.", N_("Not a valid string.")),
    ("Not a valid utf-8 string.", N_("Not a valid UTF-8 string.")),
    ("Not a valid integer.", N_("Not a valid integer.")),
    ("Not a valid number.", N_("Not a valid number.")),
    ("Number too large.", N_("Number too large.")),
    ("Special numeric values (nan or infinity) are not permitted.",
     N_("Special numeric values (nan or infinity) are not permitted.")),
    ("Not a valid boolean.", N_("Not a valid boolean.")),
    ("Not a valid list.", N_("Not a valid list.")),
    ("Not a valid mapping type.", N_("Not a valid mapping type.")),
    ("Not a valid date.", N_("Not a valid date.")),
    ("Not a valid datetime.", N_("Not a valid date and time.")),
    ("Not a valid naive datetime.", N_("Give a date and time without a time zone.")),
    ("Not a valid aware datetime.", N_("Give a date and time with a time zone.")),
    ("Not a valid UUID.", N_("Not a valid UUID.")),
    ("Not a valid email address.", N_("Not a valid email address.")),
    ("Not a valid URL.", N_("Not a valid URL.")),
    ('"{input}" cannot be formatted as a date.', N_('"%(input)s" cannot be formatted as a date.')),
    ('"{input}" cannot be formatted as a datetime.', N_('"%(input)s" cannot be formatted as a date and time.')),
    ("Must be one of: {choices}.", N_("Must be one of: %(choices)s.")),
    ("Shorter than minimum length {min}.", N_("Shorter than minimum length %(min)s.")),
    ("Longer than maximum length {max}.", N_("Longer than maximum length %(max)s.")),
    ("Length must be between {min} and {max}.", N_("Length must be between %(min)s and %(max)s.")),
    ("Length must be {equal}.", N_("Length must be %(equal)s.")),
    ("Must be greater than or equal to {min} and less than or equal to {max}.",
     N_("Must be between %(min)s and %(max)s.")),
    ("Must be greater than or equal to {min}.", N_("Must be at least %(min)s.")),
    ("Must be greater than {min}.", N_("Must be greater than %(min)s.")),
    ("Must be less than or equal to {max}.", N_("Must be at most %(max)s.")),
    ("Must be less than {max}.", N_("Must be less than %(max)s.")),
    ("String does not match expected pattern.", N_("Not in the expected format.")),
    # webargs
    ("Invalid JSON body.", N_("Invalid JSON body.")),
    # ours (infra.api, infra.security, the schemas' validators)
    ("Must not contain control characters.", N_("Must not contain control characters.")),
    ("Nested too deeply.", N_("Nested too deeply.")),
    ("Write at least {min} characters, not only blanks.",
     N_("Write at least %(min)s characters, not only blanks.")),
    ("Must not be in the future.", N_("Must not be in the future.")),
    ("Must not be zero.", N_("Must not be zero.")),
    ("Eight digits.", N_("Eight digits.")),
    ("A month as YYYY-MM.", N_("A month as YYYY-MM.")),
    ("3-50 lowercase letters, digits, _ . -", N_("3-50 lowercase letters, digits, _ . -")),
    ("Out of the supported date range.", N_("Out of the supported date range.")),
    ("A mainland mobile number: 11 digits starting with 1.",
     N_("A mainland mobile number: 11 digits starting with 1.")),
)

_EXACT: dict[str, str] = {template: msgid for template, msgid in TEMPLATES if "{" not in template}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)  # literal, name, literal, name, ..., literal
    return re.compile("".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
                              for i, part in enumerate(parts)) + r"\Z", re.DOTALL)


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (_pattern(template), msgid) for template, msgid in TEMPLATES if "{" in template)


def localize_message(message: str) -> str:
    """One field message in the reader's language, or as it was when no template wrote it."""
    exact = _EXACT.get(message)
    if exact is not None:
        return gettext(exact)
    for pattern, msgid in _PATTERNS:
        found = pattern.match(message)
        if found:
            return gettext(msgid, **found.groupdict())
    return message


def localize(details: Any, _message: Callable[[str], str] = localize_message) -> Any:
    """`details` (fields to lists of messages, nested for nested fields) with every message that a
    known template wrote in the reader's language; everything else untouched."""
    if isinstance(details, str):
        return _message(details)
    if isinstance(details, dict):
        return {key: localize(value) for key, value in details.items()}
    if isinstance(details, (list, tuple)):
        return [localize(value) for value in details]
    return details
