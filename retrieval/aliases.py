"""Place names that stand for a country in news writing ("Ankara" for Turkey, "the Kremlin"
for Russia), read from ``retrieval/data/aliases.tsv`` (its header explains the format).

:meth:`Gazetteer.expand` names the country next to such a name in the question that is
embedded: "Will Ankara's military buy drones?" is searched as "Will Ankara (Turkey)'s
military buy drones?". News articles and questions about them switch freely between the
two ("Turkey will also buy some of these drones"), and the embedding model does not
always connect them. Measured with ``python -m bench.eval`` (README, "Quality").
BM25 terms are left alone: adding the country's name there measured worse, because in a
collection about a country its name is in most passages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "aliases.tsv"


@dataclass(frozen=True)
class Gazetteer:
    """Which names stand for which country."""

    stands_for: dict[str, str]  # "Ankara" -> "Turkey"
    # Any of those names as a whole word, longest first; None when there are none.
    # Names and questions are compared in Unicode NFC ("Élysée" typed either way).
    pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = sorted(self.stands_for, key=len, reverse=True)
        pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b") if names else None
        object.__setattr__(self, "pattern", pattern)

    def expand(self, text: str) -> str:
        """``text`` with the country named after the first name that stands for it, unless
        the text names that country already, or the name is part of a longer name or a
        fixed phrase: followed by a hyphen or a capitalised word ("Moscow-backed",
        "Washington Post"), preceded by a capitalised word other than the first one
        ("Denzel Washington"), or followed by a word such as "agreement" ("the Minsk
        agreements" are not about Belarus).

        >>> load_gazetteer().expand("Will Ankara's own military buy drones built in Kyiv?")
        "Will Ankara (Turkey)'s own military buy drones built in Kyiv (Ukraine)?"
        >>> load_gazetteer().expand("Did Ankara tell Turkey's allies?")
        "Did Ankara tell Turkey's allies?"
        >>> load_gazetteer().expand("Did Russia honour the Minsk agreements?")
        'Did Russia honour the Minsk agreements?'
        """
        if self.pattern is None:
            return text
        text = unicodedata.normalize("NFC", text)
        done: set[str] = set()

        def name_country(match: re.Match[str]) -> str:
            name = match.group(0)
            country = self.stands_for[name]
            before = text[:match.start()].split()
            if (country in done or _names(country, text) or _FIXED_AFTER.match(text, match.end())
                    or (len(before) > 1 and before[-1][:1].isupper())):
                return name
            done.add(country)
            return f"{name} ({country})"

        return self.pattern.sub(name_country, text)


# After a place name: a hyphen ("Moscow-backed"), a capitalised word ("Washington Post",
# "Paris Agreement"), or a word that makes it the name of an agreement, a format or a
# meeting ("the Minsk agreements", "the Normandy format", "the Warsaw summit").
_FIXED_AFTER = re.compile(
    r"(?:-|\s+[A-Z]|\s+(?:agreements?|accords?|pacts?|protocols?|format|process|talks|summit|"
    r"conference|declaration|treaty|convention|consensus|group|club)\b)")


def _names(country: str, text: str) -> bool:
    """Whether ``text`` names ``country`` (as a whole word, whatever its last character)."""
    return re.search(rf"(?<!\w){re.escape(country)}(?!\w)", text) is not None


def parse(lines: list[str], source: str = "aliases") -> Gazetteer:
    """A :class:`Gazetteer` from the lines of an aliases file.

    Raises:
        ValueError: a line without the two tab-separated columns, or with no names,
            naming ``source`` and the line number.
    """
    stands_for: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        line = unicodedata.normalize("NFC", line.rstrip("\n"))
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        columns = line.split("\t")
        names = [x.strip() for x in columns[1].split(";") if x.strip()] if len(columns) == 2 else []
        if len(columns) != 2 or not columns[0].strip() or not names:
            raise ValueError(f"{source}:{n}: expected country<TAB>names (names separated by "
                             f"';'), got {line!r}")
        country = columns[0].strip()
        for name in names:
            stands_for.setdefault(name, country)
    return Gazetteer(stands_for)


@lru_cache(maxsize=4)
def load_gazetteer(path: Path = DATA) -> Gazetteer:
    """The gazetteer in ``path`` (default: the one shipped with Verbatim), read once."""
    return parse(path.read_text(encoding="utf-8").splitlines(), str(path))
