"""The words of letters and emails (SPEC §6, §9): one TOML file per language in `locales/`.

Adding a language is one new file (`fr.toml`) with the keys of `en.toml`; nothing in the code
names a language. The dialog offers every file (`letter_choices`), each letter and email ends
with every other file's language-assistance line (`assistance_notices`). Keys are dotted paths
into the file ("letter.steps.sibling"); values are plain text with str.format placeholders
("{portal_url}"), or lists of such lines. A key a translation lacks (or whose placeholders or
shape differ from English) is printed in English and logged once, by key name; a file that is
not valid TOML is an error that names it.
"""

from __future__ import annotations

import logging
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).parent / "locales"
BILINGUAL = "+"  # "es+en": each letter in Spanish, then in English
NOTICE_KEY = "notice.language_assistance"

Value = str | tuple[str, ...]


class LocaleError(LookupError):
    """A locale file is malformed, or English lacks a key or placeholder the code uses."""


@dataclass(frozen=True)
class Texts:
    language: str
    entries: Mapping[str, Value]
    fallback: Texts | None = field(default=None, repr=False)  # English, for missing keys

    def text(self, key: str, **values: object) -> str:
        entry, words = self._entry(key)
        if not isinstance(entry, str):
            raise LocaleError(f"locale {words.language!r}: {key!r} is a list; use lines()")
        return words._format(key, entry, values)

    def lines(self, key: str, **values: object) -> tuple[str, ...]:
        entry, words = self._entry(key)
        if isinstance(entry, str):
            raise LocaleError(f"locale {words.language!r}: {key!r} is text; use text()")
        return tuple(words._format(key, line, values) for line in entry)

    def date_in_words(self, value: date) -> str:
        """The date with its month in words in this language, whatever `format.date` says:
        "March 6, 2027", "6 de marzo de 2027" (an email is read far from the front desk)."""
        return str(format_date(value, "long", locale=_babel_locale(self.language)))

    def date(self, value: date) -> str:
        """In the file's `format.date`: a CLDR pattern ("MM/dd/yyyy") or a CLDR length
        ("long": "14 de marzo de 2018"), with Babel's month names for this language."""
        return str(
            format_date(value, self.text("format.date"), locale=_babel_locale(self.language))
        )

    def join(self, items: Iterable[str]) -> str:
        """ "Ben", "Ben and Cara", "Ben, Cara and Dan" in this language."""
        names = list(items)
        if len(names) < 2:
            return "".join(names)
        head = self.text("format.list_separator").join(names[:-1])
        return head + self.text("format.list_last_separator") + names[-1]

    def _entry(self, key: str) -> tuple[Value, Texts]:
        if key in self.entries:
            return self.entries[key], self
        if self.fallback is not None and key in self.fallback.entries:
            _log_fallback(self.language, key)
            return self.fallback.entries[key], self.fallback
        raise LocaleError(
            f"locale {self.language!r} has no text for {key!r}; "
            f"add it to bot/documents/locales/{self.language}.toml"
        )

    def _format(self, key: str, template: str, values: Mapping[str, object]) -> str:
        try:
            return template.format_map(values)
        except (KeyError, IndexError) as missing:
            raise LocaleError(
                f"locale {self.language!r}: {key!r} uses placeholder "
                f"{missing} that the code does not supply"
            ) from None


def texts(language: str = DEFAULT_LANGUAGE) -> Texts:
    """The texts for `language` ("es", "es-MX"), falling back to English when no file exists."""
    english = LOCALE_DIR / f"{DEFAULT_LANGUAGE}.toml"
    if not english.is_file():
        raise LocaleError(f"no locale file {english.name} in {LOCALE_DIR}")
    for candidate in _candidates(language):
        path = LOCALE_DIR / f"{candidate}.toml"
        if path.is_file():
            return _with_fallback(path, english)
    return _load(english)


def available_languages() -> tuple[str, ...]:
    """Every language with a usable locale file, English first. A file that is not valid
    TOML is left out (and logged once): one broken translation must not stop the letters in
    every other language, whose notices would list it."""
    found = {
        path.stem for path in LOCALE_DIR.glob("*.toml") if _is_tag(path.stem) and _usable(path)
    }
    return tuple(sorted(found, key=lambda code: (code != DEFAULT_LANGUAGE, code)))


