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
        sentence_kinds.npy  uint8 [n_sentences]: 0 body, 1 title, 2 heading (never answers)
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
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import threading
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
from indexer.errors import IndexLockedError, IndexMismatchError, IndexNotFoundError, IndexWriteError
from indexer.manifest import FORMAT_NAME, FORMAT_VERSION, Manifest, ManifestError
from indexer.settings import ChunkingParams
from indexer.types import Document

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
LOCK = ".lock"
DATA_FILES = ("documents.jsonl", "chunks.npy", "sentences.npy", "chunk_vectors.faiss",
              "sentence_vectors.npy")
# Written since 2026-12-01; derived from the texts when an older generation lacks it.
KINDS_FILE = "sentence_kinds.npy"
# Files whose checksums are verified on every load when the index is this small or smaller;
# larger indexes check sizes on load and full checksums with `python -m indexer verify`.
FULL_CHECK_BYTES = 256 * 1024 * 1024
# A generation is a plain folder of the index: "gen-" and letters, digits, ".", "_", "-".
GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


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
    index_dir = Path(index_dir)
    name = _pointer_or_none(index_dir)
    candidates = [name] if name else [g.name for g in reversed(generations(index_dir))]
    for candidate in candidates:
        try:
            with (index_dir / candidate / "documents.jsonl").open(encoding="utf-8") as f:
                return [str(json.loads(line)["source"]) for line in f]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return []


def rebuild_hint(index_dir: Path | str) -> str:
    """"Rebuild it with: <command>" naming the indexed articles where they are known, else
    the seeds with a word on naming your own folders instead."""
    sources = indexed_sources(index_dir)
    command = build_command(index_dir, sources)
    if not sources:
        command += f" {SEEDS_CAVEAT}"
    return f"Rebuild it with: {command}"


def repair_hint(index_dir: Path | str) -> str:
    """What to run about a damaged index: the repair command when some generation of it
    may still be intact, and the rebuild command."""
    index_dir = Path(index_dir)
    flag = "" if str(index_dir) == "index" else f" --index {shlex.quote(str(index_dir))}"
    # Another generation than the (damaged) one CURRENT names may still be intact.
    others = [g for g in generations(index_dir) if g.name != _pointer_or_none(index_dir)]
    restore = f"Restore its newest intact generation with: python -m indexer repair{flag}; or r" if others else "R"
    return f"{restore}{rebuild_hint(index_dir)[1:]}"


@dataclass(frozen=True)
class IndexData:
    """Everything a loaded index holds. Arrays may be memory-mapped (read-only)."""

    path: Path
    manifest: Manifest
    documents: tuple[Document, ...]
    chunks: np.ndarray  # int64 [n, 5]: doc, start, end, sent_lo, sent_hi
    sentences: np.ndarray  # int64 [m, 3]: doc, start, end
    chunk_index: faiss.Index
    sentence_vectors: np.ndarray  # float32 [m, dim], unit rows
    bm25: bm25s.BM25
    sentence_bm25: bm25s.BM25
    sentence_kinds: np.ndarray  # uint8 [m]: indexer.chunking BODY, TITLE or HEADING

    @property
    def chunking(self) -> ChunkingParams:
        return self.manifest.chunking


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


# --------------------------------------------------------------------------- write errors

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def write_error(index_dir: Path, exc: BaseException) -> IndexWriteError:
    """The message for a failed write into ``index_dir`` (the existing index is intact)."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in _FULL or "No space left" in text or "Disk quota" in text:
        return IndexWriteError(
            f"There is not enough free disk space to write the index in {index_dir} ({text}). "
            "Free some space, or use --index (VERBATIM_INDEX_DIR) on another disk, and run the "
            "command again; the existing index is unchanged.")
    if code in _READ_ONLY or "Read-only file system" in text or "Permission denied" in text:
        return IndexWriteError(
            f"The index folder {index_dir} is not writable ({text}). Make it writable, or use "
            "--index (VERBATIM_INDEX_DIR) with a folder you can write; the existing index is "
            "unchanged.")
    return IndexWriteError(f"Cannot write the index in {index_dir} ({type(exc).__name__}: {text}). "
                           "Check the folder and the disk, and run the command again; the existing "
                           "index is unchanged.")


def check_free_space(index_dir: Path, needed: int) -> None:
    """Refuse to start a write that cannot fit: ``needed`` bytes (an estimate of the new
    generation) must be free on the index's file system, before anything is embedded.

    Raises:
        IndexWriteError: naming the space needed and free.
    """
    probe = index_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell: the write itself reports a full disk
    if free < needed:
        raise IndexWriteError(
            f"There is not enough free disk space in {index_dir}: the new index needs about "
            f"{needed / 1e6:,.1f} MB and {free / 1e6:,.1f} MB are free. Free some space, or use "
            "--index (VERBATIM_INDEX_DIR) on another disk, and run the command again; the "
            "existing index is unchanged.")


@contextlib.contextmanager
def write_lock(index_dir: Path, wait_seconds: float = 10.0) -> Iterator[None]:
    """Hold the index's writer lock; wait up to ``wait_seconds`` for another writer.

    Raises:
        IndexLockedError: another process kept the lock for longer.
        IndexWriteError: the folder cannot be written (read-only, full).
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = (index_dir / LOCK).open("a")
    except OSError as exc:
        raise write_error(index_dir, exc) from exc
    with handle:
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


