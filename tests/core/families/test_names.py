"""The unofficial-name check: every listed convention is flagged, real names are not, and the
labeled corpus (tests/data/name_corpus) meets recall 100% with no false flag on the SSA list
(real_names.txt) or on common Hispanic given names (hispanic_names.txt).

`pytest -q -s tests/core/families/test_names.py` prints the corpus figures; they are also
recorded as junit properties and quoted in any failure message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest

from bot.families.names import NameCheck, check_name
from tests.support.paths import DATA_DIR

CORPUS = DATA_DIR / "name_corpus"


def _lines(name: str) -> list[str]:
    """Corpus lines as written: only the newline is removed, so leading, trailing and doubled
    spaces stay part of the test."""
    text = (CORPUS / name).read_text(encoding="utf-8")
    return [line for line in text.split("\n") if line.strip() and not line.startswith("#")]


def _fields(line: str) -> tuple[str, str, str, str | None]:
    """`first` or `first | middle | last | name_type`."""
    if "|" not in line:
        return line, "", "Smith", None
    first, middle, last, name_type = (part.strip() for part in line.split("|"))
    return first, middle, last, name_type or None


def _check_line(line: str) -> NameCheck:
    return check_name(*_fields(line))


# --- the examples from the issue, one test each ------------------------------------------

PLACEHOLDERS = [
    "Baby Boy",
    "Baby Girl",
    "Babyboy",
    "Babygirl",
    "BABYGIRL",
    "baby girl",
    "Baby",
    "BB",
    "BG",
    "BBoy",
    "B-G",
    "B.G.",
    "b g",
    "Baby Girl A",
    "Baby Boy B",
    "Baby Girl 1",
    "Baby Boy 2",
    "Baby Girl #1",
    "Baby Boy Twin A",
    "BG A",
    "BGA",
    "BB1",
    "Twin",
    "Twin A",
    "TwinB",
    "Boy",
    "Girl",
    "Male",
    "Female",
    "Infant",
    "Infant Boy",
    "Infantboy",
    "INFANT GIRL",
    "Infant Male",
    "Infant of Judy",
    "Newborn",
    "NB",
    "N.B.",
    "Unnamed",
    "Unknown",
    "Unk",
    "None",
    "X",
    "U",
    "XX",
    "Test",
    "Test Patient",
    "Patient",
    "ZZTEST",
    "Judy Girl",
    "Judy's Girl",
    "Judys Girl",
    "Judysgirl",
    "JUDYSGIRL",
    "1Judysgirl",
    "2Judysboy",
    "GirlJudy",
    "GIRLJUDY",
    "Girl1Judy",
    "Girl 1 Judy",
    "BabyJudy",
    "Baby Judy",
    "Boy A Judy",
    "BoyJudy",
    "Judysgirl B",
    "No Name",
    "Not Named",
    "Bebé Niña",
    "RN Varón",
    "  Baby   Girl ",
    "Baby-Girl",
    "Baby_Boy",
    "BABY\u200bGIRL",
    # birth order of multiples, spelled out or run together (issue 13 §3)
    "BG1",
    "BG 2",
    "BGONE",
    "BG TWO",
    "BBTWO",
    "BBTwo",
    "BB-2",
    "BB#2",
    "Bb Two",
    "Babyboy2",
    "BabyGirlOne",
    "BABYGIRLTWO",
    "Girl Two",
    "Boy1",
    "Twin B Girl",
    "TWINTWO",
    "TRIPLETTHREE",
    "1st BG",
    "BG First",
    "BGFIRST",
    "FIRSTBG",
    "SECONDBB",
    "twobg",
    "BGII",
    "BB-III",
    "NBIV",
    "BGD",
    "BBOYTWO",
    "bgirlsecond",
]

# Issue 21 §4: what a Spanish-speaking nursery writes, and US registration abbreviations.
SPANISH_AND_REGISTRY = [
    "Bebé Niña",
    "Bebe Nino",
    "Niña",
    "Niño",
    "NIÑA",
    "Nin\u0303a",  # the tilde as a combining mark
    "NiñaB",
    "RN",
    "RN Niña",
    "R.N. Varón",
    "RNHEMBRA",
    "Recién Nacido",
    "RECIEN NACIDA",
    "Hijo de María",
    "Hija de Ana",
    "Bebé de María",
    "Bebe de Maria",
    "Nina de Garcia",
    "Bebé",
    "Bebe A",
    "Gemelo A",
    "Gemela 1",
    "GemeloB",
    "Mellizo B",
    "Varón",
    "Hembra",
    "Masculino",
    "Femenino",
    "Sin Nombre",
    "S/N",
    "Desconocido",
    "Producto",
    "NN",
    "FNU",
    "F.N.U.",
    "NFN",
    "LNU",
    "NMN",
    "UNK",
    "Unknown",
    "Unidentified",
    "No First Name",
    "TBA",
    "?",
    "Maria?",
]

REAL = [
    "Boyd",
    "Boyce",
    "Boyer",
    "Girlie",
    "Babette",
    "Bebe",
    "Twinkle",
    "Infinity",
    "Unique",
    "Noneh",
    "Xavier",
    "Uma",
    "Bo",
    "Bea",
    "Nia",
    "Una",
    "Malea",
    "Malek",
    "Patience",
    "Abbi",
    "Abbott",
    "Boyan",
    "Xena",
    "Ximena",
    "Uriel",
    "Nina",
    "Nino",
    "Noa",
    "AJ",
    "JJ",
    "Mary-Kate",
    "D'Angelo",
    "Zoë",
    "José",
    "Anne Marie",
    "Лілія",
    "Ava",
    # look-alikes of shorthand + birth order, and number words that are names
    "Bebe",
    "Bono",
    "Bodhi",
    "BOYD",
    "boyd",
    "Boye",
    "Bianca",
    "Abby",
    "Seven",
    "Una",
    "Uno",
    "Trey",
    "Tenley",
    "Tennyson",
    "Oneida",
    "Sixto",
    "Tenzin",
    "Secondo",
    "Primo",
    "Ivy",
    # Spanish given names next to the Spanish placeholders
    "Nina",
    "NINA",
    "Nino",
    "Nena",
    "Gema",
    "Renata",
    "María de los Ángeles",
    "José de Jesús",
    "Juan de Dios",
    "J. Guadalupe",
    "Jesús",
    "Ángel",
    "Rosario",
    "Socorro",
    "Reyes",
    "Cruz",
    "Luz",
]


@pytest.mark.parametrize("first", PLACEHOLDERS)
def test_placeholder_first_names_are_flagged(first: str) -> None:
    result = check_name(first, "", "Smith", None)
    assert result.flagged, first
    assert result.reason


@pytest.mark.parametrize("first", SPANISH_AND_REGISTRY)
def test_spanish_and_registry_placeholders_are_flagged(first: str) -> None:
    result = check_name(first, "", "García", None)
    assert result.flagged, first
    assert result.reason


@pytest.mark.parametrize("first", REAL)
def test_real_first_names_are_not_flagged(first: str) -> None:
    assert check_name(first, "", "Smith", None) == NameCheck(False, None)


@pytest.mark.parametrize("name_type", ["NB", "nb", "TEMP", " temp ", "BAD"])
def test_temporary_name_types_are_flagged(name_type: str) -> None:
    result = check_name("Ava", "", "Smith", name_type)
    code = name_type.strip().upper()
    assert result == NameCheck(True, f"temporary name from the EHR ({code})")


@pytest.mark.parametrize("name_type", [None, "", "L", "D", "N", "A", "M"])
def test_other_name_types_pass(name_type: str | None) -> None:
    assert not check_name("Ava", "", "Smith", name_type).flagged


@pytest.mark.parametrize(
    ("first", "middle", "last"),
    [
        ("Ava", "Baby Girl", "Smith"),
        ("Ava", "Judysgirl", "Smith"),
        ("Noah", "Boy", "Smith"),
        ("Ava", "", "Smith Twin A"),
        ("Ava", "", "Smith-Twin"),
        ("Ava", "", "Smith 2"),
        ("Ava", "", "Baby"),
        ("John", "", "Doe"),
        ("Jane", "", "DOE"),
        ("Ava", "Recién Nacida", "García"),
        ("Ava", "Gemela A", "García"),
        ("Ava", "", "LNU"),
        ("Ava", "NMN", "LNU"),
        ("Ava", "", "Desconocido"),
    ],
)
def test_placeholders_outside_the_first_name(first: str, middle: str, last: str) -> None:
    assert check_name(first, middle, last, None).flagged


@pytest.mark.parametrize(
    ("first", "middle", "last"),
    [
        ("Ava", "B", "Smith"),  # a middle initial
        ("Ava", "NMN", "Smith"),  # "no middle name"
        ("Ava", "NMI", "Smith"),  # "no middle initial"
        ("Ava", "Nina", "Smith"),
        ("Ava", "Guadalupe", "Cruz"),
        ("Ava", "", "Reyes"),
        ("Ava", "", "de la Cruz"),
        ("Ava", "X", "Smith"),
        ("Ava", "Boyd", "Smith"),
        ("Ava", "", "McGirl"),
        ("Ava", "", "Twine"),
        ("Ava", "", "Boyd"),
        ("Ava", "", "Doe"),
        ("Ava", "Marie", "Smith-Jones"),
    ],
)
def test_real_middle_and_last_names_pass(first: str, middle: str, last: str) -> None:
    assert not check_name(first, middle, last, None).flagged


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("Baby Girl", "", "Smith", None), "placeholder 'Baby Girl'"),
        (("Baby Girl", "", "Smith", "NB"), "placeholder 'Baby Girl'"),  # the name says more
        (("Ava", "", "Smith", "NB"), "temporary name from the EHR (NB)"),
        (("", "", "Smith", None), "no first name"),
        (("--", "", "Smith", None), "placeholder '--'"),
        (("Ava2", "", "Smith", None), "number in the first name 'Ava2'"),
        (("J", "", "Smith", None), "single letter for a first name 'J'"),
        (("Ava", "Baby Girl", "Smith", None), "placeholder 'Baby Girl' in the middle name"),
        (("Ava", "", "Smith Twin A", None), "placeholder 'Smith Twin A' in the last name"),
        (("John", "", "Doe", None), "unidentified-patient name 'John Doe'"),
    ],
)
def test_reasons_are_readable(args: tuple[str, str, str, str | None], reason: str) -> None:
    assert check_name(*args) == NameCheck(True, reason)


# --- the labeled corpus -------------------------------------------------------------------


def _as_stored(name: str) -> list[str]:
    """A name as the family writes it, in upper case, and without its accents (a US EHR)."""
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return list(dict.fromkeys([name, name.upper(), ascii_only]))


def test_corpus_catches_every_placeholder_and_flags_no_real_name(
    record_property: Callable[[str, object], None],
) -> None:
    placeholders = _lines("placeholders.txt")
    real_names = _lines("real_names.txt")
    hispanic = [spelling for name in _lines("hispanic_names.txt") for spelling in _as_stored(name)]
    missed = [line for line in placeholders if not _check_line(line).flagged]
    false_flags = [name for name in real_names if check_name(name, "", "Smith", None).flagged]
    hispanic_flags = [name for name in hispanic if check_name(name, "", "García", None).flagged]

    caught = len(placeholders) - len(missed)
    recall = caught / len(placeholders)
    summary = (
        f"name corpus: {len(placeholders)} placeholders, recall {recall:.2%} ({len(missed)} "
        f"missed); false flags: {len(false_flags)} of {len(real_names)} SSA names, "
        f"{len(hispanic_flags)} of {len(hispanic)} Hispanic names and spellings"
    )
    print(f"\n{summary}")
    for key, value in (
        ("placeholders", len(placeholders)),
        ("real_names", len(real_names)),
        ("hispanic_names", len(hispanic)),
        ("recall", recall),
        ("false_flags", len(false_flags) + len(hispanic_flags)),
    ):
        record_property(key, value)

    assert len(placeholders) >= 300 and len(real_names) >= 3000 and len(hispanic) >= 500, summary
    assert not missed, f"{summary}; missed: {missed[:20]}"
    assert not false_flags, f"{summary}; flagged: {false_flags[:20]}"
    assert not hispanic_flags, f"{summary}; flagged: {hispanic_flags[:20]}"


def test_corpus_is_generated_from_its_script() -> None:
    """placeholders.txt is the output of make_placeholders.py (edit the script, not the file)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_placeholders", CORPUS / "make_placeholders.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert _lines("placeholders.txt") == module.placeholders()
