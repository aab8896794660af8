"""Whether a passage answers the question: one rule, in one place, with its reason.

Every "answered", "weak match" and "mentioned" the user sees comes from :func:`judge`:
the command line's ``answerable`` (``--json``), the Answers view's banner, lead answer and
weak matches, and Compare's "mentioned" / "not mentioned" (the same rule at the stricter
per-article threshold ``settings.mention_relevance``). The reason is said in words, so the
UI can show why a passage counts or not.

The rule: a hit supports an answer when its answer sentence is not a heading, states the
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
from retrieval.types import Hit

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

    def to_json(self) -> dict[str, object]:
        return {"answers": self.supported, "reason": self.reason,
                "similarity": round(self.similarity, 4), "threshold": round(self.threshold, 4)}


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