# --------------------------------------------------------------------------- generations

def generations(index_dir: Path) -> list[Path]:
    """The generation folders of an index, oldest first (their names begin with the time
    they were written)."""
    try:
        entries = list(Path(index_dir).iterdir())
    except OSError:
        return []
    return sorted((p for p in entries if GENERATION_NAME.fullmatch(p.name)
                   and p.is_dir() and not p.is_symlink()), key=lambda p: p.name)


def _damaged(index_dir: Path, problem: str) -> IndexMismatchError:
    return IndexMismatchError(f"The index at {index_dir} is damaged: {problem}. Nothing was changed. "
                              f"{repair_hint(index_dir)}")


def read_pointer(index_dir: Path) -> str | None:
    """The name of the live generation that ``CURRENT`` holds, checked; None when there is
    no index at all (no ``CURRENT`` and no generation).

    ``CURRENT`` must be a plain file holding one generation name (``gen-…``, a folder
    directly inside the index, not a link) whose folder has a manifest.

    Raises:
        IndexMismatchError: ``CURRENT`` is missing beside generations, unreadable, not text,
            names something that is not a generation of this index, or a missing one.
    """
    pointer = index_dir / CURRENT
    if not os.path.lexists(pointer):
        if generations(index_dir):
            raise _damaged(index_dir, f"its {CURRENT} file is missing, but it holds generation folders")
        return None
    if pointer.is_symlink() or not pointer.is_file():
        raise _damaged(index_dir, f"{CURRENT} is not a plain file")
    try:
        with pointer.open("rb") as f:
            raw = f.read(4096)
    except OSError as exc:
        raise _damaged(index_dir, f"{CURRENT} cannot be read ({exc.strerror or exc})") from exc
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _damaged(index_dir, f"{CURRENT} does not hold a generation name (not UTF-8 text)") from None
    if not GENERATION_NAME.fullmatch(name):
        raise _damaged(index_dir, f"{CURRENT} holds {name[:80]!r}, which is not the name of a "
                                  "generation folder inside the index")
    gen = index_dir / name
    if gen.is_symlink() or not (gen / MANIFEST).is_file():
        raise _damaged(index_dir, f"{CURRENT} names {name}, which is missing or has no {MANIFEST}")
    return name


def _pointer_or_none(index_dir: Path) -> str | None:
    """Best effort, for messages: the generation ``CURRENT`` names when it is usable."""
    try:
        name = (index_dir / CURRENT).read_bytes()[:4096].decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if GENERATION_NAME.fullmatch(name) and (index_dir / name).is_dir() else None


# The generations this process made current (the command line's Ctrl-C message says
# whether the index was already updated).
SWITCHED: list[str] = []


