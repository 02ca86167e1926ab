"""Per-field error messages in the reader's language.

marshmallow, webargs, our validators and our services write field messages in English, already
formatted ("Longer than maximum length 100."), and a form on a phone shows them beside the field.
The error handlers pass every `details` message through `localize`: a message written by one of
the templates below comes back in the reader's language with its values kept; anything else (an
account id list, a number) is left as it is. Library templates are copied from marshmallow and
webargs, so a release that rewords one only loses its translation (a test lists any message our
schemas can give that has none, and any fixed detail message in our code without a template).
"""
from __future__ import annotations

import re
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
    ("Must not contain invisible or text-direction characters.",
     N_("Must not contain invisible or text-direction characters.")),
    ("Nested too deeply.", N_("Nested too deeply.")),
    ("Write at least {min} characters, not only blanks.",
     N_("Write at least %(min)s characters, not only blanks.")),
    ("Must not be in the future.", N_("Must not be in the future.")),
    ("Must not be zero.", N_("Must not be zero.")),
    ("Eight digits.", N_("Eight digits.")),
    ("A month as YYYY-MM.", N_("A month as YYYY-MM.")),
    ("3-50 lowercase letters, digits, _ . -", N_("3-50 lowercase letters, digits, _ . -")),
    ("Out of the supported date range.", N_("Out of the supported date range.")),
    ("Must be a whole number.", N_("Must be a whole number.")),
    # the services' own details (a 404 or 409 names its field too)
    ('A privilege deducts nothing.', N_('A privilege deducts nothing.')),
    ('A privilege requires a grade.', N_('A privilege requires a grade.')),
    ('A spend scenario costs points.', N_('A spend scenario costs points.')),
    ('A township or village admin creates clerks and auditors only.', N_('A township or village admin creates clerks and auditors only.')),
    ('Already registered.', N_('Already registered.')),
    ('Already taken.', N_('Already taken.')),
    ('At least 1, or empty for no limit.', N_('At least 1, or empty for no limit.')),
    ('Choose a grid.', N_('Choose a grid.')),
    ('Ends before it starts.', N_('Ends before it starts.')),
    ('Give a new name, phone or region_id.', N_('Give a new name, phone or region_id.')),
    ('Keys must be unique within a batch.', N_('Keys must be unique within a batch.')),
    ('No such participant in your scope.', N_('No such participant in your scope.')),
    ('No such partner in your scope.', N_('No such partner in your scope.')),
    ('No such posting in your scope.', N_('No such posting in your scope.')),
    ('No such region in your scope.', N_('No such region in your scope.')),
    ('Not a grid.', N_('Not a grid.')),
    ('Not a township.', N_('Not a township.')),
    ("Not this partner's outlets.", N_("Not this partner's outlets.")),
    ('Numbers in metadata must be finite and written without an exponent.', N_('Numbers in metadata must be finite and written without an exponent.')),
    ('One incident earns one award per indicator.', N_('One incident earns one award per indicator.')),
    ('Only .csv or .xlsx.', N_('Only .csv or .xlsx.')),
    ('Repeated ids.', N_('Repeated ids.')),
    ('Required.', N_('Required.')),
    ('Send a file with content.', N_('Send a file with content.')),
    ('Send it as multipart field `file`.', N_('Send it as multipart field `file`.')),
    ('Taken off the programme (deactivated).', N_('Taken off the programme (deactivated).')),
    ('The same as the current one.', N_('The same as the current one.')),
    ('This posting is a reversal.', N_('This posting is a reversal.')),
    ('Today or later.', N_('Today or later.')),
    ('Unknown, expired or already used.', N_('Unknown, expired or already used.')),
    ('Unsupported type.', N_('Unsupported type.')),
    ('Use YYYY-MM-DD.', N_('Use YYYY-MM-DD.')),
    ('Wrong password.', N_('Wrong password.')),
    ("Use at least three different characters, and not the username or phone number.",
     N_("Use at least three different characters, and not the username or phone number.")),
    ("Your scope is narrower than this participant's township.",
     N_("Your scope is narrower than this participant's township.")),
    # (specific before general: a pattern tried first must not swallow a longer message)
    ("At most {n} rows per file.", N_("At most %(n)s rows per file.")),
    ("One of this rule set's grades: {codes}.", N_("One of this rule set's grades: %(codes)s.")),
    # contributions (scoring.services.submissions, workflow)
    ("The work date cannot be in the future.", N_("The work date cannot be in the future.")),
    ("Describe the work.", N_("Describe the work.")),
    ("Name at least one participant.", N_("Name at least one participant.")),
    ("A participant is named twice.", N_("A participant is named twice.")),
    ("Shares are whole numbers of 1 or more.", N_("Shares are whole numbers of 1 or more.")),
    ("A named participant was not found here.", N_("A named participant was not found here.")),
    ("Not an item of the screening list.", N_("Not an item of the screening list.")),
    ("Choose an item of the screening list (8 categories, 26 items).",
     N_("Choose an item of the screening list (8 categories, 26 items).")),
    ("Choose red, orange, yellow or blue.", N_("Choose red, orange, yellow or blue.")),
    ("A mediation needs its case record following the eight steps; missing: {steps}",
     N_("A mediation needs its case record following the eight steps; missing: %(steps)s")),
    ("{code} counts one {unit} per contribution.", N_("%(code)s counts one %(unit)s per contribution.")),
    ("{code} is not in rule set version {version}.", N_("%(code)s is not in rule set version %(version)s.")),
    ("Revoke the contribution (POST /api/v1/admin/contributions/{id}/revoke) instead.",
     N_("Revoke the contribution (POST /api/v1/admin/contributions/{id}/revoke) instead.")),
    # contribution imports (scoring.services.imports: upload details and row reasons)
    ("Not an XLSX workbook.", N_("Not an XLSX workbook.")),
    ("The workbook unpacks to more than {n} bytes.", N_("The workbook unpacks to more than %(n)s bytes.")),
    ("Not a text CSV: save it as CSV (UTF-8 or the Chinese default, GBK).",
     N_("Not a text CSV: save it as CSV (UTF-8 or the Chinese default, GBK).")),
    ("Same content as import {id} ({filename}, {when}, {status}).",
     N_("Same content as import %(id)s (%(filename)s, %(when)s, %(status)s).")),
    ("A phone number here is not a participant in your area.",
     N_("A phone number here is not a participant in your area.")),
    ("Shares are whole numbers, as 13900000001:2.", N_("Shares are whole numbers, as 13900000001:2.")),
    ("A whole number from 1 to 1000.", N_("A whole number from 1 to 1000.")),
    ("Cannot read the file: {error}", N_("Cannot read the file: %(error)s")),
    ("Invalid value ({error}).", N_("Invalid value (%(error)s).")),
    ("The import stopped on an unexpected error ({error}); nothing was imported.",
     N_("The import stopped on an unexpected error (%(error)s); nothing was imported.")),
    # rule sets (scoring.services.rules)
    ("Duplicate indicator code.", N_("Duplicate indicator code.")),
    ("Names in Chinese and English are required.", N_("Names in Chinese and English are required.")),
    ("A whole number, zero or more.", N_("A whole number, zero or more.")),
    ("A whole number, zero or more, or empty for no cap.", N_("A whole number, zero or more, or empty for no cap.")),
    ("The yearly cap cannot be below the monthly cap.", N_("The yearly cap cannot be below the monthly cap.")),
    ("Only 'warning_colour' or none.", N_("Only 'warning_colour' or none.")),
    ("Give a factor for each of blue, yellow, orange, red.", N_("Give a factor for each of blue, yellow, orange, red.")),
    ("Factors are whole numbers from 1 to {max}.", N_("Factors are whole numbers from 1 to %(max)s.")),
    ("A colour multiplier needs the warning colour to be required.",
     N_("A colour multiplier needs the warning colour to be required.")),
    ("Unknown requirement {name}; one of {choices}.", N_("Unknown requirement %(name)s; one of %(choices)s.")),
    ("A rule set needs indicators.", N_("A rule set needs indicators.")),
    ("No indicator for class {classes}.", N_("No indicator for class %(classes)s.")),
    ("Duplicate grade code.", N_("Duplicate grade code.")),
    ("Each grade has a code and whole min_points.", N_("Each grade has a code and whole min_points.")),
    ("Grades are listed from highest to lowest threshold.", N_("Grades are listed from highest to lowest threshold.")),
    ("A mapping with settings for {names}.", N_("A mapping with settings for %(names)s.")),
    ("Unknown honour; one of {choices}.", N_("Unknown honour; one of %(choices)s.")),
    ("Give this honour's thresholds: min_points, and min_grade if any.",
     N_("Give this honour's thresholds: min_points, and min_grade if any.")),
    ("A mapping with min_points and min_grade.", N_("A mapping with min_points and min_grade.")),
    # postings (ledger.services.posting, corrections)
    ("kind must be one of {choices}", N_("kind must be one of %(choices)s")),
    ("A reason in words is required.", N_("A reason in words is required.")),
    ("A posting needs at least two entries.", N_("A posting needs at least two entries.")),
    ("Amounts are whole, non-zero points.", N_("Amounts are whole, non-zero points.")),
    ("An account appears twice in one posting.", N_("An account appears twice in one posting.")),
    ("Entries of a posting must sum to zero.", N_("Entries of a posting must sum to zero.")),
    ("Give a time zone.", N_("Give a time zone.")),
    ("Effective time cannot be in the future.", N_("Effective time cannot be in the future.")),
    ("A reversal, and only a reversal, names the posting it reverses.",
     N_("A reversal, and only a reversal, names the posting it reverses.")),
    ("Corrected at the counter: the outlet refunds the redemption (POST /api/v1/outlet/redemptions/{id}/refunds) "
     "or voids the hold (POST /api/v1/outlet/holds/{id}/void).",
     N_("Corrected at the counter: the outlet refunds the redemption (POST /api/v1/outlet/redemptions/{id}/refunds) "
        "or voids the hold (POST /api/v1/outlet/holds/{id}/void).")),
    # redemption (catalogue, counter)
    ("Not a grade of the rules in force on the scenario's dates; one of {choices}.",
     N_("Not a grade of the rules in force on the scenario's dates; one of %(choices)s.")),
    ("No published rules define grades on the scenario's dates.",
     N_("No published rules define grades on the scenario's dates.")),
    ("1 to {n}.", N_("1 to %(n)s.")),
    ('At least {n} characters.', N_('At least %(n)s characters.')),
    ('At least {n}.', N_('At least %(n)s.')),
    ('At most {n} files.', N_('At most %(n)s files.')),
    ('At most {n}.', N_('At most %(n)s.')),
    ('Balance {balance} is less than {amount}.', N_('Balance %(balance)s is less than %(amount)s.')),
    ('Began on {day}; a start already passed stays.', N_('Began on %(day)s; a start already passed stays.')),
    ('Key {key} was used for posting {id} with other content.', N_('Key %(key)s was used for posting %(id)s with other content.')),
    ('Key {key} was used for approval request {id} with other content.', N_('Key %(key)s was used for approval request %(id)s with other content.')),
    ('Key {key} was used for API key {id} with other content.', N_('Key %(key)s was used for API key %(id)s with other content.')),
    ('Incident {ref} is held by contribution {id}.', N_('Incident %(ref)s is held by contribution %(id)s.')),
    ('Incident {ref} is held by another contribution, outside your area.',
     N_('Incident %(ref)s is held by another contribution, outside your area.')),
    ('Incident {ref} is named twice in this batch.', N_('Incident %(ref)s is named twice in this batch.')),
    ('Key {key} was used for contribution {id} with other content.', N_('Key %(key)s was used for contribution %(id)s with other content.')),
    ('Work is reported within {n} days: {day} or later.', N_('Work is reported within %(n)s days: %(day)s or later.')),
    ('{day} at the latest.', N_('%(day)s at the latest.')),
    ('Later than {day}.', N_('Later than %(day)s.')),
    ('Missing columns: {columns}', N_('Missing columns: %(columns)s')),
    ('No published rule set covers any day of {year}.', N_('No published rule set covers any day of %(year)s.')),
    ('No published rule set covers {day}.', N_('No published rule set covers %(day)s.')),
    ('One of {choices}.', N_('One of %(choices)s.')),
    ('Posting {id} is already reversed.', N_('Posting %(id)s is already reversed.')),
    ('Reversed by posting {id}.', N_('Reversed by posting %(id)s.')),
    ('See request {id}.', N_('See request %(id)s.')),
    ('Today ({day}) at the earliest; suspend the scenario to stop it now.', N_('Today (%(day)s) at the earliest; suspend the scenario to stop it now.')),
    ('Today ({day}) at the earliest.', N_('Today (%(day)s) at the earliest.')),
    ('Used for {table} {id}.', N_('Used for %(table)s %(id)s.')),
    ("A mainland mobile number: 11 digits starting with 1.",
     N_("A mainland mobile number: 11 digits starting with 1.")),
)

# A template whose msgid has no %(name)s is matched as it is: its braces, if any, are text (an API
# path's "{id}"), not values.
_EXACT: dict[str, str] = {template: msgid for template, msgid in TEMPLATES if "{" not in template or "%(" not in msgid}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)  # literal, name, literal, name, ..., literal
    return re.compile("".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
                              for i, part in enumerate(parts)) + r"\Z", re.DOTALL)


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (_pattern(template), msgid) for template, msgid in TEMPLATES if "{" in template and "%(" in msgid)


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


def localize(details: Any) -> Any:
    """`details` (fields to lists of messages, nested for nested fields) with every message that a
    known template wrote in the reader's language; everything else untouched."""
    if isinstance(details, str):
        return localize_message(details)
    if isinstance(details, dict):
        return {key: localize(value) for key, value in details.items()}
    if isinstance(details, (list, tuple)):
        return [localize(value) for value in details]
    return details
