"""The invented names of the demo practice: surnames, children's and parents' given names,
providers and the phone formats a front desk sees. Fiction only (see bot/importing/demo.py)."""

from __future__ import annotations

SURNAMES = [
    "Bramblewood",
    "Quillfeather",
    "Thistledown",
    "Pebbleworth",
    "Wrenfield",
    "Fernsby",
    "Hollowmere",
    "Ashgrove",
    "Brightwater",
    "Cobblestone",
    "Dapplegrey",
    "Elderberry",
    "Fiddlewick",
    "Gooseberry",
    "Inkwell",
    "Juniperwood",
    "Kettleby",
    "Lanternfield",
    "Mossbottom",
    "Nettlefold",
    "Oakhollow",
    "Puddingstone",
    "Quartermoon",
    "Rosethorn",
    "Saltmarsh",
    "Tumbleweed",
    "Velvetleaf",
    "Willowbrook",
    "Yarrowby",
    "Peñaflor",
    "Núñez-Moss",
    "O'Bramble",
    "Crumbleton",
    "Dewdrop",
    "Flintlock",
    "Gingersnap",
    "Hazelnut",
    "Ivybridge",
    "Jollyfeather",
    "Kipperfield",
    "Larkspur",
    "Muddlecombe",
]


GIRLS = [
    "Ada",
    "Bea",
    "Clover",
    "Daisy",
    "Elsie",
    "Fern",
    "Greta",
    "Hazel",
    "Iris",
    "June",
    "Kit",
    "Lark",
    "Mabel",
    "Nell",
    "Opal",
    "Pearl",
    "Rosa",
    "Sage",
    "Tess",
    "Wren",
    "Zoë",
]


BOYS = [
    "Abe",
    "Bram",
    "Cass",
    "Dex",
    "Ezra",
    "Finn",
    "Gus",
    "Hugo",
    "Ike",
    "Jude",
    "Kai",
    "Leo",
    "Milo",
    "Ned",
    "Otto",
    "Pip",
    "Rex",
    "Sid",
    "Theo",
    "Wade",
]


MOTHERS = [
    "Agnes",
    "Beryl",
    "Cora",
    "Dora",
    "Edna",
    "Flora",
    "Gwen",
    "Hattie",
    "Ida",
    "Lottie",
    "Maude",
    "Nora",
    "Olive",
    "Petra",
    "Ruth",
    "Stella",
    "Vera",
    "Winnie",
]


FATHERS = [
    "Alfie",
    "Barney",
    "Cyril",
    "Dudley",
    "Ernie",
    "Fritz",
    "Gordy",
    "Horace",
    "Ivor",
    "Jasper",
    "Lionel",
    "Monty",
    "Nigel",
    "Percy",
    "Rupert",
    "Stan",
    "Walt",
]


PROVIDERS = ["Dr. Example", "Dr. Placeholder", "NP Sample"]


# The same number written the ways EHR exports write it.
PHONE_FORMATS = ["(217) 555-{n}", "217-555-{n}", "217.555.{n}", "+1 217 555 {n}", "217555{n}"]
