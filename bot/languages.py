"""Reading a guardian's language as an EHR writes it (SPEC §4, §9): "es", "spa", "SPA",
"Spanish", "Español", "espanol", "es-MX" all mean "es".

Codes and names come from Babel's CLDR data, not hand tables: ISO 639-1 codes, ISO 639-2
bibliographic and terminology codes (CLDR's language aliases: "ger" and "deu" are "de"), the
English name of every language CLDR knows, and the native name of the languages a US practice
meets most. The result is the ISO 639-1 code, or for a language that has none (Hmong,
Chuukese) the ISO 639-2/3 code, as BCP 47 writes it. Pure functions; no database, no Slack.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.core import get_global

ENGLISH = "en"
# The languages whose own name ("Español", "Tiếng Việt", "한국어") is also read: those US
# pediatric practices see most (US Census language-use tables, Section 1557 top languages).
COMMON_LANGUAGES = (
    "en", "es", "zh", "yue", "tl", "vi", "ar", "fr", "ko", "ru", "ht", "de", "pt", "hi", "ur",
    "bn", "pa", "gu", "fa", "pl", "it", "ja", "el", "hy", "km", "lo", "hmn", "so", "am", "ti",
    "sw", "ne", "my", "uk", "ro", "sq", "sr", "bs", "hr", "tr", "he", "yi", "ps", "te", "ta",
    "th", "yo", "ig", "ha", "mh", "chk", "sm", "to", "nv", "ku", "uz", "ml", "mr", "id", "ms",
)  # fmt: skip
# Values EHRs send when the language is not known (HL7 null flavours, "declined", "Other"):
# read as unknown, not as an error, so a feed message is not refused for them.
UNKNOWN_VALUES = frozenset(
    {
        "",
        "und",
        "unk",
        "unknown",
        "asku",
        "nask",
        "declined",
        "declined to specify",
        "declined to answer",
        "not specified",
        "not reported",
        "other",
        "oth",
    }
)
# Names EHR pick lists use that CLDR spells otherwise.
_SYNONYMS = {"mandarin": "zh", "castilian": "es", "farsi": "fa", "haitian": "ht"}
_PARTS = re.compile(r"\s*(?:[;,()]|\s-\s)\s*")
_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*$")


class UnknownLanguage(ValueError):
    """The value names no language pinbot can recognise."""


def read_language(value: str | None) -> str | None:
    """The language code `value` names; None when it says the language is not known.

    Raises UnknownLanguage when it is neither a code nor a name of a language."""
    text = _fold(value or "")
    if text in UNKNOWN_VALUES:
        return None
    for candidate in (text, *_PARTS.split(text)):
        if candidate and (code := _code_of(candidate)) is not None:
            return code
    raise UnknownLanguage(value)


def english_name(code: str) -> str:
    """'es' -> 'Spanish'; the code itself when CLDR has no name for it."""
    return str(_english_names().get(code) or code)


def native_name(code: str) -> str:
    """'es' -> 'Español' (capitalised as a label); the English name when CLDR has none."""
    try:
        name = Locale.parse(code).get_language_name(code)
    except (UnknownLocaleError, ValueError):
        name = None
    if not name:
        return english_name(code)
    return name[:1].upper() + name[1:]


def _code_of(text: str) -> str | None:
    if _CODE.match(text):
        base = re.split(r"[-_]", text)[0]
        aliases = _aliases()
        code = _base(aliases.get(base, base))
        if code in _english_names():
            return _shortest(code)
    named = _names().get(text)
    return _shortest(named) if named else None


def _shortest(code: str) -> str:
    """CLDR calls Tagalog "fil"; ISO 639-1 calls it "tl"."""
    return _two_letter_aliases().get(code, code)


def _base(code: str) -> str:
    return code.split("_")[0]


def _fold(text: str) -> str:
    """Lower case, accents dropped, spaces collapsed: "  ESPAÑOL " -> "espanol"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.casefold().split())


@cache
def _aliases() -> dict[str, str]:
    return {str(k): str(v) for k, v in get_global("language_aliases").items()}


@cache
def _two_letter_aliases() -> dict[str, str]:
    return {v: k for k, v in _aliases().items() if len(k) == 2 and len(v) == 3}


@cache
def _english_names() -> dict[str, str]:
    return {str(k): str(v) for k, v in Locale(ENGLISH).languages.items() if "_" not in k}


@cache
def _names() -> dict[str, str]:
    """Folded name -> base code: every English name CLDR has ("Mexican Spanish" too), then
    the native names of the common languages."""
    names = {_fold(str(name)): _base(str(code)) for code, name in Locale(ENGLISH).languages.items()}
    for code in COMMON_LANGUAGES:
        try:
            native = Locale.parse(code).get_language_name(code)
        except (UnknownLocaleError, ValueError):
            continue
        if native:
            names.setdefault(_fold(native), code)
    names.update(_SYNONYMS)
    return names
