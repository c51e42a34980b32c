"""The words of letters and emails (SPEC §6): one TOML file per language in `locales/`.

Adding a language is one new file (`es.toml`) with the same keys as `en.toml`; nothing in the
code names a language. Keys are dotted paths into the file ("letter.steps.sibling"); values
are plain text with str.format placeholders ("{portal_url}"), or lists of such lines.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).parent / "locales"

Value = str | tuple[str, ...]


class LocaleError(LookupError):
    """A locale file is missing a key or a placeholder value, or is malformed."""


@dataclass(frozen=True)
class Texts:
    language: str
    entries: Mapping[str, Value]

    def text(self, key: str, **values: object) -> str:
        entry = self._entry(key)
        if not isinstance(entry, str):
            raise LocaleError(f"locale {self.language!r}: {key!r} is a list; use lines()")
        return self._format(key, entry, values)

    def lines(self, key: str, **values: object) -> tuple[str, ...]:
        entry = self._entry(key)
        if isinstance(entry, str):
            raise LocaleError(f"locale {self.language!r}: {key!r} is text; use text()")
        return tuple(self._format(key, line, values) for line in entry)

    def date(self, value: date) -> str:
        return value.strftime(self.text("format.date"))

    def join(self, items: Iterable[str]) -> str:
        """ "Ben", "Ben and Cara", "Ben, Cara and Dan" in this language."""
        names = list(items)
        if len(names) < 2:
            return "".join(names)
        head = self.text("format.list_separator").join(names[:-1])
        return head + self.text("format.list_last_separator") + names[-1]

    def _entry(self, key: str) -> Value:
        try:
            return self.entries[key]
        except KeyError:
            raise LocaleError(
                f"locale {self.language!r} has no text for {key!r}; "
                f"add it to bot/documents/locales/{self.language}.toml"
            ) from None

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
    for candidate in _candidates(language):
        path = LOCALE_DIR / f"{candidate}.toml"
        if path.is_file():
            return _load(path)
    raise LocaleError(f"no locale file for {language!r} or {DEFAULT_LANGUAGE!r} in {LOCALE_DIR}")


def available_languages() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in LOCALE_DIR.glob("*.toml")))


def _candidates(language: str) -> list[str]:
    code = (language or DEFAULT_LANGUAGE).strip().lower().replace("_", "-")
    # A stray "../x" must not reach the file system: only plain language tags are tried.
    tags = [code, code.split("-")[0]] if code.replace("-", "").isalnum() else []
    return [*dict.fromkeys(tags), DEFAULT_LANGUAGE]


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
