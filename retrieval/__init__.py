"""Query time: load the index, answer questions with exactly cited passages."""

from retrieval.fusion import rrf_fuse
from retrieval.searcher import RankMode, Searcher, check_question
from retrieval.types import AnswerSpan, Hit, Result

__all__ = ["AnswerSpan", "Hit", "RankMode", "Result", "Searcher", "check_question", "rrf_fuse"]
