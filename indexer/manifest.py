"""The local index's manifests as types: parsed and checked in one place.

A generation's ``manifest.json`` is read into a frozen :class:`Manifest`, a segment's
``segment.json`` into a :class:`SegmentManifest` (docs/index-format.md), by ``from_json``,
which checks every field's presence and type; nothing else looks into the raw JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from indexer.errors import ConfigError
from indexer.settings import ChunkingParams
from indexer.stores.folder import SEGMENT_NAME

FORMAT_NAME = "verbatim-index"
FORMAT_VERSION = 3  # 3: segments (2026-12-01); 2: one set of files a generation
SEGMENT_FORMAT = "verbatim-segment"
SEGMENT_VERSION = 1
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
class FileInfo:
    """Size and sha256 of one file."""

    bytes: int
    sha256: str


def _files(raw: dict[str, Any]) -> dict[str, FileInfo]:
    files = {}
    for name, info in _get(raw, "files", dict).items():
        if not isinstance(info, dict) or not name or name.startswith("/") or ".." in name.split("/"):
            raise ManifestError(f"has a bad entry for file {name!r} in 'files'")
        files[name] = FileInfo(bytes=_count(info, "bytes", f"files[{name!r}]."),
                               sha256=_get(info, "sha256", str, f"files[{name!r}]."))
    return files


def _vector_index(raw: dict[str, Any]) -> dict[str, Any]:
    spec = _get(raw, "vector_index", dict) if "vector_index" in raw else {"type": "flat"}
    if spec.get("type") not in VECTOR_INDEX_TYPES:
        raise ManifestError(f"has vector_index.type {spec.get('type')!r}; valid: {', '.join(VECTOR_INDEX_TYPES)}")
    for key in ("nlist", "nprobe") if spec["type"] == "ivf" else ():
        _count(spec, key, "vector_index.", low=1)
    return dict(spec)


@dataclass(frozen=True)
class SegmentManifest:
    """A segment's ``segment.json``: what it holds, how its vectors are searched, and the
    size and sha256 of each of its files."""

    documents: int
    passages: int
    sentences: int
    dimension: int
    vector_index: dict[str, Any]
    files: dict[str, FileInfo]

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files.values())

    def to_json(self) -> dict[str, Any]:
        return {"format": SEGMENT_FORMAT, "format_version": SEGMENT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, raw: Any) -> "SegmentManifest":
        if not isinstance(raw, dict) or raw.get("format") != SEGMENT_FORMAT:
            raise ManifestError("does not describe a Verbatim index segment")
        if raw.get("format_version") != SEGMENT_VERSION:
            raise ManifestError(f"has segment format version {raw.get('format_version')!r}; this version of "
                                f"Verbatim reads version {SEGMENT_VERSION}")
        return cls(documents=_count(raw, "documents", ""), passages=_count(raw, "passages", ""),
                   sentences=_count(raw, "sentences", ""), dimension=_count(raw, "dimension", "", low=1),
                   vector_index=_vector_index(raw), files=_files(raw))


@dataclass(frozen=True)
class SegmentRef:
    """A segment a generation uses: its folder name, the sha256 of its ``segment.json``,
    and the rows of its documents that are no longer live (removed or replaced since)."""

    name: str
    checksum: str
    removed: tuple[int, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """A generation's ``manifest.json``. Build with :meth:`from_json`; write :meth:`to_json`."""

    model: ModelInfo
    chunking: ChunkingParams
    segments: tuple[SegmentRef, ...]
    documents: int
    passages: int
    sentences: int
    passage_field: str = ""
    versions: dict[str, str | None] = field(default_factory=dict)
    built_at: str = ""
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["segments"] = [{"name": r.name, "checksum": r.checksum, "removed": list(r.removed)}
                           for r in self.segments]
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
        segments = []
        for n, seg in enumerate(_get(raw, "segments", list)):
            if not isinstance(seg, dict):
                raise ManifestError(f"has a segment entry {n} that is not an object")
            name = _get(seg, "name", str, f"segments[{n}].")
            if not SEGMENT_NAME.fullmatch(name):  # a folder directly inside the index, never a path
                raise ManifestError(f"has segments[{n}].name {name[:80]!r}, which is not the name of a segment "
                                    "folder inside the index")
            removed = _get(seg, "removed", list, f"segments[{n}].") if "removed" in seg else []
            if not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in removed):
                raise ManifestError(f"has segments[{n}].removed that is not a list of row numbers")
            segments.append(SegmentRef(name, _get(seg, "checksum", str, f"segments[{n}]."), tuple(removed)))
        versions = _get(raw, "versions", dict) if "versions" in raw else {}
        return cls(
            model=model, chunking=chunking, segments=tuple(segments),
            documents=_count(raw, "documents", ""), passages=_count(raw, "passages", ""),
            sentences=_count(raw, "sentences", ""),
            passage_field=_get(raw, "passage_field", str) if "passage_field" in raw else "",
            versions={str(key): value if isinstance(value, str) else None for key, value in versions.items()},
            built_at=_get(raw, "built_at", str) if "built_at" in raw else "",
        )
