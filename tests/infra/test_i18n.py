"""Chinese first, English too: every user-facing message has a Chinese translation."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {k: None for k in ("gettext", "lazy_gettext", "DomainError", "NotFound", "Conflict", "ValidationFailed",
                              "Forbidden", "Unauthorized", "IdempotencyConflict", "InsufficientBalance")}
PO = ROOT / "jieyou/translations/zh/LC_MESSAGES/messages.po"


def _source_messages() -> set[str]:
    found: set[str] = set()
    for package in ("infra", "identity", "ledger", "admin", "jieyou", "scoring", "redemption"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
                ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS):
            if isinstance(message, str) and message:
                found.add(message)
    return found


def test_every_message_in_the_code_has_a_chinese_translation():
    with PO.open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id for m in catalog if m.id and m.string}
    assert _source_messages() - translated == set()


def test_compiled_catalogue_matches_the_po_file():
    with PO.open("rb") as po, PO.with_suffix(".mo").open("rb") as mo:
        source, compiled = read_po(po), read_mo(mo)
    assert {m.id: m.string for m in source if m.id} == {m.id: m.string for m in compiled if m.id}


def test_errors_are_chinese_by_default_and_english_on_request(client):
    chinese = client.get("/api/v1/me/balance")
    assert chinese.json["error"]["message"] == "请先登录。"
    english = client.get("/api/v1/me/balance", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert english.json["error"]["message"] == "Sign in first."
