"""The answer sentence: which kind of answer a question asks for, and whether a sentence
states one that the question does not already contain (retrieval/answer.py)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.answer import AnswerType, best_sentence, expected_type, states


@pytest.mark.parametrize("question, kind", [
    ("When did Turkey join NATO?", AnswerType.TIME),
    ("In what year did Ankara enter the alliance?", AnswerType.TIME),
    ("How many drones did Ukraine buy?", AnswerType.NUMBER),
    ("What price did Russia ask for the second batch of S-400 systems?", AnswerType.NUMBER),
    ("What is Turkey's annual defence budget?", AnswerType.NUMBER),
    ("What is the range of the TB2?", AnswerType.NUMBER),
    ("Who is Turkey's foreign minister?", AnswerType.PERSON),
    ("Which company manufactures the Bayraktar TB2 drone?", AnswerType.ANY),
    ("What was the human cost of the war?", AnswerType.ANY),
    ("What cost-cutting measures did Turkey take?", AnswerType.ANY),
    ("Why is Turkey selling drones to Ukraine?", AnswerType.ANY),
    ("What did the United States suggest about the S-400?", AnswerType.ANY),
])
def test_expected_type(question: str, kind: AnswerType) -> None:
    assert expected_type(question) is kind


@pytest.mark.parametrize("kind, sentence, question, expected", [
    (AnswerType.TIME, "Turkey joined NATO in 1952.", "When did Turkey join NATO?", True),
    (AnswerType.TIME, "Turkey is a NATO member.", "When did Turkey join NATO?", False),
    (AnswerType.NUMBER, "The first delivery arrived in July 2019.", "How many S-400s came?", False),
    (AnswerType.NUMBER, "It killed at least 30 soldiers.", "How many soldiers died?", True),
    (AnswerType.NUMBER, "During the 44-day war drones struck.", "How many died in the 44-day war?", False),
    (AnswerType.PERSON, "“It matters,” said Aaron Stein, a researcher.", "Who studies Turkey?", True),
    # a sentence-initial "The" does not make "The Ukrainian" a name
    (AnswerType.PERSON, "The Ukrainian version will fly soon.", "Who flies the Ukrainian version?", False),
    (AnswerType.PERSON, "Russia’s S-400 air defense system is valued.", "Who values the system?", False),
    (AnswerType.PERSON, "“It matters,” said Tip O'Neill.", "Who said it matters?", True),
    (AnswerType.PERSON, "Ömer Çelik, the party spokesman, said so.", "Who said so?", True),
    (AnswerType.ANY, "Anything at all.", "Why?", True),
])
def test_states(kind: AnswerType, sentence: str, question: str, expected: bool) -> None:
    assert states(kind, sentence, question) is expected


def test_best_sentence_prefers_a_sentence_of_the_asked_kind() -> None:
    question = "How many drones did Ukraine order?"
    sentences = ["Ukraine ordered more drones.", "Ukraine ordered 24 drones in 2021."]
    vectors = np.array([[1.0, 0.0], [0.995, 0.0998]], dtype=np.float32)  # first slightly closer
    best, similarity, typed = best_sentence(question, np.array([1.0, 0.0], dtype=np.float32),
                                            sentences, vectors, np.zeros(2, dtype=np.float32))
    assert (best, typed) == (1, True)
    assert similarity == pytest.approx(0.995, abs=1e-6)