def locale_problems() -> tuple[list[str], list[str]]:
    """What `pinbot check` says about the locale files: (errors: files that cannot be used,
    notes: keys a translation lacks, or gets wrong, that print in English)."""
    try:
        english = texts(DEFAULT_LANGUAGE)
    except LocaleError as error:
        return [str(error)], []
    errors, notes = [], []
    for path in sorted(LOCALE_DIR.glob("*.toml")):
        if not _is_tag(path.stem) or path.stem == DEFAULT_LANGUAGE:
            continue
        try:
            words = texts(path.stem)
        except LocaleError as error:
            errors.append(str(error))
            continue
        if english_only := sorted(set(english.entries) - set(words.entries)):
            notes.append(
                f"{path.name}: {len(english_only)} text(s) print in English "
                f"(missing, or placeholders unlike en.toml): {', '.join(english_only)}"
            )
    return errors, notes


def letter_languages(choice: str) -> tuple[str, ...]:
    """The languages of each child's pages: "es+en" -> ("es", "en"); "es" -> ("es",)."""
    return tuple(part for part in choice.split(BILINGUAL) if part) or (DEFAULT_LANGUAGE,)


def letter_choices() -> tuple[tuple[str, ...], ...]:
    """What the Letter language select offers, as language tuples: every shipped language,
    then each other language followed by English."""
    shipped = available_languages()
    bilingual = [(code, DEFAULT_LANGUAGE) for code in shipped if code != DEFAULT_LANGUAGE]
    return (*((code,) for code in shipped), *bilingual)


def choice_value(languages: Iterable[str]) -> str:
    return BILINGUAL.join(languages)


def default_choice(guardian_language: str | None, default_language: str) -> str:
    """The receiving guardian's language when a file has its words, else DEFAULT_LANGUAGE
    (else English)."""
    shipped = available_languages()
    for code in (guardian_language, default_language):
        if code and code in shipped:
            return code
    return DEFAULT_LANGUAGE


def assistance_notices(language: str, **values: object) -> tuple[str, ...]:
    """The language-assistance line of every shipped language other than `language`, each in
    its own language (Section 1557 style); a file without the line adds none."""
    notices = []
    for code in available_languages():
        if code == language:
            continue
        words = texts(code)
        entry = words.entries.get(NOTICE_KEY)
        if isinstance(entry, str):
            notices.append(words._format(NOTICE_KEY, entry, values))
    return tuple(notices)


def _is_tag(code: str) -> bool:
    # A stray "../x" must not reach the file system: only plain language tags are tried.
    return bool(code) and code.replace("-", "").isalnum() and code.isascii()


def _candidates(language: str) -> list[str]:
    code = (language or DEFAULT_LANGUAGE).strip().lower().replace("_", "-")
    tags = [code, code.split("-")[0]] if _is_tag(code) else []
    return [*dict.fromkeys(tags), DEFAULT_LANGUAGE]


@cache
def _usable(path: Path) -> bool:
    try:
        _load(path)
    except LocaleError as error:
        log.error("locale file unusable, not offered", extra={"file": path.name, "error": error})
        return False
    return True


@cache
def _babel_locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale(DEFAULT_LANGUAGE)


@cache
def _log_fallback(language: str, key: str) -> None:
    # Once per language and key (cached); the key name only, never the text around it.
    log.warning("locale text missing, using English", extra={"language": language, "key": key})


@cache
def _with_fallback(path: Path, english_path: Path) -> Texts:
    english = _load(english_path)
    if path == english_path:
        return english
    own = _load(path)
    usable = {
        key: value
        for key, value in own.entries.items()
        if key not in english.entries or _same_shape(value, english.entries[key])
    }
    return Texts(language=own.language, entries=usable, fallback=english)


def _same_shape(value: Value, english: Value) -> bool:
    """Text where English has text, a list where it has a list, and no placeholder the code
    does not supply for English: anything else would fail when a letter is printed."""
    return isinstance(value, str) == isinstance(english, str) and _placeholders(
        value
    ) <= _placeholders(english)


def _placeholders(value: Value) -> set[str]:
    lines = (value,) if isinstance(value, str) else value
    try:
        return {name for line in lines for _, name, _, _ in string.Formatter().parse(line) if name}
    except ValueError:  # an unbalanced brace: never formattable
        return {"{"}


@cache
def _load(path: Path) -> Texts:
    # Cached by path, so a test pointing LOCALE_DIR elsewhere gets its own entry.
    with path.open("rb") as file:
        try:
            data = tomllib.load(file)
        except tomllib.TOMLDecodeError as error:
            raise LocaleError(f"{path.name} is not valid TOML: {error}") from None
    return Texts(language=path.stem, entries=_flatten(data, path.name))


def _flatten(table: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Value]:
    entries: dict[str, Value] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            entries.update(_flatten(value, source, key + "."))
        elif isinstance(value, str):
            entries[key] = value
        elif isinstance(value, list) and all(isinstance(line, str) for line in value):
            entries[key] = tuple(value)
        else:
            raise LocaleError(f"{source}: {key!r} must be text or a list of text")
    return entries
