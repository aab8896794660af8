"""The learned decisions: which sentence answers, whether a question is answered, whether an
article mentions it. Small logistic models over :mod:`retrieval.features`.

The fitted parameters are a small JSON file in the repository
(``retrieval/data/verdict_models.json``), written by ``python -m bench.train`` from the
labelled seed questions (which reproduces it exactly) and read here: no training at run
time, no pickle, nothing but numpy. A model file that names features other than the ones
:mod:`retrieval.features` computes is refused (the hand rule is used instead, with a
warning).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.features import ARTICLE_FEATURES, QUESTION_FEATURES, SENTENCE_FEATURES

MODELS_FILE = Path(__file__).resolve().parent / "data" / "verdict_models.json"
FORMAT = "verbatim-verdict-models"
VERSION = 1
EXPECTED = {"sentence": SENTENCE_FEATURES, "answered": QUESTION_FEATURES, "mentioned": ARTICLE_FEATURES}


class ModelFileError(ValueError):
    """A model file that cannot be used (the message says why)."""


@dataclass(frozen=True)
class LinearModel:
    """A logistic model: P = 1 / (1 + exp(-(((x - mean) / scale) @ coef + intercept)))."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def probability(self, rows: np.ndarray) -> np.ndarray:
        """P(positive) for each row of ``rows`` ``[n, len(features)]``."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(self.features))
        z = ((rows - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": [round(float(x), 8) for x in self.mean],
                "scale": [round(float(x), 8) for x in self.scale],
                "coef": [round(float(x), 8) for x in self.coef], "intercept": round(float(self.intercept), 8)}

    @classmethod
    def from_json(cls, raw: Any, expected: tuple[str, ...], name: str) -> "LinearModel":
        if not isinstance(raw, dict):
            raise ModelFileError(f"model {name!r} is not an object")
        features = tuple(raw.get("features", ()))
        if features != expected:
            raise ModelFileError(f"model {name!r} was fitted on other features than this version computes; "
                                 "refit it with: python -m bench.train")
        arrays = [np.asarray(raw.get(k), dtype=np.float64) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(features),) for a in arrays) or not np.all(arrays[1] > 0):
            raise ModelFileError(f"model {name!r} has parameters of the wrong shape")
        return cls(features, arrays[0], arrays[1], arrays[2], float(raw.get("intercept", 0.0)))


@dataclass(frozen=True)
class VerdictModels:
    """The three fitted models, and what they were fitted on."""

    sentence: LinearModel
    answered: LinearModel
    mentioned: LinearModel
    # The question counts as answered from this probability on: the highest cut-off at which
    # cross-validation wrongly flagged at most 1 answerable question in 20 (bench/train.py).
    answered_cut: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "answered_cut": self.answered_cut, "info": self.info,
                **{name: getattr(self, name).to_json() for name in EXPECTED}}

    @classmethod
    def from_json(cls, raw: Any) -> "VerdictModels":
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("version") != VERSION:
            raise ModelFileError(f"not a {FORMAT} file of version {VERSION}")
        models = {name: LinearModel.from_json(raw.get(name), expected, name) for name, expected in EXPECTED.items()}
        cut = raw.get("answered_cut", 0.5)
        if not isinstance(cut, (int, float)) or not 0 < cut < 1:
            raise ModelFileError("answered_cut must be a probability between 0 and 1")
        return cls(**models, answered_cut=float(cut), info=dict(raw.get("info") or {}))


def read_models(path: Path | str) -> VerdictModels:
    """Read a model file.

    Raises:
        ModelFileError: unreadable, of another format, or fitted on other features.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read {path} ({exc})") from exc
    return VerdictModels.from_json(raw)


@lru_cache(maxsize=4)
def shipped_models(path: str = str(MODELS_FILE)) -> VerdictModels | None:
    """The models shipped with Verbatim, or None (with a warning) when the file is missing
    or unusable: the hand rule decides then."""
    try:
        return read_models(path)
    except ModelFileError as exc:
        logging.getLogger("verbatim").warning("The learned verdict models are not used (%s); "
                                              "deciding with the hand rule.", exc)
        return None