@contextlib.contextmanager
def _no_ctrl_c() -> Iterator[None]:
    """Hold Ctrl-C back (main thread only) while the switch and its record happen together."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _write_pointer(index_dir: Path, name: str) -> None:
    """Point ``CURRENT`` at generation ``name``: written aside, fsynced, then renamed over
    it (the atomic switch). A damaged ``CURRENT`` that is a folder is moved aside first
    (``.CURRENT.damaged-…``), not deleted."""
    pointer = index_dir / f".{CURRENT}.tmp-{os.getpid()}"
    target = index_dir / CURRENT
    if target.is_dir() and not target.is_symlink():
        os.rename(target, index_dir / f".{CURRENT}.damaged-{time.time_ns()}")
    try:
        with pointer.open("w", encoding="utf-8") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        with _no_ctrl_c():
            os.replace(pointer, target)
            SWITCHED.append(name)
    except BaseException:
        with contextlib.suppress(OSError):
            pointer.unlink()
        raise


def write_index(
    index_dir: Path,
    *,
    documents: list[Document],
    chunks: np.ndarray,
    sentences: np.ndarray,
    sentence_kinds: np.ndarray,
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

    Raises:
        IndexWriteError: the folder is read-only or the disk is full (nothing changed).
    """
    try:
        previous: str | None = read_pointer(index_dir)
        known = True
    except IndexMismatchError:
        previous, known = None, False  # a damaged pointer: keep every generation there is
    now = time.time_ns()  # one reading: names sort in the order generations were written
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now // 10**9))}-{now % 10**9:09d}-{os.getpid()}"
    tmp = index_dir / f".tmp-{name}"
    gen = index_dir / name
    live = False
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        with (tmp / "documents.jsonl").open("w", encoding="utf-8") as f:
            for doc in documents:
                f.write(json.dumps(asdict(doc), ensure_ascii=False) + "\n")
        np.save(tmp / "chunks.npy", np.ascontiguousarray(chunks, dtype=np.int64))
        np.save(tmp / "sentences.npy", np.ascontiguousarray(sentences, dtype=np.int64))
        np.save(tmp / KINDS_FILE, np.ascontiguousarray(sentence_kinds, dtype=np.uint8))
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
        Manifest.from_json(manifest)  # what is written is what a load accepts
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
        _fsync_tree(tmp)
        os.rename(tmp, gen)
        _write_pointer(index_dir, name)  # the atomic switch
        live = True
    except OSError as exc:
        _discard(tmp, gen, live)
        raise write_error(index_dir, exc) from exc
    except BaseException:
        _discard(tmp, gen, live)
        raise
    _remove_old_generations(index_dir, keep={name, previous} if known else None)
    return gen


def _discard(tmp: Path, gen: Path, live: bool) -> None:
    """Remove what a failed write left: its temporary folder, and its generation unless
    ``CURRENT`` already names it."""
    shutil.rmtree(tmp, ignore_errors=True)
    if not live:
        shutil.rmtree(gen, ignore_errors=True)


def _remove_old_generations(index_dir: Path, keep: set[str | None] | None) -> None:
    """Delete leftovers of interrupted writes (``.tmp-*`` folders, ``.CURRENT.tmp-*``
    files) and every generation but those in ``keep``: the new one and the one that was
    live before it (a reader that resolved ``CURRENT`` just before the switch may still be
    loading it). A generation that was never live (a write killed between its rename and
    the switch) is not kept. With ``keep`` None (the old pointer was damaged, so which
    generation was live is unknown), no generation is deleted."""
    for path in list(index_dir.iterdir()):
        if path.name.startswith(".tmp-"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f".{CURRENT}.tmp-"):
            with contextlib.suppress(OSError):
                path.unlink()
    if keep is None:
        return
    for path in generations(index_dir):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def current_generation(index_dir: Path) -> Path:
    """The folder of the live generation.

    Raises:
        IndexNotFoundError: there is no index at ``index_dir``.
        IndexMismatchError: ``CURRENT`` is damaged or names a folder that is missing.
    """
    name = read_pointer(index_dir)
    if name is None:
        raise IndexNotFoundError(
            f"No index at {index_dir}. Build it with: {build_command(index_dir)} {SEEDS_CAVEAT}"
        )
    return index_dir / name


def read_manifest(index_dir: Path, gen: Path | None = None) -> Manifest:
    """The parsed and checked manifest of generation ``gen`` (default: the current one).

    Raises:
        IndexNotFoundError: no index.
        IndexMismatchError: the manifest is unreadable, of another format or version, or
            malformed (a missing field, a wrong type), naming the rebuild command.
    """
    gen = current_generation(index_dir) if gen is None else gen
    try:
        raw = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(
            f"The index manifest at {gen / MANIFEST} cannot be read ({exc}). "
            f"{repair_hint(index_dir)}"
        ) from exc
    try:
        return Manifest.from_json(raw)
    except ManifestError as exc:
        what = (f"{index_dir} does not hold a Verbatim index" if "Verbatim index" in str(exc)
                else f"The index manifest at {gen / MANIFEST} {exc}")
        raise IndexMismatchError(f"{what}. {repair_hint(index_dir)}") from exc


# The data files every generation has, besides the two BM25 folders.
_BM25_FOLDERS = ("bm25/", "bm25_sentences/")


