"""The unofficial-name check: every listed convention is flagged, real names are not, and the
labeled corpus (tests/data/name_corpus) meets recall 100% / false flags < 0.5%.

`pytest -q -s tests/core/families/test_names.py` prints the corpus figures; they are also
recorded as junit properties and quoted in any failure message.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.families.names import NameCheck, check_name
from tests.support.paths import DATA_DIR

CORPUS = DATA_DIR / "name_corpus"
MAX_FALSE_FLAG_RATE = 0.005


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
]


@pytest.mark.parametrize("first", PLACEHOLDERS)
def test_placeholder_first_names_are_flagged(first: str) -> None:
    result = check_name(first, "", "Smith", None)
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
    ],
)
def test_placeholders_outside_the_first_name(first: str, middle: str, last: str) -> None:
    assert check_name(first, middle, last, None).flagged


@pytest.mark.parametrize(
    ("first", "middle", "last"),
    [
        ("Ava", "B", "Smith"),  # a middle initial
        ("Ava", "NMN", "Smith"),  # "no middle name"
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


def test_corpus_recall_is_complete_and_false_flags_are_rare(
    record_property: Callable[[str, object], None],
) -> None:
    placeholders = _lines("placeholders.txt")
    real_names = _lines("real_names.txt")
    missed = [line for line in placeholders if not _check_line(line).flagged]
    false_flags = [name for name in real_names if check_name(name, "", "Smith", None).flagged]

    caught = len(placeholders) - len(missed)
    recall = caught / len(placeholders)
    false_flag_rate = len(false_flags) / len(real_names)
    precision = caught / (caught + len(false_flags))
    summary = (
        f"name corpus: {len(placeholders)} placeholders, {len(real_names)} real names; "
        f"recall {recall:.2%} ({len(missed)} missed), precision {precision:.2%}, "
        f"false flags {false_flag_rate:.3%} ({len(false_flags)})"
    )
    print(f"\n{summary}")
    for key, value in (
        ("placeholders", len(placeholders)),
        ("real_names", len(real_names)),
        ("recall", recall),
        ("precision", precision),
        ("false_flag_rate", false_flag_rate),
    ):
        record_property(key, value)

    assert len(placeholders) >= 300 and len(real_names) >= 3000, summary
    assert not missed, f"{summary}; missed: {missed[:20]}"
    assert false_flag_rate < MAX_FALSE_FLAG_RATE, f"{summary}; flagged: {false_flags[:20]}"


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
