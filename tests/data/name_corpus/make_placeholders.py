"""Writes placeholders.txt: the unofficial newborn names the check must flag (recall 100%).

Run `python tests/data/name_corpus/make_placeholders.py` after editing the lists below; the
output is deterministic. A line is a first name, or `first | middle | last | name_type` when
the placeholder is elsewhere (middle name, last name, EHR name type).
"""

from __future__ import annotations

from pathlib import Path

# Hospital and EHR placeholders (first name), written as registrars type them.
BASES = [
    "Baby Girl",
    "Baby Boy",
    "Babygirl",
    "Babyboy",
    "BabyGirl",
    "BabyBoy",
    "Baby",
    "Baby Male",
    "Baby Female",
    "BB",
    "BG",
    "B B",
    "B G",
    "B-G",
    "B-B",
    "B.G.",
    "B.B.",
    "BBoy",
    "BGirl",
    "B Boy",
    "B Girl",
    "Boy",
    "Girl",
    "Male",
    "Female",
    "Infant",
    "Infant Boy",
    "Infant Girl",
    "Infantboy",
    "InfantGirl",
    "Infant Male",
    "Infant Female",
    "Infantmale",
    "Inf Boy",
    "Newborn",
    "Newborn Girl",
    "Newborn Boy",
    "NB",
    "N.B.",
    "NB Girl",
    "NB Boy",
    "Nb Male",
    "Unnamed",
    "Unnamed Boy",
    "Unknown",
    "Unknown Female",
    "Unk",
    "UNK",
    "None",
    "X",
    "XX",
    "U",
    "Test",
    "Test Patient",
    "Testpatient",
    "Patient Test",
    "Patient",
    "ZZTest",
    "Zztest Baby",
    "Twin",
    "Triplet",
    "No Name",
    "Noname",
    "Not Named",
    "Notnamed",
    "TBD",
    "Bebé Niña",
    "Bebe Nino",
    "Bebé Varón",
    "RN Hembra",
    "RN Varon",
    "Neonate",
]
# What a Spanish-speaking nursery writes ("RN" is recién nacido), with and without accents
# where the unaccented form is no given name; "Niña", "Niño" and "Bebé" only with theirs (Nina,
# Nino and Bebe are given names: tests/data/name_corpus/hispanic_names.txt, real_names.txt).
SPANISH_BASES = [
    "Bebé Niña",
    "Bebé Niño",
    "Bebe Nina",
    "BEBE NINO",
    "Bebé Varón",
    "Bebe Varon",
    "Bebé Hembra",
    "Bebé Masculino",
    "Bebé Femenino",
    "Bebé",
    "Niña",
    "Niño",
    "RN",
    "R.N.",
    "RN Niña",
    "RN Niño",
    "RN Nina",
    "RN Varón",
    "RN Hembra",
    "RN Masculino",
    "RN Femenino",
    "RNVaron",
    "RNHembra",
    "RN Gemelo",
    "Recién Nacido",
    "Recién Nacida",
    "Recien Nacido",
    "Reciennacido",
    "Recién Nacido Varón",
    "Neonato",
    "Neonata",
    "Varón",
    "Varon",
    "Hembra",
    "Masculino",
    "Femenino",
    "Producto",
    "Producto Único",
    "Gemelo",
    "Gemela",
    "Mellizo",
    "Melliza",
    "Trillizo",
    "Trilliza",
    "Bebé Gemelo",
    "Niña Gemela",
    "Sin Nombre",
    "Sinnombre",
    "S/N",
    "Desconocido",
    "Desconocida",
    "Hijo",
    "Hija",
    "NN",
    "N.N.",
]
# US registration abbreviations for a name not (yet) known.
REGISTRATION_BASES = [
    "FNU",
    "F.N.U.",
    "Fnu",
    "NFN",
    "LNU",
    "FNU LNU",
    "NMN",
    "NLN",
    "UNK",
    "Unk Female",
    "Unknown",
    "Unknown Male",
    "Unidentified",
    "Unidentified Female",
    "No First Name",
    "Nofirstname",
    "First Name Unknown",
    "TBD",
    "TBA",
    "Name TBD",
    "BB",
    "BG",
    "BBoy",
    "BGirl",
    "Infant Boy",
    "Female Infant",
    "Male Infant",
    "Baby A",
    "Twin A",
    "Newborn",
    "NB Girl",
    "?",
    "?Maria",
    "Maria?",
]
TWIN_MARKS = [
    "",
    " A",
    " B",
    "A",
    "B",
    " 1",
    " 2",
    "1",
    "#1",
    " #2",
    " Twin A",
    " Twin B",
    "-A",
    " (B)",
    " Twin",
    " twin 2",
    " C",
]
MOTHERS = [
    "Judy",
    "Maria",
    "Jennifer",
    "Ashley",
    "Keisha",
    "Nguyet",
    "Ann",
    "Lakisha",
    "Mei",
    "Fatima",
    "Guadalupe",
    "Priya",
    "Olga",
    "Zoë",
    "D'Andrea",
    "Mary-Kate",
    "Sue",
    "Aaliyah",
    "Yolanda",
    "Chen",
    "Ebony",
    "Rosa",
    "Tiffany",
    "Esperanza",
    "Kim",
]
# The Joint Commission (NPSG.01.01.01), AHIMA and CHA conventions with the mother's name.
MOTHER_FORMS = [
    "{m} Girl",
    "{m}'s Girl",
    "{m}s Girl",
    "{m}sgirl",
    "{m}sGirl",
    "1{m}sgirl",
    "2{m}sboy",
    "{m}sboy",
    "{m}'s Boy",
    "{m} Boy",
    "{m}sgirl1",
    "{m}sgirlB",
    "Girl{m}",
    "Girl {m}",
    "Girl1{m}",
    "Girl 2 {m}",
    "Boy{m}",
    "Boy A {m}",
    "Boy B {m}",
    "BoyA{m}",
    "Baby{m}",
    "Baby {m}",
    "Baby of {m}",
    "Infant of {m}",
    "InfantOf{m}",
    "Babyof{m}",
    "{m}'s Baby",
    "{m}sbaby",
    "Girl-{m}",
    "Boy-{m}",
    "Twin A {m}",
    "{m}sgirl Twin A",
    # Spanish: "son / daughter / baby / newborn of …"
    "Hijo de {m}",
    "Hija de {m}",
    "HIJO DE {m}",
    "Hijo de la Sra. {m}",
    "Bebé de {m}",
    "Bebe de {m}",
    "Bebe del {m}",
    "RN de {m}",
    "RN {m}",
    "Niña de {m}",
    "Niño de {m}",
    "Nina de {m}",
    "NINO DE {m}",
    "Recién Nacido de {m}",
    "Gemelo A de {m}",
    "Gemela 2 de {m}",
]
# Birth order of multiples, as registries and hospital systems write it: digits, number words,
# ordinals, letters, roman numerals, after the shorthand ("BG2", "BBTWO", "BG-A", "BB#2") or
# before it ("1st BG", "SECONDBB"), with and without a space, hyphen or #, in any case.
SHORTHANDS = [
    "BG",
    "BB",
    "Bg",
    "Bb",
    "BBoy",
    "BGirl",
    "Babyboy",
    "Babygirl",
    "BabyBoy",
    "BabyGirl",
    "Boy",
    "Girl",
    "NB",
    "Twin",
    "Triplet",
]
SPANISH_SHORTHANDS = ["RN", "Gemelo", "Gemela", "Mellizo", "Trillizo", "Bebé"]
ORDERS = [
    *("1", "2", "3", "10"),
    *("One", "Two", "Three", "Four", "Ten"),
    *("First", "Second", "Third", "1st", "2nd", "3rd"),
    *("A", "B", "C"),
    *("I", "II", "III", "IV"),
]
# Quadruplets' letters after a code: "BGD", "BB-D" ("BoyD" is left out: BOYD is a name).
CODE_ONLY_ORDERS = {"D": ("BG", "BB", "Bg", "Bb", "BBoy", "BGirl", "NB", "Twin", "Triplet")}
ORDER_JOINS = ["", " ", "-", "#", " #"]
LEADING_ORDERS = ["1st", "2nd", "First", "Second", "Third", "One", "Two"]


