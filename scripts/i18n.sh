#!/usr/bin/env bash
# Refresh the message catalogue after changing user-facing messages:
#   bash scripts/i18n.sh        -> extract, merge into zh/messages.po (new entries empty), compile
# Then translate the empty entries in jieyou/translations/zh/LC_MESSAGES/messages.po and run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYWORDS="-k gettext -k lazy_gettext -k DomainError -k NotFound -k Conflict -k ValidationFailed -k Forbidden
          -k Unauthorized -k IdempotencyConflict -k InsufficientBalance -k TooLarge -k Unavailable -k N_"
.venv/bin/pybabel extract -F babel.cfg $KEYWORDS --no-location --omit-header --sort-output \
    -o jieyou/translations/messages.pot infra identity ledger admin jieyou scoring redemption >/dev/null 2>&1
.venv/bin/pybabel update -i jieyou/translations/messages.pot -d jieyou/translations -l zh \
    --no-fuzzy-matching --ignore-obsolete
sed -i '/^#, fuzzy$/d' jieyou/translations/zh/LC_MESSAGES/messages.po
.venv/bin/pybabel compile -d jieyou/translations -l zh
grep -c '^msgstr ""$' jieyou/translations/zh/LC_MESSAGES/messages.po | xargs echo "untranslated (minus header):"
