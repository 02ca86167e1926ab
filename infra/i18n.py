"""Chinese first, English too: the locale comes from Accept-Language, defaulting to Chinese."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, get_locale

LOCALES = ("zh", "en")
babel = Babel()


def is_english() -> bool:
    """For dump schemas that pick the Chinese or English field of a bilingual record."""
    return str(get_locale() or "zh").startswith("en")


def select_locale() -> str:
    return request.accept_languages.best_match(LOCALES) or "zh"


def init_i18n(app: Flask, default_locale: str, translations: Path) -> None:
    app.config["BABEL_DEFAULT_LOCALE"] = default_locale
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(translations)
    babel.init_app(app, locale_selector=select_locale)