def _cases(name: str) -> list[str]:
    return list(dict.fromkeys([name, name.upper(), name.lower()]))


def birth_orders() -> list[str]:
    lines: list[str] = []
    orders = [(order, SHORTHANDS) for order in ORDERS]
    orders += [(order, tuple(codes)) for order, codes in CODE_ONLY_ORDERS.items()]
    for order, shorthands in orders:
        for shorthand in shorthands:
            for join in ORDER_JOINS:
                if join.strip() == "#" and not order[0].isdigit():
                    continue  # "#" goes with digits
                lines.extend(_cases(f"{shorthand}{join}{order}"))
    for order in LEADING_ORDERS:
        for shorthand in SHORTHANDS:
            for join in ("", " "):
                lines.extend(_cases(f"{order}{join}{shorthand}"))
    lines += ["Twin B Girl", "Twin 2 Boy", "Triplet C Boy", "Baby Girl Two", "Baby Boy the Second"]
    for shorthand in SPANISH_SHORTHANDS:
        for order in ("A", "B", "1", "2", "#2", "Uno", "Dos", "II"):
            lines.extend(_cases(f"{shorthand} {order}"))
    lines += ["Gemelo A Varón", "Gemela B Niña", "RN Gemelo A", "Bebé Gemelo 2", "Bebe Gemelo A"]
    return lines


