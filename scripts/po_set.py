"""Fill translations in the zh catalogue from a JSON object {msgid: msgstr} on stdin, then
recompile. Used after `scripts/i18n.sh` lists new messages."""
import json
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "jieyou/translations/zh/LC_MESSAGES/messages.po"
updates = json.load(sys.stdin)
with PO.open("rb") as handle:
    catalog = read_po(handle)
for msgid, msgstr in updates.items():
    if msgid in catalog:
        catalog[msgid].string = msgstr
with PO.open("wb") as handle:
    write_po(handle, catalog, sort_output=True)
with PO.with_suffix(".mo").open("wb") as handle:
    write_mo(handle, catalog)
print("untranslated:", [m.id for m in catalog if m.id and not m.string])
