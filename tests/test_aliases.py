"""Place aliases: the shipped gazetteer, how a question is expanded, and the setting."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from indexer.errors import ConfigError
from indexer.settings import Settings
from retrieval.aliases import DATA, load_gazetteer, parse
from retrieval.query import prepare
from retrieval.searcher import Searcher
from support import FakeIndex


def test_shipped_file_parses_and_covers_capitals_and_seats_of_government() -> None:
    gazetteer = load_gazetteer()
    assert len(gazetteer.stands_for) > 200
    for name, country in [("Ankara", "Turkey"), ("Kyiv", "Ukraine"), ("Kiev", "Ukraine"),
                          ("Moscow", "Russia"), ("Kremlin", "Russia"), ("Washington", "United States"),
                          ("Beijing", "China"), ("New Delhi", "India"), ("Downing Street", "United Kingdom")]:
        assert gazetteer.stands_for[name] == country, name
    # Left out on purpose: Brussels usually means the EU or NATO; Victoria is a first name.
    assert "Brussels" not in gazetteer.stands_for and "Victoria" not in gazetteer.stands_for


def test_shipped_data_has_current_names_and_skips_ambiguous_ones() -> None:
    stands_for = load_gazetteer().stands_for
    # Current countries, not the defunct or renamed entries of the source data.
    assert stands_for["Belgrade"] == "Serbia" and stands_for["Skopje"] == "North Macedonia"
    assert stands_for["Astana"] == stands_for["Nur-Sultan"] == "Kazakhstan"
    assert "Serbia and Montenegro" not in stands_for.values()
    # First names and places elsewhere are not aliases.
    for name in ("Sofia", "Santiago", "Georgetown", "Kingston", "Jerusalem"):
        assert name not in stands_for, name
    # English spellings without accents, and typographic apostrophes, match too.
    assert stands_for["Brasilia"] == stands_for["Brasília"] == "Brazil"
    assert stands_for["Sana’a"] == stands_for["Sana'a"] == "Yemen"
    assert all(name != country for name, country in stands_for.items())


@pytest.mark.parametrize(("text", "expanded"), [
    ("Will Ankara's own military buy drones?", "Will Ankara (Turkey)'s own military buy drones?"),
    ("What did the Kremlin say about Kyiv?", "What did the Kremlin (Russia) say about Kyiv (Ukraine)?"),
    # The country is already named, or was named after an earlier alias: left alone.
    ("Did Ankara tell Turkey's allies?", "Did Ankara tell Turkey's allies?"),
    ("Did Moscow and the Kremlin agree?", "Did Moscow (Russia) and the Kremlin agree?"),
    # Longest name first; whole words only; case matters.
    ("Who works at the White House?", "Who works at the White House (United States)?"),
    ("Is Ankaran a word? Is moscow?", "Is Ankaran a word? Is moscow?"),
    ("", ""),
    # Non-ASCII names, typed composed or decomposed (NFD).
    ("Which Élysée leader called?", "Which Élysée (France) leader called?"),
    ("Which E\u0301lyse\u0301e leader called?", "Which Élysée (France) leader called?"),
    ("Did Bogota agree?", "Did Bogota (Colombia) agree?"),
    # Part of a longer name or a fixed phrase: left alone.
    ("Did Russia honour the Minsk agreements?", "Did Russia honour the Minsk agreements?"),
    ("What did the Washington Post report?", "What did the Washington Post report?"),
    ("Who are the Moscow-backed separatists?", "Who are the Moscow-backed separatists?"),
    ("Why did Denzel Washington speak?", "Why did Denzel Washington speak?"),
    ("In Kyiv, who spoke?", "In Kyiv (Ukraine), who spoke?"),  # the first word may be capitalised
])
def test_expand(text: str, expanded: str) -> None:
    assert load_gazetteer().expand(text) == expanded


def test_parse_merges_rows_keeps_the_first_country_and_skips_comments() -> None:
    gazetteer = parse(["# comment", "", "Atlantis\tPoseidonia;Old Town", "Lemuria\tOld Town",
                       "Atlantis\tNew Port"])
    assert gazetteer.stands_for == {"Poseidonia": "Atlantis", "Old Town": "Atlantis", "New Port": "Atlantis"}
    assert gazetteer.expand("Is Old Town near New Port?") == "Is Old Town (Atlantis) near New Port?"


@pytest.mark.parametrize("bad", ["Atlantis Poseidonia", "Atlantis\t", "Atlantis\t ; ", "\tPoseidonia",
                                 "Atlantis\tPoseidonia\textra"])
def test_parse_error_names_the_line(bad: str) -> None:
    with pytest.raises(ValueError, match=r"my.tsv:3: expected country<TAB>names"):
        parse(["Atlantis\tPoseidonia", "   # an indented comment", bad], "my.tsv")


def test_empty_gazetteer_changes_nothing() -> None:
    assert parse([]).expand("Ankara?") == "Ankara?"


def test_prepare_expands_the_embedded_text_but_not_the_bm25_terms() -> None:
    plain = prepare("Will Ankara buy drones?")
    expanded = prepare("Will Ankara buy drones?", load_gazetteer())
    assert expanded.text == "Will Ankara (Turkey) buy drones?"
    assert plain.text == "Will Ankara buy drones?"
    assert expanded.terms == plain.terms and "turkey" not in expanded.terms


@pytest.mark.parametrize(("raw", "value"), [(None, True), ("", True), ("1", True), ("on", True),
                                            ("0", False), ("false", False), (" No ", False)])
def test_setting(raw: str | None, value: bool) -> None:
    env = {} if raw is None else {"VERBATIM_PLACE_ALIASES": raw}
    assert Settings.from_env(env).place_aliases is value


def test_bad_setting_says_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match="VERBATIM_PLACE_ALIASES must be 1 or 0"):
        Settings.from_env({"VERBATIM_PLACE_ALIASES": "maybe"})


def test_searcher_embeds_the_expanded_question_unless_switched_off(fake_index: FakeIndex) -> None:
    embedded: list[str] = []

    class Recording:
        def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
            self.inner, self.name, self.dimension = inner, inner.name, inner.dimension

        def encode(self, texts: list[str]) -> np.ndarray:
            embedded.extend(texts)
            return self.inner.encode(texts)  # type: ignore[no-any-return]

    embedder = Recording(fake_index.embedder)
    Searcher.load(fake_index.settings, embedder).ask("What did Moscow say?")  # type: ignore[arg-type]
    off = replace(fake_index.settings, place_aliases=False)
    Searcher.load(off, embedder).ask("What did Moscow say?")  # type: ignore[arg-type]
    assert embedded == ["What did Moscow (Russia) say?", "What did Moscow say?"]