# Placeholders outside the first name: (first, middle, last, name_type).
OTHER_FIELDS = [
    ("Ava", "Baby Girl", "Smith", ""),
    ("Ava", "Babygirl", "Smith", ""),
    ("Noah", "Boy", "Smith", ""),
    ("Mia", "Judysgirl", "Smith", ""),
    ("Ava", "", "Smith Twin A", ""),
    ("Ben", "", "Smith Twin B", ""),
    ("Ava", "", "Smith-Twin", ""),
    ("Ava", "", "Smith 2", ""),
    ("Ava", "", "Baby", ""),
    ("Ava", "", "Smith Baby Girl", ""),
    ("Ava", "", "Unknown", ""),
    ("Ava", "", "Smith", "NB"),
    ("Ava", "", "Smith", "nb"),
    ("Ava", "", "Smith", "TEMP"),
    ("Ava", "", "Smith", " temp "),
    ("Ava", "", "Smith", "BAD"),
    ("John", "", "Doe", ""),
    ("Jane", "", "Doe", ""),
    ("Baby", "", "Doe", ""),
    # Spanish in the middle or last name; US "last name unknown"
    ("Ava", "Recién Nacida", "García", ""),
    ("Ava", "Gemela A", "García", ""),
    ("Ava", "Varón", "García", ""),
    ("Ava", "", "García Gemelo B", ""),
    ("Ava", "", "Desconocido", ""),
    ("Ava", "", "LNU", ""),
    ("Ava", "", "Lnu", ""),
    ("Ava", "", "NLN", ""),
    ("Ava", "", "UNK", ""),
    ("Ava", "NMN", "LNU", ""),
    ("FNU", "", "García", ""),
    ("FNU", "NMN", "Smith", ""),
]


def _spellings(name: str) -> list[str]:
    """As typed, upper case, lower case, extra spaces."""
    spaced = f"  {name.replace(' ', '  ')} "
    return list(dict.fromkeys([name, name.upper(), name.lower(), spaced]))


def placeholders() -> list[str]:
    lines: list[str] = []
    for base in (*BASES, *SPANISH_BASES, *REGISTRATION_BASES):
        single_word = base.isalnum() and len(base) > 1
        lines.extend(base + mark for mark in TWIN_MARKS if single_word or mark[:1] == " ")
        lines.extend(_spellings(base))
        lines.append(base.replace(" ", "-"))
        lines.append(base.replace(" ", "_"))
    for mother in MOTHERS:
        for form in MOTHER_FORMS:
            lines.append(form.format(m=mother))
        lines.extend(_spellings(f"{mother}sgirl") + _spellings(f"Girl{mother}"))
    lines.extend(birth_orders())
    for first, middle, last, name_type in OTHER_FIELDS:
        lines.append(f"{first} | {middle} | {last} | {name_type}")
    return list(dict.fromkeys(lines))


if __name__ == "__main__":
    out = Path(__file__).with_name("placeholders.txt")
    header = "# Generated by make_placeholders.py: unofficial names the check must flag.\n"
    out.write_text(header + "\n".join(placeholders()) + "\n", encoding="utf-8")
    print(f"{out}: {len(placeholders())} placeholders")
