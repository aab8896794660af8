"""Regenerate the place rows of ``aliases.tsv`` from the countryinfo package's data.

Not used at run time. Run it where ``pip download countryinfo==1.0.1`` has been unpacked:

    python retrieval/data/make_aliases.py PATH/countryinfo/data > /tmp/places.tsv

and replace the generated block of ``aliases.tsv`` with its output (the hand-written rows
above it stay). countryinfo is MIT-licensed (c) 2018 Porimol Chandro; its country data
comes from REST Countries.

What is kept: for every country or territory, its capital as a name that stands for it,
also written without accents and with a typographic apostrophe. A capital claimed by two
entries goes to the more populous one. Capitals that are also
common names or that usually stand for something else are left out (``SKIP``).
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

# Capitals that are common first names or surnames, that in news usually stand for an
# international body rather than the country ("Brussels": the EU or NATO), or whose
# attribution is contested (Jerusalem).
# Also capitals that are everyday phrases, first names, or other well-known places' or
# things' names ("The Valley", "Sofia", "Georgetown", "Cayenne"), and "Washington D.C."
# (the hand-written United States row has "Washington").
SKIP = {"Brussels", "Victoria", "City of Victoria", "Stanley", "Hamilton", "Douglas", "Diego Garcia",
        "Jerusalem", "El Aaiún", "Kingstown", "Washington D.C.", "The Valley", "The Bottom",
        "West Island", "Plymouth", "Saint-Denis", "Sofia", "Santiago", "Georgetown", "George Town",
        "Jamestown", "Kingston", "Nassau", "Cayenne"}
# Entries under a name that no longer exists: dropped, or renamed.
DEFUNCT = {"Serbia and Montenegro"}
RENAMED = {"Republic of Macedonia": "North Macedonia", "Swaziland": "Eswatini",
           "Vatican City State": "Holy See"}


def _variants(name: str) -> list[str]:
    """The name as written, without accents ("Brasília" -> "Brasilia", as English news
    usually writes it) and with a typographic apostrophe ("N'Djamena" -> "N’Djamena")."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    out: list[str] = []
    for variant in (name, plain, name.replace("'", "’"), plain.replace("'", "’")):
        if variant not in out:
            out.append(variant)
    return out


def _names(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [v.strip() for v in value.replace(" / ", ",").split(",") if v.strip()]
    return []


def rows(folder: Path) -> list[tuple[str, list[str]]]:
    """(country, capitals), each capital given to one country only."""
    entries = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        name = (data.get("name") or "").strip()
        name = RENAMED.get(name, name)
        # Skip defunct entries and awkward duplicates ("Holy See (Vatican City State)",
        # "Palestine, State of"): the plain entry carries the capital.
        if not name or name in DEFUNCT or "(" in name or "," in name:
            continue
        capitals = [c for c in _names(data.get("capital")) if c not in SKIP and c != name]
        entries.append((int(data.get("population") or 0), name, capitals))
    owner: dict[str, tuple[int, str]] = {}
    for population, name, capitals in entries:
        for capital in capitals:
            if capital not in owner or population > owner[capital][0]:
                owner[capital] = (population, name)
    out = []
    seen: set[str] = set()
    for _, name, capitals in sorted(entries, key=lambda e: e[1]):
        capitals = [c for c in capitals if owner[c][1] == name]
        if name in seen or not capitals:
            continue
        seen.add(name)
        out.append((name, capitals))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(__doc__, file=sys.stderr)
        return 2
    for name, capitals in rows(Path(argv[0])):
        print(f"{name}\t{';'.join(v for c in capitals for v in _variants(c))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
