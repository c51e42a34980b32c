"""Is this the child's real name, or a placeholder the hospital or the EHR gave a newborn?

A PIN is tied to the child's name, so a PIN issued under "Baby Girl" is a wrong PIN. The check
flags, in any case, spacing and punctuation:

- placeholder words: Baby, Boy, Girl, Male, Female, Infant, Newborn, NB, BB, BG, Unnamed,
  Unknown, Unk, None, X, U, Test, Patient, Twin… alone or run together ("Babygirl", "BBoy",
  "B-G", "InfantMale"), with twin markers (A/B/C, 1/2, #1, "Twin");
- the birth order of multiples written out next to a shorthand, spaced or run together:
  digits, number words, ordinals, letters and roman numerals ("BG2", "BB#2", "BGTWO",
  "BBTwo", "BG First", "1st BG", "FIRSTBG", "BGII", "BGD", "TwinTwo");
- the Joint Commission / AHIMA / CHA newborn conventions that embed the mother's name:
  "Judy Girl", "Judy's Girl", "Judysgirl", "1Judysgirl", "GirlJudy", "Girl1Judy", "BabyJudy",
  "Boy A Judy", "Infant of Judy";
- any digit in the first name, a single-letter first name, an empty one;
- an HL7 table 0200 name type of NB (newborn), TEMP (temporary) or BAD (known to be wrong);
- placeholder words in the middle name ("Ava Baby Girl") and in the last name ("Smith Twin A");
  "John/Jane/Baby Doe";
- what a Spanish-speaking nursery writes: "Bebé Niña", "RN Varón" (recién nacido), "Recién
  Nacida", "Hijo de María", "Bebé de María", "Gemelo A", "Masculino", "Sin Nombre", "S/N",
  "Desconocido", "Producto"; "Niña" and "Niño" with their tilde (without it, Nina and Nino are
  given names), "Bebé" with its accent (Bebe alone is a given name);
- US registration abbreviations for a name not known: FNU (first name unknown), NFN (no first
  name), LNU / NLN in the last name, UNK, TBD/TBA, "Unidentified", and a "?" (an uncertain
  name). NMN and NMI ("no middle name / initial") in the middle name say nothing about the
  first name and pass.

Real names that merely contain those letters (Boyd, Boyce, Girlie, Babette, Bebe, Twinkle,
Infinity, Unique, Noneh, Xavier, Uma, Malea, Nina, Gema, Renata, María de los Ángeles…) pass:
placeholder words count only as whole words, or as a prefix/suffix of a run-together word whose
rest is itself a marker or a plausible mother's name. When in doubt the check flags: a false
flag costs a supervisor one click ("approve as-is"), a missed placeholder costs a wrong PIN. So
"Niño" alone is flagged, though it is also a Filipino given name (after the Santo Niño): the
supervisor approves that child's name as it is.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass

from bot.text import clean

# Words that, standing alone in the first name, mean "not named yet".
FIRST_MARKERS = frozenset(
    {
        "baby",
        "babyboy",
        "babygirl",
        "bb",
        "bg",
        "bboy",
        "bgirl",
        "bm",
        "bf",
        "boy",
        "girl",
        "male",
        "female",
        "infant",
        "inf",
        "newborn",
        "neonate",
        "nb",
        "nn",
        "rn",
        "unnamed",
        "unknown",
        "unk",
        "none",
        "noname",
        "notnamed",
        "nameless",
        "name",
        "tbd",
        "test",
        "testpatient",
        "patient",
        "twin",
        "triplet",
        "x",
        "u",
        "varon",
        "hembra",
        # Spanish-language nurseries ("Recién Nacido", "Hijo de…", "Gemela 1", "Sin Nombre")
        "recien",
        "nacido",
        "nacida",
        "reciennacido",
        "reciennacida",
        "neonato",
        "neonata",
        "hijo",
        "hija",
        "masculino",
        "femenino",
        "producto",
        "sinnombre",
        "sn",
        "desconocido",
        "desconocida",
        *("gemelo", "gemela", "gemelos", "mellizo", "melliza", "trillizo", "trilliza"),
        # US registration abbreviations: first / last name unknown, no first / last name
        *("fnu", "lnu", "nfn", "nln", "fnulnu", "nofirstname", "tba", "unidentified"),
        "nmn",  # "no middle name" typed into the first name is no name either
    }
)
SPANISH_TWINS = frozenset(
    {"gemelo", "gemela", "gemelos", "mellizo", "melliza", "trillizo", "trilliza"}
)
# In the middle or last name only unmistakable words count ("Ava B Smith", "NMN" are fine).
MIDDLE_MARKERS = frozenset(
    {
        "baby",
        "babyboy",
        "babygirl",
        "bboy",
        "bgirl",
        "boy",
        "girl",
        "infant",
        "newborn",
        "neonate",
        "twin",
        "triplet",
        "test",
        "testpatient",
        "unnamed",
        "male",
        "female",
        *("recien", "nacido", "nacida", "neonato", "neonata", "varon", "hembra"),
        *("masculino", "femenino", "desconocido", "desconocida", "fnu", "nfn"),
        *SPANISH_TWINS,
    }
)
# LNU: last name unknown. Not NMN or NMI in the middle name: "no middle name" is a fact.
LAST_MARKERS = MIDDLE_MARKERS | {"unknown", "unk", "lnu", "nln"}
# Accent-sensitive: with the tilde or accent these are Spanish nouns ("girl", "boy", "baby"),
# without it Nina, Nino and Bebe are given names.
ACCENTED_MARKERS = frozenset({"niña", "niño", "bebé"})
# "Bebé de María", "Nina de Garcia" typed without the tilde: a placeholder word, then "of".
OF_WORDS = frozenset({"de", "del"})
OF_CORES = frozenset({"bebe", "nina", "nino"})
# Spanish "bebé" is also a real given name (Bebe): only "Bebé Niña" / "Bebé Varón" are flagged.
SEX_WORDS = frozenset(
    {
        *("boy", "girl", "male", "female", "m", "f"),
        *("nina", "nino", "varon", "hembra", "masculino", "femenino"),
    }
)
TWIN_TAILS = frozenset({"a", "b", "c", "twin", "twina", "twinb", "twinc", "triplet"})
# Birth order of multiples spelled out, as registries write it: run together after a
# shorthand ("BGTWO", "BBII", "TwinFirst") or before one ("FIRSTBG", "TWOBB"). Alone they are
# names or words (Seven, Una, Trey): they count only next to a placeholder core.
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
ORDINAL_WORDS = (
    *("first", "second", "third", "fourth", "fifth"),
    *("sixth", "seventh", "eighth", "ninth", "tenth"),
)
ROMAN = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x")
ORDER_TAILS = frozenset({*NUMBER_WORDS, *ORDINAL_WORDS, *ROMAN})
# Longest first, so that "seventh" is not read as "seven" + "th".
LEADING_ORDERS = tuple(sorted({*NUMBER_WORDS, *ORDINAL_WORDS}, key=len, reverse=True))
# Quadruplets and more after a code ("BGD", "NBE"); not after "boy" (Boyd) or "girl".
QUAD_LETTERS = frozenset({"d", "e"})
# Prefixes a mother's name may follow ("GirlJudy", "BabyJudy", "InfantofJudy").
NAME_CORES = (
    "babygirl",
    "babyboy",
    "newborn",
    "unknown",
    "unnamed",
    "infant",
    "baby",
    "girl",
    "boy",
)
# Prefixes only a marker may follow ("BGA", "Twinb", "TestPatient", "BebeNina").
CODE_CORES = (
    "notnamed",
    "triplet",
    "patient",
    "noname",
    "bgirl",
    "bboy",
    "twin",
    "test",
    "none",
    "bebe",
    "unk",
    "tbd",
    "bb",
    "bg",
    "nb",
    "rn",
    # "NNA", "S/N B", "FNUA", "GemeloB", "HijoA"
    *("nn", "sn", "fnu", "nfn", "lnu", "nln", "nmn", "tba"),
    *("gemelo", "gemela", "mellizo", "melliza", "trillizo", "trilliza", "hijo", "hija"),
)
# Suffixes after a mother's name ("Judysgirl", "MariasBaby").
SUFFIX_CORES = ("babygirl", "babyboy", "infant", "baby", "girl", "boy")
# Real given names that look like a core plus a mother's name.
REAL_NAMES = frozenset(
    {"boyden", "boydon", "boykin", "boylan", "boyana", "boyanka", "boysie", "girlie"}
)
TEMPORARY_NAME_TYPES = frozenset({"NB", "TEMP", "BAD"})  # HL7 table 0200
DOE_FIRSTS = frozenset({"john", "jane", "baby", "babyboy", "babygirl", "boy", "girl"})

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_PIECES = re.compile(r"[A-Za-z]+|\d+")
_VOWEL = re.compile(r"[aeiouy]")


@dataclass(frozen=True)
class NameCheck:
    flagged: bool
    reason: str | None = None


OK = NameCheck(False)


def tokens(value: str, *, camel: bool = True) -> list[str]:
    """Lower-case ASCII words and numbers: "Judy's Girl" -> ["judys", "girl"],
    "Girl1Judy" -> ["girl", "1", "judy"], "BBoy" -> ["b", "boy"] (camel case splits words)."""
    decomposed = unicodedata.normalize("NFKD", clean(value))
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii").replace("'", "")
    split = _CAMEL.sub(" ", ascii_only) if camel else ascii_only
    return [t.lower() for t in _PIECES.findall(split)]


def _is_tail(core: str, tail: str) -> bool:
    """May `tail` follow `core` in a run-together placeholder like "girljudy" or "bga"?"""
    if tail in SEX_WORDS:
        return True
    if core == "bebe":
        return False
    if tail in TWIN_TAILS or tail in ORDER_TAILS or split_word(tail)[0] in FIRST_MARKERS:
        return True
    if core in CODE_CORES and tail in QUAD_LETTERS:
        return True
    # A mother's name ("judy", "ofjudy"); "Boyd", "Boyce", "Girlie", "Twinkle" stop here.
    shortest = 3 if core == "boy" else 2
    mother = tail == "of" or (len(tail) >= shortest and bool(_VOWEL.search(tail)))
    return core in NAME_CORES and mother


def split_word(word: str) -> list[str]:
    """Split a run-together word into pieces around its markers: "babygirla" -> ["baby",
    "girl", "a"], "judysgirl" -> ["judys", "girl"], "boyd" -> ["boyd"]."""
    if word in FIRST_MARKERS or word in REAL_NAMES or len(word) < 3:
        return [word]
    if word.startswith(("zz", "xx")):  # EHR test records: "ZZTest", "Zzzpatient", "XXA"
        return ["test"]
    for order in LEADING_ORDERS:  # "firstbg", "twobb": birth order, then the shorthand
        rest = word[len(order) :]
        if word.startswith(order) and len(rest) >= 2 and split_word(rest)[0] in FIRST_MARKERS:
            return [order, *split_word(rest)]
    for core in (*NAME_CORES, *CODE_CORES):
        tail = word[len(core) :]
        if word.startswith(core) and tail and _is_tail(core, tail):
            return [core, *split_word(tail)]
    stem, twin = _strip_twin(word)
    for core in SUFFIX_CORES:
        if stem.endswith(core) and len(stem) - len(core) >= 2:
            return [stem[: -len(core)], core, *twin]
    return [word]


def _strip_twin(word: str) -> tuple[str, list[str]]:
    """ "judysgirltwina" -> ("judysgirl", ["twin", "a"]); "judysgirlb" -> ("judysgirl", ["b"])."""
    for tail in ("twina", "twinb", "twinc", "twin", "a", "b", "c"):
        if word.endswith(tail) and len(word) > len(tail):
            return word[: -len(tail)], (["twin", tail[4:]] if tail[4:] else [tail])
    return word, []


def words(value: str) -> list[str]:
    """Tokens with runs of single letters joined ("B. G." -> "bg", "N B" -> "nb") and
    run-together words split into pieces."""
    joined: list[str] = []
    previous_single = False
    for token in tokens(value):
        single = len(token) == 1 and token.isalpha()
        if single and previous_single:
            joined[-1] += token
        else:
            joined.append(token)
        previous_single = single
    return [piece for token in joined for piece in split_word(token)]


def accented_words(value: str) -> set[str]:
    """Lower-case words with their accents kept (composed): "NIÑA" -> {"niña"}."""
    return set(re.findall(r"[^\W\d_]+", unicodedata.normalize("NFC", clean(value)).casefold()))


def _spanish_placeholder(first: str, pieces: list[str]) -> bool:
    """ "Niña", "Bebé", "Bebe Gemelo A", "Bebe de Maria", "Nina de Garcia": the Spanish
    words that are placeholders only with their accent, or next to another marker."""
    for word in accented_words(first):
        for marker in ACCENTED_MARKERS:  # "Niña", "NiñaB", "Bebéniña"
            rest = "".join(tokens(word[len(marker) :]))
            if word.startswith(marker) and (
                not rest or _is_tail("bebe", rest) or rest in TWIN_TAILS
            ):
                return True
    for word, following in itertools.pairwise(pieces):
        if word in OF_CORES and following in OF_WORDS:
            return True
    return "bebe" in pieces and any(
        p in SEX_WORDS or p in TWIN_TAILS or p in SPANISH_TWINS for p in pieces
    )


def _check_first(first: str) -> NameCheck:
    shown = clean(first)
    if "?" in shown:  # registrars mark a name part they are not sure of with "?"
        return NameCheck(True, f"uncertain first name '{shown}'")
    pieces = words(first)
    letters = [p for p in pieces if p.isalpha()]
    if not letters:
        if any(c.isalpha() for c in shown):
            return OK  # a name in another script (Лілія, 花子): nothing here to compare
        return NameCheck(True, f"placeholder '{shown}'" if shown else "no first name")
    # "No Name", "Not Named B": the words run together, without a separate twin marker.
    joined = "".join(letters[:-1] if len(letters) > 1 and letters[-1] in TWIN_TAILS else letters)
    if (
        any(p in FIRST_MARKERS for p in (*pieces, *tokens(first)))  # "X A": x, not "xa"
        or (len(joined) > 2 and joined in FIRST_MARKERS)
        or _spanish_placeholder(first, pieces)
        or any(len(p) > 1 and set(p) <= {"x", "z"} for p in letters)  # "XX", "Zzz"
    ):
        return NameCheck(True, f"placeholder '{shown}'")
    if any(p.isdigit() for p in pieces):
        return NameCheck(True, f"number in the first name '{shown}'")
    if len(letters) == 1 and len(letters[0]) == 1:
        return NameCheck(True, f"single letter for a first name '{shown}'")
    return OK


def _check_other(value: str, where: str) -> NameCheck:
    if where == "middle":
        found = any(p in MIDDLE_MARKERS for p in words(value))
    else:
        # No camel-case split: McGirl is a surname.
        found = any(t in LAST_MARKERS or t.isdigit() for t in tokens(value, camel=False))
    return NameCheck(True, f"placeholder '{clean(value)}' in the {where} name") if found else OK


def check_name(first: str, middle: str, last: str, name_type: str | None) -> NameCheck:
    """Flag a name that is not the child's real given name yet. The first name is checked
    first, then the EHR's name type, then the middle and last names."""
    result = _check_first(first or "")
    if result.flagged:
        return result
    code = (name_type or "").strip().upper()
    if code in TEMPORARY_NAME_TYPES:
        return NameCheck(True, f"temporary name from the EHR ({code})")
    for value, where in ((middle, "middle"), (last, "last")):
        result = _check_other(value or "", where)
        if result.flagged:
            return result
    if "".join(tokens(last or "")) == "doe" and "".join(tokens(first or "")) in DOE_FIRSTS:
        return NameCheck(True, f"unidentified-patient name '{clean(first)} {clean(last)}'")
    return OK
