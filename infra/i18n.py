"""Chinese first, English too: the locale comes from Accept-Language, defaulting to Chinese."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, request
from flask_babel import Babel, get_locale

LOCALES = ("zh", "en")
babel = Babel()


def is_english() -> bool:
    """For dump schemas that pick the Chinese or English field of a bilingual record."""
    return str(get_locale() or "zh").startswith("en")


def select_locale() -> str:
    """The first language the reader names (by quality) that we have, matched on its primary
    subtag: `zh-Hans-CN`, `zh-Hant-TW` and `zh` are Chinese, `en-US` English. (Werkzeug's
    `best_match` wants the whole tag first, so `zh-Hans, en;q=0.9`, what an iPhone set to Chinese
    sends, came out English.) A reader naming none of ours, or `*`, gets `DEFAULT_LOCALE`."""
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    for tag, quality in request.accept_languages:  # highest quality first; stable for ties
        if quality <= 0:
            continue
        if tag == "*":
            return default
        primary = tag.replace("_", "-").split("-", 1)[0].lower()
        if primary in LOCALES:
            return primary
    return default


def init_i18n(app: Flask, default_locale: str, translations: Path) -> None:
    app.config["BABEL_DEFAULT_LOCALE"] = default_locale
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(translations)
    babel.init_app(app, locale_selector=select_locale)
