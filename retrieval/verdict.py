"""Whether a passage answers the question: the decisions, in one place, with their reasons.

Every "answered", "weak match" and "mentioned" the user sees comes from here: the command
line's ``answerable`` (``--json``), the Answers view's banner, lead answer and weak
matches, and Compare's "mentioned" / "not mentioned". The reason is said in words, so the
UI can show why a passage counts or not. Two ways decide (``settings.verdict``):

* ``learned`` (the default): the fitted models of :mod:`retrieval.learned` give each
  hit's answer sentence a probability of answering, the question a probability of being
  answered, and each article one of mentioning it; :func:`decide` turns them into
  verdicts (at least 50%), so that a question is answered exactly when one of its first
  :data:`SUPPORT_DEPTH` hits is shown as its answer.
* ``rule`` (the hand rule, kept for comparison): :func:`judge`, below.

The hand rule: a hit supports an answer when its answer sentence is not a heading, states the
kind of answer asked for (a time, a number, a name: :mod:`retrieval.answer`), and is at
least ``threshold`` similar to the question (cosine) — or at least the floor
``settings.min_relevance`` when it also contains half of the question's search terms. For
questions that ask for a number the floor is ``settings.min_relevance_number``: articles
hold many numbers, so "how many X" is often met by a sentence that counts something else.
A question is answered when one of its first :data:`SUPPORT_DEPTH` hits supports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from indexer.settings import Settings
from retrieval.answer import AnswerType
from retrieval.types import Hit, Result

# How many of the first hits decide whether a question is answered.
SUPPORT_DEPTH = 2

_GIVES = {AnswerType.TIME.value: "a date or time", AnswerType.NUMBER.value: "a number",
          AnswerType.PERSON.value: "a person's name"}


@dataclass(frozen=True)
class Support:
    """The verdict on one hit: whether it answers, the similarity that was compared with
    which cut-off, and why, in words."""

    supported: bool
    reason: str
    similarity: float
    threshold: float
    probability: float | None = None  # the learned models' probability (None under the hand rule)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"answers": self.supported, "reason": self.reason,
                                  "similarity": round(self.similarity, 4), "threshold": round(self.threshold, 4)}
        if self.probability is not None:
            out["probability"] = round(self.probability, 4)
        return out


def floor(hit: Hit, settings: Settings) -> float:
    """The lowest similarity that can ever support an answer to the hit's question."""
    low = settings.min_relevance
    if hit.answer_kind == AnswerType.NUMBER.value:
        low = max(low, settings.min_relevance_number)
    return low


def judge(hit: Hit, settings: Settings, threshold: float | None = None) -> Support:
    """Whether ``hit`` supports an answer (see the module docstring for the rule).

    Args:
        hit: a hit of :meth:`retrieval.searcher.Searcher.ask` or of compare.
        settings: the thresholds.
        threshold: the similarity needed (default: the floor); never below the floor.
    """
    low = floor(hit, settings)
    needed = low if threshold is None else max(threshold, low)
    similarity = hit.answer_similarity
    if hit.answer_heading:
        return Support(False, "its closest sentence is a heading, and a heading does not answer",
                       similarity, needed)
    if not hit.answer_typed:
        return Support(False, f"the question asks for {_GIVES.get(hit.answer_kind, 'an answer')}, "
                              "and its closest sentence gives none", similarity, needed)
    if similarity >= needed:
        return Support(True, f"its answer sentence is {similarity:.2f} similar to the question "
                             f"(at least {needed:.2f} needed)", similarity, needed)
    if hit.answer_coverage >= 0.5 and similarity >= low:
        return Support(True, f"its answer sentence holds the question's key terms and is "
                             f"{similarity:.2f} similar (at least {low:.2f} needed)", similarity, low)
    extra = f", or {low:.2f} with the question's key terms" if needed > low else ""
    return Support(False, f"its closest sentence is only {similarity:.2f} similar to the question "
                          f"(at least {needed:.2f} needed{extra})", similarity, needed)


def answered(supports: Sequence[Support]) -> bool:
    """Whether a question is answered, given the verdicts on its hits, best first."""
    return any(s.supported for s in supports[:SUPPORT_DEPTH])


CUT = 0.5  # a learned probability counts from here


def confidence_words(probability: float | None, cut: float = CUT) -> str:
    """The answered probability in words: "likely answered" (70% or more), "weak" (from the
    cut-off to 70%: answered, but the models are unsure), "not answered" (below the cut-off)."""
    if probability is None:
        return ""
    if probability >= max(0.7, cut):
        return "likely answered"
    return "weak" if probability >= cut else "not answered"


def learned_support(hit: Hit, probability: float | None) -> Support:
    """The verdict on a hit whose answer sentence the sentence model scored."""
    if probability is None:
        return Support(False, "it lies beyond the passages the models scored", hit.answer_similarity, CUT, 0.0)
    if hit.answer_heading:
        return Support(False, "its closest sentence is a heading, and a heading does not answer",
                       hit.answer_similarity, CUT, probability)
    verdict = probability >= CUT
    return Support(verdict, f"the models give its answer sentence {probability:.0%} of answering the "
                            f"question ({CUT:.0%} needed)", hit.answer_similarity, CUT, probability)


def decide(hits: Sequence[Hit], probabilities: Sequence[float | None], answered_probability: float,
           answered_cut: float = CUT) -> tuple[bool, tuple[Support, ...]]:
    """The learned verdicts: the question is answered when its probability is at least
    ``answered_cut``; then the best of its first :data:`SUPPORT_DEPTH` hits is its answer
    even if that sentence alone scored under 50% (the question's model vouches for it), so
    the lead answer and the banner always agree."""
    supports = [learned_support(h, p) for h, p in zip(hits, probabilities)]
    answerable = answered_probability >= answered_cut
    first = supports[:SUPPORT_DEPTH]
    if answerable and first and not any(s.supported for s in first):
        best = max(range(len(first)), key=lambda i: first[i].probability or 0.0)
        if not hits[best].answer_heading:
            s = first[best]
            supports[best] = Support(True, f"the question is {answered_probability:.0%} likely answered, and "
                                           f"this is the best of its first passages (its sentence alone "
                                           f"{s.probability or 0:.0%})", s.similarity, s.threshold, s.probability)
        else:
            answerable = False
    return answerable, tuple(supports)


def mention_support(probability: float, similarity: float, question: Result | None = None) -> Support:
    """The learned verdict on whether an article mentions the answer: its probability is at
    least 50%, and the question is answered at all (``question``: its own verdict, the one
    the Answers view shows; when the articles don't answer it, none of them mentions it)."""
    if question is not None and not question.answerable:
        confidence = f" ({question.confidence:.0%} that they do)" if question.confidence is not None else ""
        return Support(False, f"the articles don't seem to answer the question{confidence}", similarity, CUT,
                       probability)
    return Support(probability >= CUT, f"the models give {probability:.0%} that it gives the answer "
                                       f"({CUT:.0%} needed)", similarity, CUT, probability)