def verify_files(gen: Path, manifest: Manifest, index_dir: Path, *, full: bool) -> None:
    """Check every file the manifest lists: present, same size, and (``full``) same sha256;
    and that it lists every data file.

    Raises:
        IndexMismatchError: naming the first bad file and the rebuild command.
    """
    listed = set(manifest.files)
    missing = [f for f in DATA_FILES if f not in listed] + [
        d for d in _BM25_FOLDERS if not any(name.startswith(d) for name in listed)]
    if missing:
        raise IndexMismatchError(f"The index manifest at {gen / MANIFEST} does not list {missing[0]}. "
                                 f"{repair_hint(index_dir)}")
    for rel, meta in manifest.files.items():
        path = gen / rel
        problem = None
        if not path.is_file():
            problem = "is missing"
        elif path.stat().st_size != meta.bytes:
            problem = f"has {path.stat().st_size} bytes, the manifest says {meta.bytes} (truncated?)"
        elif full and sha256_file(path) != meta.sha256:
            problem = "does not match its checksum (corrupt)"
        if problem:
            raise IndexMismatchError(f"Index file {rel} {problem}. {repair_hint(index_dir)}")


_DOCUMENT_FIELDS = {"doc_id": str, "title": str, "source": str, "text": str, "sha256": str}
_OPTIONAL_FIELDS = ("url", "date", "note")


def _document(line: str) -> Document:
    raw = json.loads(line)
    if not isinstance(raw, dict):
        raise ValueError("a documents.jsonl line is not a JSON object")
    for key, kind in _DOCUMENT_FIELDS.items():
        if not isinstance(raw.get(key), kind):
            raise ValueError(f"a document's {key!r} is missing or not a string")
    for key in _OPTIONAL_FIELDS:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ValueError(f"a document's {key!r} is not a string")
    unknown = set(raw) - set(_DOCUMENT_FIELDS) - set(_OPTIONAL_FIELDS)
    if unknown:
        raise ValueError(f"a document has the unknown field {sorted(unknown)[0]!r}")
    return Document(**raw)


def _check_shapes(manifest: Manifest, documents: tuple[Document, ...], chunks: np.ndarray,
                  sentences: np.ndarray, chunk_index: faiss.Index, sentence_vectors: np.ndarray) -> str | None:
    """What is inconsistent between the arrays and the manifest, or None: counts, shapes,
    the vector dimension, and every row's document, offsets and sentence range."""
    dim = manifest.model.dimension
    corpus = manifest.corpus
    if (len(documents), len(chunks), len(sentences)) != (corpus.documents, corpus.chunks, corpus.sentences):
        return "counts differ from its manifest"
    if chunks.ndim != 2 or chunks.shape[1] != 5 or sentences.ndim != 2 or sentences.shape[1] != 3:
        return "the passage or sentence table has the wrong shape"
    if chunks.dtype != np.int64 or sentences.dtype != np.int64:
        return "the passage or sentence table has the wrong type"
    if chunk_index.d != dim or chunk_index.ntotal != len(chunks):
        return (f"the passage vectors have {chunk_index.d} dimensions and {chunk_index.ntotal} rows; "
                f"the manifest says {dim} and {len(chunks)}")
    if sentence_vectors.dtype != np.float32 or sentence_vectors.shape != (len(sentences), dim):
        return (f"the sentence vectors have shape {tuple(sentence_vectors.shape)}; the manifest says "
                f"({len(sentences)}, {dim})")
    lengths = np.array([len(d.text) for d in documents], dtype=np.int64)
    c, t = np.asarray(chunks), np.asarray(sentences)
    for rows, what in ((c, "passage"), (t, "sentence")):
        if len(rows) and not (
                (rows[:, 0] >= 0).all() and (rows[:, 0] < len(documents)).all()
                and (rows[:, 1] >= 0).all() and (rows[:, 1] <= rows[:, 2]).all()
                and (rows[:, 2] <= lengths[np.clip(rows[:, 0], 0, max(len(documents) - 1, 0))]).all()):
            return f"a {what} row points outside its article"
    if len(c) and not ((c[:, 3] >= 0).all() and (c[:, 3] < c[:, 4]).all() and (c[:, 4] <= len(t)).all()
                       and (t[c[:, 3], 0] == c[:, 0]).all() and (t[c[:, 4] - 1, 0] == c[:, 0]).all()
                       and (t[c[:, 3], 1] == c[:, 1]).all() and (t[c[:, 4] - 1, 2] == c[:, 2]).all()):
        return "a passage's sentence range does not match its offsets"
    return None


