"""The index manifest as a type: parsed and checked in one place.

``manifest.json`` (docs/index-format.md) is read into a frozen :class:`Manifest` by
:meth:`Manifest.from_json`, which checks every field's presence and type; nothing else
looks into the raw JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from indexer.errors import ConfigError
from indexer.settings import ChunkingParams

FORMAT_NAME = "verbatim-index"
FORMAT_VERSION = 2
VECTOR_INDEX_TYPES = ("flat", "ivf", "hnsw")


class ManifestError(ValueError):
    """A manifest that is not what this version of Verbatim writes (the message says which
    field is wrong and how)."""


def _get(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in raw:
        raise ManifestError(f"lacks {name!r}")
    value = raw[key]
    # bool is an int in Python; a count or size must not be one.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ManifestError(f"has {name!r} of type bool")
    if not isinstance(value, kind):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ManifestError(f"has {name!r} of type {type(value).__name__}, not {expected}")
    return value


def _count(raw: dict[str, Any], key: str, where: str, low: int = 0) -> int:
    value = int(_get(raw, key, int, where))
    if value < low:
        raise ManifestError(f"has {where}{key} = {value}, below {low}")
    return value


@dataclass(frozen=True)
class ModelInfo:
    """The model that computed the vectors."""

    name: str
    dimension: int
    normalized: bool = True
    backend: str = "torch"  # torch, onnx-fp32 or onnx-int8 (indexes from before backends: torch)


@dataclass(frozen=True)
class CorpusInfo:
    """Which documents, and how many rows of each kind, the generation holds."""

    hash: str
    documents: int
    chunks: int
    sentences: int


@dataclass(frozen=True)
class FileInfo:
    """Size and sha256 of one file of the generation."""

    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """One generation's ``manifest.json``. Build with :meth:`from_json`; write :meth:`to_json`."""

    model: ModelInfo
    chunking: ChunkingParams
    vector_index: dict[str, Any]
    corpus: CorpusInfo
    files: dict[str, FileInfo]
    versions: dict[str, str | None] = field(default_factory=dict)
    built_at: str = ""
    sources: tuple[str, ...] = ()
    passage_field: str | None = None
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files.values())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["sources"] = list(self.sources)
        return {"format": out.pop("format"), "format_version": out.pop("format_version"), **out}

    @classmethod
    def from_json(cls, raw: Any) -> "Manifest":
        """Parse and check a manifest read from JSON.

        Raises:
            ManifestError: another format or version, a missing field, a field of the
                wrong type or an impossible value; the message names it.
        """
        if not isinstance(raw, dict):
            raise ManifestError(f"is a JSON {type(raw).__name__}, not an object")
        if raw.get("format") != FORMAT_NAME:
            raise ManifestError("does not describe a Verbatim index")
        if raw.get("format_version") != FORMAT_VERSION:
            raise ManifestError(f"has format version {raw.get('format_version')!r}; this version of "
                                f"Verbatim reads version {FORMAT_VERSION}")
        m = _get(raw, "model", dict)
        model = ModelInfo(
            name=_get(m, "name", str, "model."),
            dimension=_count(m, "dimension", "model.", low=1),
            normalized=_get(m, "normalized", bool, "model.") if "normalized" in m else True,
            backend=_get(m, "backend", str, "model.") if "backend" in m else "torch",
        )
        c = _get(raw, "chunking", dict)
        try:
            chunking = ChunkingParams(min_words=_count(c, "min_words", "chunking."),
                                      max_words=_count(c, "max_words", "chunking."),
                                      overlap_sentences=_count(c, "overlap_sentences", "chunking."))
        except ConfigError as exc:
            raise ManifestError(f"has impossible chunking settings ({exc})") from None
        spec = _get(raw, "vector_index", dict) if "vector_index" in raw else {"type": "flat"}
        if spec.get("type") not in VECTOR_INDEX_TYPES:
            raise ManifestError(f"has vector_index.type {spec.get('type')!r}; valid: "
                                f"{', '.join(VECTOR_INDEX_TYPES)}")
        for key in ("nlist", "nprobe") if spec["type"] == "ivf" else ():
            _count(spec, key, "vector_index.", low=1)
        k = _get(raw, "corpus", dict)
        corpus = CorpusInfo(hash=_get(k, "hash", str, "corpus."),
                            documents=_count(k, "documents", "corpus."),
                            chunks=_count(k, "chunks", "corpus."),
                            sentences=_count(k, "sentences", "corpus."))
        files = {}
        for name, info in _get(raw, "files", dict).items():
            if not isinstance(info, dict) or not name or name.startswith("/") or ".." in name.split("/"):
                raise ManifestError(f"has a bad entry for file {name!r} in 'files'")
            files[name] = FileInfo(bytes=_count(info, "bytes", f"files[{name!r}]."),
                                   sha256=_get(info, "sha256", str, f"files[{name!r}]."))
        versions = _get(raw, "versions", dict) if "versions" in raw else {}
        sources = _get(raw, "sources", list) if "sources" in raw else []
        if not all(isinstance(s, str) for s in sources):
            raise ManifestError("has a 'sources' entry that is not a string")
        return cls(
            model=model, chunking=chunking, vector_index=dict(spec), corpus=corpus, files=files,
            versions={str(key): value if isinstance(value, str) else None for key, value in versions.items()},
            built_at=_get(raw, "built_at", str) if "built_at" in raw else "",
            sources=tuple(sources),
            passage_field=_get(raw, "passage_field", str) if "passage_field" in raw else None,
        )
