"""The on-disk index format: writing it atomically, and loading it with checks.

This module owns the format (see docs/index-format.md). Layout::

    INDEX_DIR/
      CURRENT               name of the live generation, replaced atomically
      .lock                 writers hold an exclusive flock on it
      gen-<time>-<ns>-<pid>/  one complete, immutable index generation (the current one and
                        the one before it are kept)
        manifest.json       format version, model, chunking, corpus hash, versions, checksums
        documents.jsonl     one document a line, with its full source text
        chunks.npy          int64 [n_chunks, 5]: doc row, start, end, first sentence, end sentence
        sentences.npy       int64 [n_sentences, 3]: doc row, start, end
        chunk_vectors.faiss FAISS index of chunk embeddings (inner product): exact up to
                            indexer.ann.EXACT_MAX passages, IVF above (manifest "vector_index")
        sentence_vectors.npy float32 [n_sentences, dim]: sentence embeddings
        bm25/               bm25s index over the chunks (title + text)
        bm25_sentences/     bm25s index over the sentences

A generation is written in a temporary folder, fsynced, renamed into place, and only
then named in ``CURRENT``; readers never see half an index, and the previous
generation stays loadable until the switch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np

from indexer.ann import build_vector_index, read_vector_index, write_vector_index
from indexer.documents import find_files
from indexer.errors import IndexLockedError, IndexMismatchError, IndexNotFoundError
from indexer.settings import ChunkingParams
from indexer.types import Document

FORMAT_NAME = "verbatim-index"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
LOCK = ".lock"
DATA_FILES = ("documents.jsonl", "chunks.npy", "sentences.npy", "chunk_vectors.faiss",
              "sentence_vectors.npy")
# Files whose checksums are verified on every load when the index is this small or smaller;
# larger indexes check sizes on load and full checksums with `python -m indexer verify`.
FULL_CHECK_BYTES = 256 * 1024 * 1024


# Said after a build command that names seeds/ because the indexed articles are unknown.
SEEDS_CAVEAT = "(that indexes the example articles in seeds/; name your own articles' folders instead)"


def build_command(index_dir: Path | str, sources: Iterable[str] = ()) -> str:
    """The command that rebuilds the index at ``index_dir`` from ``sources`` (the indexed
    articles' files, when known; else the seeds). A folder is named instead of its files
    when every article file under it was indexed (never ".": that would take in whatever
    else sits in the working directory).

    >>> build_command("index")
    'python -m indexer build seeds'
    """
    paths = _rebuild_paths(sources) or ["seeds"]
    index_dir = str(index_dir)
    return (f"python -m indexer build {' '.join(shlex.quote(p) for p in paths)}"
            + ("" if index_dir == "index" else f" --index {shlex.quote(index_dir)}"))


def _rebuild_paths(sources: Iterable[str]) -> list[str]:
    by_folder: dict[str, list[str]] = {}
    for source in dict.fromkeys(os.path.normpath(s) for s in sources):
        by_folder.setdefault(os.path.dirname(source), []).append(source)
    indexed = {s for files in by_folder.values() for s in files}
    paths: list[str] = []
    folders: list[str] = []  # named folders (searched recursively by the build)
    for folder, files in sorted(by_folder.items()):
        if any(folder.startswith(f + os.sep) for f in folders):
            continue
        found = find_files([folder])[0] if folder and Path(folder).is_dir() else []
        if found and {os.path.normpath(str(p)) for p in found} <= indexed:
            paths.append(folder)
            folders.append(folder)
        else:
            paths.extend(sorted(files))
    return paths


def indexed_sources(index_dir: Path | str) -> list[str]:
    """Best effort: the source files of the articles in the current index generation, for
    a rebuild hint; empty when they cannot be read."""
    try:
        gen = Path(index_dir) / (Path(index_dir) / CURRENT).read_text(encoding="utf-8").strip()
        with (gen / "documents.jsonl").open(encoding="utf-8") as f:
            return [str(json.loads(line)["source"]) for line in f]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def rebuild_hint(index_dir: Path | str) -> str:
    """"Rebuild it with: <command>" naming the indexed articles where they are known, else
    the seeds with a word on naming your own folders instead."""
    sources = indexed_sources(index_dir)
    command = build_command(index_dir, sources)
    if not sources:
        command += f" {SEEDS_CAVEAT}"
    return f"Rebuild it with: {command}"


@dataclass(frozen=True)
class IndexData:
    """Everything a loaded index holds. Arrays may be memory-mapped (read-only)."""

    path: Path
    manifest: dict[str, Any]
    documents: tuple[Document, ...]
    chunks: np.ndarray  # int64 [n, 5]: doc, start, end, sent_lo, sent_hi
    sentences: np.ndarray  # int64 [m, 3]: doc, start, end
    chunk_index: faiss.Index
    sentence_vectors: np.ndarray  # float32 [m, dim], unit rows
    bm25: bm25s.BM25
    sentence_bm25: bm25s.BM25

    @property
    def chunking(self) -> ChunkingParams:
        return ChunkingParams(**self.manifest["chunking"])


def corpus_hash(docs: list[Document] | tuple[Document, ...]) -> str:
    """A hash of which documents, with which contents, the index holds (order-free)."""
    h = hashlib.sha256()
    for doc_id, sha in sorted((d.doc_id, d.sha256) for d in docs):
        h.update(f"{doc_id}\0{sha}\n".encode())
    return h.hexdigest()


def package_version(package: str) -> str | None:
    """An installed distribution's version from its metadata (no import), or None."""
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Versions recorded in the manifest (read from package metadata: importing
    sentence-transformers would import torch, which the ONNX backends never need)."""
    return {
        "faiss": faiss.__version__,
        "bm25s": bm25s.__version__,
        "numpy": np.__version__,
        "sentence_transformers": package_version("sentence-transformers"),
        "onnxruntime": package_version("onnxruntime"),
    }


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_table(gen: Path) -> dict[str, dict[str, Any]]:
    table = {}
    for path in sorted(p for p in gen.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(gen).as_posix()
        table[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return table


def _fsync_tree(root: Path) -> None:
    for path in [*root.rglob("*"), root]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def write_lock(index_dir: Path, wait_seconds: float = 10.0) -> Iterator[None]:
    """Hold the index's writer lock; wait up to ``wait_seconds`` for another writer.

    Raises:
        IndexLockedError: another process kept the lock for longer.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOCK).open("a") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexLockedError(
                        f"Another process is writing the index at {index_dir}. Wait for it to "
                        "finish and try again (the existing index stays usable meanwhile)."
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_index(
    index_dir: Path,
    *,
    documents: list[Document],
    chunks: np.ndarray,
    sentences: np.ndarray,
    chunk_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    bm25: bm25s.BM25,
    sentence_bm25: bm25s.BM25,
    model: dict[str, Any],
    chunking: ChunkingParams,
    vector_spec: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a new generation and make it current. The caller holds :func:`write_lock`.
    ``vector_spec`` says how the passage vectors are searched
    (:func:`indexer.ann.choose_index`).

    Returns the generation's folder.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}-{os.getpid()}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        with (tmp / "documents.jsonl").open("w", encoding="utf-8") as f:
            for doc in documents:
                f.write(json.dumps(asdict(doc), ensure_ascii=False) + "\n")
        np.save(tmp / "chunks.npy", np.ascontiguousarray(chunks, dtype=np.int64))
        np.save(tmp / "sentences.npy", np.ascontiguousarray(sentences, dtype=np.int64))
        # Vectors are float32, C-contiguous and L2-normalised, so inner product is cosine.
        index = build_vector_index(np.ascontiguousarray(chunk_vectors, dtype=np.float32)
                                   .reshape(-1, int(model["dimension"])), vector_spec)
        write_vector_index(index, tmp / "chunk_vectors.faiss")
        np.save(tmp / "sentence_vectors.npy", np.ascontiguousarray(sentence_vectors, dtype=np.float32))
        bm25.save(str(tmp / "bm25"), show_progress=False)
        sentence_bm25.save(str(tmp / "bm25_sentences"), show_progress=False)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model": model,
            "chunking": asdict(chunking),
            "vector_index": vector_spec,
            "corpus": {
                "hash": corpus_hash(documents),
                "documents": len(documents),
                "chunks": int(len(chunks)),
                "sentences": int(len(sentences)),
            },
            "versions": library_versions(),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": _file_table(tmp),
            **(extra or {}),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
        _fsync_tree(tmp)
        gen = index_dir / name
        os.rename(tmp, gen)
        pointer = index_dir / f".{CURRENT}.tmp-{os.getpid()}"
        pointer.write_text(name + "\n", encoding="utf-8")
        with pointer.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(pointer, index_dir / CURRENT)  # the atomic switch
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_old_generations(index_dir, keep=name)
    return gen


def _remove_old_generations(index_dir: Path, keep: str) -> None:
    """Delete leftovers and all generations but the new one and the one before it (a
    reader that resolved ``CURRENT`` just before the switch may still be loading it)."""
    generations = sorted((p for p in index_dir.iterdir() if p.name.startswith("gen-")),
                         key=lambda p: p.stat().st_mtime_ns)
    previous = [p.name for p in generations if p.name != keep][-1:]
    for path in index_dir.iterdir():
        if path.name in (keep, *previous):
            continue
        if path.name.startswith("gen-") or path.name.startswith(".tmp-"):
            shutil.rmtree(path, ignore_errors=True)


def current_generation(index_dir: Path) -> Path:
    """The folder of the live generation.

    Raises:
        IndexNotFoundError: there is no index at ``index_dir``.
        IndexMismatchError: ``CURRENT`` names a folder that is missing.
    """
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        raise IndexNotFoundError(
            f"No index at {index_dir}. Build it with: {build_command(index_dir)} {SEEDS_CAVEAT}"
        )
    gen = index_dir / pointer.read_text(encoding="utf-8").strip()
    if not (gen / MANIFEST).is_file():
        raise IndexMismatchError(
            f"The index at {index_dir} is damaged (missing {gen.name}/{MANIFEST}). "
            f"{rebuild_hint(index_dir)}"
        )
    return gen


def read_manifest(index_dir: Path, gen: Path | None = None) -> dict[str, Any]:
    """The manifest of generation ``gen`` (default: the current one)."""
    gen = current_generation(index_dir) if gen is None else gen
    try:
        manifest: dict[str, Any] = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(
            f"The index manifest at {gen / MANIFEST} cannot be read ({exc}). "
            f"{rebuild_hint(index_dir)}"
        ) from exc
    return manifest


def check_manifest(manifest: dict[str, Any], index_dir: Path) -> None:
    """Refuse an index of another format or version, naming the rebuild command."""
    problem = None
    if manifest.get("format") != FORMAT_NAME:
        problem = f"{index_dir} does not hold a Verbatim index."
    elif manifest.get("format_version") != FORMAT_VERSION:
        problem = (f"The index at {index_dir} has format version {manifest.get('format_version')}; "
                   f"this version of Verbatim reads version {FORMAT_VERSION}.")
    else:
        missing = [key for key in ("model", "chunking", "corpus", "files") if key not in manifest]
        if missing:
            problem = f"The index manifest at {index_dir} lacks {missing[0]!r}."
    if problem:
        raise IndexMismatchError(f"{problem} {rebuild_hint(index_dir)}")


def verify_files(gen: Path, manifest: dict[str, Any], index_dir: Path, *, full: bool) -> None:
    """Check every file the manifest lists: present, same size, and (``full``) same sha256.

    Raises:
        IndexMismatchError: naming the first bad file and the rebuild command.
    """
    files: dict[str, dict[str, Any]] = manifest["files"]
    for rel, meta in files.items():
        path = gen / rel
        problem = None
        if not path.is_file():
            problem = "is missing"
        elif path.stat().st_size != meta["bytes"]:
            problem = f"has {path.stat().st_size} bytes, the manifest says {meta['bytes']} (truncated?)"
        elif full and sha256_file(path) != meta["sha256"]:
            problem = "does not match its checksum (corrupt)"
        if problem:
            raise IndexMismatchError(
                f"Index file {rel} {problem}. {rebuild_hint(index_dir)}"
            )


def load_index(index_dir: str | Path, *, mmap: bool = True, full_check: bool | None = None) -> IndexData:
    """Load the current generation after checking its manifest and files.

    ``full_check`` compares every file's sha256 with the manifest (default: only when the
    index is at most ``FULL_CHECK_BYTES``; sizes are always compared).

    Raises:
        IndexNotFoundError, IndexMismatchError: with the command that fixes it.
    """
    index_dir = Path(index_dir)
    gen = current_generation(index_dir)
    manifest = read_manifest(index_dir, gen)
    check_manifest(manifest, index_dir)
    total = sum(m["bytes"] for m in manifest["files"].values())
    verify_files(gen, manifest, index_dir, full=total <= FULL_CHECK_BYTES if full_check is None else full_check)
    try:
        with (gen / "documents.jsonl").open(encoding="utf-8") as f:
            documents = tuple(Document(**json.loads(line)) for line in f)
        mode = "r" if mmap else None
        chunks = np.load(gen / "chunks.npy", mmap_mode=mode)
        sentences = np.load(gen / "sentences.npy", mmap_mode=mode)
        sentence_vectors = np.load(gen / "sentence_vectors.npy", mmap_mode=mode)
        spec = manifest.get("vector_index", {"type": "flat"})
        chunk_index = read_vector_index(gen / "chunk_vectors.faiss", spec, mmap=mmap)
        bm25 = bm25s.BM25.load(str(gen / "bm25"), mmap=mmap, show_progress=False)
        sentence_bm25 = bm25s.BM25.load(str(gen / "bm25_sentences"), mmap=mmap, show_progress=False)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise IndexMismatchError(
            f"The index at {index_dir} cannot be read ({exc}). "
            f"{rebuild_hint(index_dir)}"
        ) from exc
    corpus = manifest["corpus"]
    if (len(documents), len(chunks), len(sentences)) != (
        corpus["documents"], corpus["chunks"], corpus["sentences"]
    ) or chunk_index.ntotal != len(chunks) or len(sentence_vectors) != len(sentences):
        raise IndexMismatchError(
            f"The index at {index_dir} is inconsistent (counts differ from its manifest). "
            f"{rebuild_hint(index_dir)}"
        )
    return IndexData(gen, manifest, documents, chunks, sentences, chunk_index, sentence_vectors,
                     bm25, sentence_bm25)


def verify_index(index_dir: str | Path) -> list[str]:
    """Fully check an index: manifest, every file's size and sha256, counts, and each
    article's source file against the indexed content.

    Returns:
        Warnings about source files that changed or disappeared since indexing (the index
        itself is still intact; ``python -m indexer add`` picks up the changes).

    Raises:
        IndexNotFoundError, IndexMismatchError: the index is missing or damaged.
    """
    index = load_index(index_dir, full_check=True)
    warnings = []
    for doc in index.documents:
        source = Path(doc.source)
        if not source.is_file():
            warnings.append(f"{doc.doc_id}: source file {doc.source} is missing (the index keeps "
                            "its text; citations still work)")
        elif sha256_file(source) != doc.sha256:
            warnings.append(f"{doc.doc_id}: source file {doc.source} changed since it was indexed; "
                            f"update it with: python -m indexer add {doc.source}")
    return warnings
