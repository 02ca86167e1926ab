"""Chinese first, English too: every user-facing message has a Chinese translation."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {k: None for k in ("gettext", "lazy_gettext", "DomainError", "NotFound", "Conflict", "ValidationFailed",
                              "Forbidden", "Unauthorized", "IdempotencyConflict", "InsufficientBalance",
                              "TooLarge", "Unavailable", "N_")}
PO = ROOT / "jieyou/translations/zh/LC_MESSAGES/messages.po"


def _source_messages() -> set[str]:
    found: set[str] = set()
    for package in ("infra", "identity", "ledger", "admin", "jieyou", "scoring", "redemption"):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
                ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS):
            if isinstance(message, str) and message:
                found.add(message)
    # The pages' templates too (`_()` in Jinja, as scripts/i18n.sh extracts them through babel.cfg).
    for _file, _line, message, _comments, _ctx in extract_from_dir(
            ROOT / "jieyou", method_map=[("**/templates/**.html", "jinja2")], keywords=DEFAULT_KEYWORDS):
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


def test_http_errors_are_chinese_by_default_and_english_on_request(client):
    """Werkzeug's own descriptions are English only: a body over the size limit is refused in the reader's language."""
    from jieyou.app import MAX_REQUEST_BYTES

    too_big = "x" * (MAX_REQUEST_BYTES + 1)
    chinese = client.post("/api/v1/auth/staff/login", data=too_big, content_type="application/json")
    assert chinese.status_code == 413 and chinese.json["error"]["message"] == "提交的内容超过 11 MB 的上限。"
    english = client.post("/api/v1/auth/staff/login", data=too_big, content_type="application/json",
                          headers={"Accept-Language": "en"})
    assert english.json["error"]["message"] == "The request is larger than 11 MB."


def test_bilingual_tables_have_chinese_for_every_code_the_code_can_produce():
    """Labels, refusal reasons and the words of explanations are kept as (zh, en) pairs, not in the catalogue."""
    from ledger.models import POSTING_KINDS
    from ledger.schemas import KIND_LABELS
    from redemption.services.common import periods
    from redemption.services.eligibility import REASONS
    from scoring.models import COLOURS, RESIDENT_LABEL, UNITS
    from scoring.services.engine import COLOUR_ZH, UNIT_ZH
    from scoring.services.rules import DATA

    assert all(KIND_LABELS[k][0] and KIND_LABELS[k][1] for k in POSTING_KINDS)
    produced = {"suspended", "not_started", "ended", "grade_required", "grade_not_defined", "insufficient_points",
                "quota_exhausted"} | {f"limit_{p}" for p in periods(dt.date(2026, 1, 1))}
    assert all(REASONS[code][0] and REASONS[code][1] for code in produced)
    assert all(UNIT_ZH.get(u) for u in UNITS) and all(COLOUR_ZH.get(c) for c in COLOURS)
    seeded = json.loads((DATA / "rules_v1.json").read_text())
    assert all(g["zh"] and g["en"] for g in seeded["grades"])  # grade texts
    assert RESIDENT_LABEL in _source_messages()  # translated at dump time by its msgid


def test_a_phone_in_chinese_with_a_script_subtag_reads_chinese(client):
    """iOS sends the language with its script (`zh-Hans`, `zh-Hant-TW`) and lists English second:
    the first language the reader names that we have wins, whatever its subtags."""
    for header in ("zh-Hans;q=1, en;q=0.9", "zh-Hans-CN,zh-Hans;q=0.9,en;q=0.8", "zh-Hant-TW, en;q=0.8"):
        answer = client.get("/api/v1/me/balance", headers={"Accept-Language": header})
        assert answer.json["error"]["message"] == "请先登录。", header
    for header in ("en-US;q=1, zh-Hans;q=0.5", "fr-FR, en;q=0.5", "EN_us"):
        answer = client.get("/api/v1/me/balance", headers={"Accept-Language": header})
        assert answer.json["error"]["message"] == "Sign in first.", header
    for header in ("fr", "*", "en;q=0, zh", ""):
        answer = client.get("/api/v1/me/balance", headers={"Accept-Language": header})
        assert answer.json["error"]["message"] == "请先登录。", header


def test_the_default_locale_setting_answers_a_reader_who_names_no_language_of_ours(app, client):
    """DEFAULT_LOCALE=en (`init_i18n` puts it in BABEL_DEFAULT_LOCALE) was ignored: Chinese whatever it said."""
    try:
        app.config["BABEL_DEFAULT_LOCALE"] = "en"
        assert client.get("/api/v1/me/balance").json["error"]["message"] == "Sign in first."
        assert client.get("/api/v1/me/balance", headers={"Accept-Language": "fr"}).json["error"]["message"] \
            == "Sign in first."
        assert client.get("/api/v1/me/balance", headers={"Accept-Language": "zh-CN"}).json["error"]["message"] \
            == "请先登录。"
    finally:
        app.config["BABEL_DEFAULT_LOCALE"] = "zh"
