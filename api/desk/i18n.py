"""Desk page strings: one JSON file per language in ``locales/`` (Vietnamese first, English second).

    >>> t = translator("en")
    >>> t("nav.new")
    'New dossier'
"""
from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

LOCALES_DIR = Path(__file__).with_name("locales")
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANG_COOKIE = "sohoa_lang"

Translator = Callable[..., str]


@lru_cache(maxsize=len(LANGUAGES))
def strings(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; supported: {', '.join(LANGUAGES)}")
    data = json.loads((LOCALES_DIR / f"{lang}.json").read_text("utf-8"))
    return {key: unicodedata.normalize("NFC", value) for key, value in data.items()}


def translator(lang: str) -> Translator:
    """``t(key, **values)``: the string in ``lang`` (falling back to Vietnamese, then the key)."""
    table = strings(lang)
    fallback = strings(DEFAULT_LANGUAGE)

    def t(key: str, **values: object) -> str:
        text = table.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """``?lang=`` beats the remembered cookie, which beats the browser's Accept-Language."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    if accept:
        for part in accept.split(","):
            code = part.split(";")[0].strip().lower()[:2]
            if code in LANGUAGES:
                return code
    return DEFAULT_LANGUAGE
