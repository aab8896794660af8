"""The learned verdicts: the model file, the features it names, and the decisions on the
seeds with the real model (the training command itself: tests/test_learned.py::...check)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from indexer.settings import Settings
from retrieval.features import ARTICLE_FEATURES, QUESTION_FEATURES, SENTENCE_FEATURES
from retrieval.learned import MODELS_FILE, LinearModel, ModelFileError, VerdictModels, read_models
from retrieval.searcher import Searcher
from retrieval.verdict import confidence_words
from support import REPO_ROOT, run_module


def test_the_shipped_file_names_the_features_this_version_computes() -> None:
    models = read_models(MODELS_FILE)
    assert models.sentence.features == SENTENCE_FEATURES
    assert models.answered.features == QUESTION_FEATURES
    assert models.mentioned.features == ARTICLE_FEATURES
    assert 0 < models.answered_cut < 1
    assert models.info["questions"] >= 300 and "seeds_questions_fresh.jsonl" not in models.info["files"]


def test_a_model_fitted_on_other_features_is_refused(tmp_path: Path) -> None:
    raw = json.loads(MODELS_FILE.read_text(encoding="utf-8"))
    raw["sentence"]["features"] = raw["sentence"]["features"][:-1] + ["something_else"]
    path = tmp_path / "models.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelFileError, match="refit it with: python -m bench.train"):
        read_models(path)
    for broken in ("{", json.dumps({"format": "other"}), json.dumps({**raw, "answered_cut": 2})):
        path.write_text(broken, encoding="utf-8")
        with pytest.raises(ModelFileError):
            read_models(path)


def test_a_linear_model_is_a_logistic_function_of_standardised_features() -> None:
    model = LinearModel(("a", "b"), np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([1.0, -1.0]), 0.5)
    x = np.array([[3.0, 1.0], [1.0, 0.0]])
    z = np.array([(3 - 1) / 2 * 1 - 1 + 0.5, 0 + 0.5])
    np.testing.assert_allclose(model.probability(x), 1 / (1 + np.exp(-z)))
    again = LinearModel.from_json(model.to_json(), ("a", "b"), "m")
    np.testing.assert_allclose(again.probability(x), model.probability(x))


def test_confidence_in_words() -> None:
    assert confidence_words(0.9) == "likely answered"
    assert confidence_words(0.6) == "weak"
    assert confidence_words(0.2) == "not answered"
    assert confidence_words(0.42, cut=0.45) == "not answered" and confidence_words(None) == ""


@pytest.fixture(scope="module")
def learned(seeds_index: Settings, real_embedder) -> Searcher:  # type: ignore[no-untyped-def]
    return Searcher.load(replace(seeds_index, verdict="learned"), real_embedder)


@pytest.mark.slow
def test_learned_answers_the_nato_question_and_declines_coffee(learned: Searcher) -> None:
    assert isinstance(learned.models, VerdictModels)
    nato = learned.ask("When did Turkey join NATO?")
    assert nato.answerable and nato.confidence is not None and nato.confidence >= learned.models.answered_cut
    assert nato.lead is not None and "1952" in nato.lead.answer.text
    # Neither "brew" nor "coffee" is anywhere in the collection (issue "round two").
    coffee = learned.ask("How do you brew Turkish coffee?")
    assert not coffee.answerable and coffee.lead is None
    assert not any(coffee.answers(h.rank) for h in coffee.hits)


QUESTIONS = ["When did Turkey join NATO?", "Who wrote the column for the T24 news portal?",
             "How many drones did Ukraine buy?", "Why did Turkey buy the S-400?",
             "What is the recipe for baklava?", "Who is NATO's Secretary General?"]


@pytest.mark.slow
@pytest.mark.parametrize("question", QUESTIONS)
def test_verdicts_are_consistent_and_stable_under_harmless_changes(learned: Searcher, question: str) -> None:
    result = learned.ask(question)
    # The banner, the lead and the hits shown as answers agree.
    assert result.answerable == (result.lead is not None)
    assert result.answerable == any(result.answers(h.rank) for h in result.hits)
    body = question.rstrip("?")
    for variant in (f"Please, {body[0].lower()}{body[1:]}??", f"<b>{body}</b>?", f"{body}", f"  {question}  "):
        other = learned.ask(variant)
        assert other.answerable == result.answerable, variant
        assert [h.answer.start for h in other.hits] == [h.answer.start for h in result.hits], variant


@pytest.mark.slow
def test_compare_decides_mentions_with_the_learned_model(learned: Searcher) -> None:
    from retrieval.compare import compare

    comparison = compare(learned, "What do the articles say about the relationship between Turkey and Russia?")
    assert comparison.learned and comparison.threshold == 0.5
    mentioned = [v for v in comparison.articles if v.mentioned]
    assert len(mentioned) >= 3
    for view in comparison.articles:
        assert view.support is not None and view.support.probability is not None
        assert view.mentioned == (view.support.probability >= 0.5)
        if view.hit is not None:
            assert view.hit.answer.text == view.hit.text[view.hit.answer.start - view.hit.start:
                                                         view.hit.answer.end - view.hit.start]


@pytest.mark.slow
def test_the_training_command_reproduces_the_shipped_models() -> None:
    done = run_module("bench.train", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced" in done.stdout