def load_index(index_dir: str | Path, *, mmap: bool = True, full_check: bool | None = None,
               generation: str | None = None) -> IndexData:
    """Load the current generation (or ``generation``) after checking its manifest, files,
    shapes and rows.

    ``full_check`` compares every file's sha256 with the manifest (default: only when the
    index is at most ``FULL_CHECK_BYTES``; sizes are always compared).

    Raises:
        IndexNotFoundError, IndexMismatchError: with the command that fixes it.
    """
    index_dir = Path(index_dir)
    gen = index_dir / generation if generation else current_generation(index_dir)
    manifest = read_manifest(index_dir, gen)
    full = manifest.total_bytes <= FULL_CHECK_BYTES if full_check is None else full_check
    verify_files(gen, manifest, index_dir, full=full)
    try:
        with (gen / "documents.jsonl").open(encoding="utf-8") as f:
            documents = tuple(_document(line) for line in f)
        mode = "r" if mmap else None
        chunks = np.load(gen / "chunks.npy", mmap_mode=mode)
        sentences = np.load(gen / "sentences.npy", mmap_mode=mode)
        sentence_vectors = np.load(gen / "sentence_vectors.npy", mmap_mode=mode)
        chunk_index = read_vector_index(gen / "chunk_vectors.faiss", manifest.vector_index, mmap=mmap)
        bm25 = bm25s.BM25.load(str(gen / "bm25"), mmap=mmap, show_progress=False)
        sentence_bm25 = bm25s.BM25.load(str(gen / "bm25_sentences"), mmap=mmap, show_progress=False)
        kinds = (np.load(gen / KINDS_FILE) if KINDS_FILE in manifest.files
                 else _derived_kinds(documents, np.asarray(sentences)))
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise IndexMismatchError(
            f"The index at {index_dir} cannot be read ({exc}). {repair_hint(index_dir)}"
        ) from exc
    problem = _check_shapes(manifest, documents, chunks, sentences, chunk_index, sentence_vectors)
    if problem is None and (kinds.shape != (len(sentences),) or kinds.dtype != np.uint8):
        problem = "the sentence kinds do not match the sentences"
    if problem:
        raise IndexMismatchError(f"The index at {index_dir} is inconsistent: {problem}. "
                                 f"{repair_hint(index_dir)}")
    return IndexData(gen, manifest, documents, chunks, sentences, chunk_index, sentence_vectors,
                     bm25, sentence_bm25, kinds)


def _derived_kinds(documents: tuple[Document, ...], sentences: np.ndarray) -> np.ndarray:
    """Sentence kinds for a generation written before they were stored (the same rule the
    build applies: :func:`indexer.chunking.sentence_kinds`)."""
    from indexer.chunking import sentence_kinds
    from indexer.types import Span

    kinds = np.zeros(len(sentences), dtype=np.uint8)
    bounds = np.searchsorted(sentences[:, 0], np.arange(len(documents) + 1)) if len(sentences) else []
    for row, doc in enumerate(documents):
        lo, hi = (int(bounds[row]), int(bounds[row + 1])) if len(sentences) else (0, 0)
        spans = [Span(int(s), int(e)) for s, e in sentences[lo:hi, 1:3]]
        kinds[lo:hi] = sentence_kinds(doc.text, spans, doc.title)
    return kinds


def verify_index(index_dir: str | Path) -> list[str]:
    """Fully check an index: manifest, every file's size and sha256, counts, shapes and
    rows, and each article's source file against the indexed content.

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


@dataclass(frozen=True)
class Repair:
    """What :func:`repair_index` did: the generation now live, and whether it switched."""

    generation: str
    switched: bool
    documents: int
    damaged: tuple[str, ...] = ()  # newer generations found damaged and passed over


def repair_index(index_dir: str | Path) -> Repair:
    """Make ``CURRENT`` name the newest fully intact generation, when it names none.

    Nothing is deleted: an intact current generation is left as it is; otherwise every
    generation is checked in full (manifest, checksums, shapes), newest first, and the
    first intact one becomes current (atomically, under the writer lock).

    Raises:
        IndexNotFoundError: no index at all.
        IndexMismatchError: no generation is intact (names the rebuild command).
        IndexLockedError, IndexWriteError: as for any write.
    """
    index_dir = Path(index_dir)
    with write_lock(index_dir):
        try:
            current = read_pointer(index_dir)
        except IndexMismatchError:
            current = None
        else:
            if current is None:
                raise IndexNotFoundError(f"No index at {index_dir}: nothing to repair. Build it "
                                         f"with: {build_command(index_dir)} {SEEDS_CAVEAT}")
        damaged = []
        for gen in reversed(generations(index_dir)):
            try:
                index = load_index(index_dir, full_check=True, generation=gen.name)
            except IndexMismatchError:
                damaged.append(gen.name)
                continue
            if gen.name != current:
                try:
                    _write_pointer(index_dir, gen.name)
                except OSError as exc:
                    raise write_error(index_dir, exc) from exc
            return Repair(gen.name, gen.name != current, len(index.documents), tuple(damaged))
    raise IndexMismatchError(f"No generation of the index at {index_dir} is intact. "
                             f"{rebuild_hint(index_dir)}")
