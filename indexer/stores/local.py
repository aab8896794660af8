"""The local store: an index in a folder — FAISS, BM25 postings, numpy — the embedded default.

Layout (docs/index-format.md has every file)::

    INDEX_DIR/
      CURRENT          the live generation's name, replaced atomically
      .lock            writers hold an exclusive flock on it
      gen-…/           a generation: manifest.json lists its segments, and which
                       documents of each are no longer live (removed or replaced)
      seg-…/           an immutable segment: some documents with their texts, passages,
                       sentences, vectors (FAISS, numpy) and BM25 postings

Adding articles writes one small segment and a new generation that lists it beside the
others, so an add does not rewrite the index; removing writes only a generation. Lexical
scoring is Lucene's BM25 over term-frequency postings with the statistics of all live
segments together (documents, average length, document frequency), so any sequence of
adds and removes answers exactly as a fresh build of the same articles; bm25s's own index
precomputes scores with one segment's statistics and could not be combined. Segments are
merged when there get to be many of them (:data:`MAX_SEGMENTS`) or on ``python -m indexer
compact``. A query scores only the postings of its terms and only the sentences of its
candidate passages; document texts are read from a memory-mapped file when asked for.
"""

from __future__ import annotations

import json
import math
import mmap
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from indexer.ann import build_vector_index, choose_index, read_vector_index, write_vector_index
from indexer.errors import IndexLockedError, IndexMismatchError, IndexNotFoundError
from indexer.lexical import BM25_PARAMS, analyze
from indexer.manifest import FileInfo, Manifest, ManifestError, SegmentManifest, SegmentRef
from indexer.stores.base import (
    Change, DocumentInfo, LexicalQuery, Passage, Sentence, StoreInfo, StoredDocument, TermCounts, document_key,
    moved_on_message, parse_id, passage_id, sentence_id,
)
from indexer.stores.folder import (
    FULL_CHECK_BYTES, MANIFEST, SEEDS_CAVEAT, SWITCHED, build_command, index_flag, source_warnings, check_free_space, file_table,
    fsync_tree, generations, library_versions, new_name, read_pointer, rebuild_hint, remove_unused,
    repair_hint, sha256_file, write_error, write_lock, write_pointer,
)
from indexer.types import Document

SEGMENT_MANIFEST = "segment.json"
# Merge segments when a generation would list more than this many (all but the largest,
# while they are small beside it; all of them otherwise).
MAX_SEGMENTS = 10
# ... and compact everything when this share of a generation's passages is removed ones.
MAX_REMOVED_SHARE = 0.25
K1, B = BM25_PARAMS["k1"], BM25_PARAMS["b"]
BODY = 0  # indexer.chunking.BODY (not imported: query time does not load the chunker)


# --------------------------------------------------------------------------- postings

@dataclass(frozen=True)
class Postings:
    """One BM25 index: for each term, the rows that hold it and how often; each row's length."""

    vocab: dict[str, int]
    indptr: np.ndarray  # int64 [terms + 1]
    rows: np.ndarray  # int32 [postings], ascending within a term
    tf: np.ndarray  # int32 [postings]
    lengths: np.ndarray  # int32 [rows]

    FILES = ("vocab.json", "indptr.npy", "rows.npy", "tf.npy", "lengths.npy")

    @classmethod
    def build(cls, tokens: Sequence[Sequence[str]]) -> "Postings":
        vocab: dict[str, int] = {}
        term_rows: list[list[int]] = []
        term_tf: list[list[int]] = []
        for row, toks in enumerate(tokens):
            counts: dict[str, int] = {}
            for t in toks:
                counts[t] = counts.get(t, 0) + 1
            for t, n in counts.items():
                i = vocab.setdefault(t, len(vocab))
                if i == len(term_rows):
                    term_rows.append([])
                    term_tf.append([])
                term_rows[i].append(row)
                term_tf[i].append(n)
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r) for r in term_rows])
        rows = np.array([r for rs in term_rows for r in rs], dtype=np.int32)
        tf = np.array([n for ns in term_tf for n in ns], dtype=np.int32)
        lengths = np.array([len(t) for t in tokens], dtype=np.int32)
        return cls(vocab, indptr, rows, tf, lengths)

    def save(self, folder: Path, prefix: str) -> None:
        (folder / f"{prefix}.vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        for name, array in (("indptr", self.indptr), ("rows", self.rows), ("tf", self.tf), ("lengths", self.lengths)):
            np.save(folder / f"{prefix}.{name}.npy", array)

    @classmethod
    def load(cls, folder: Path, prefix: str) -> "Postings":
        vocab = json.loads((folder / f"{prefix}.vocab.json").read_text(encoding="utf-8"))
        if not isinstance(vocab, dict):
            raise ValueError(f"{prefix}.vocab.json is not a term table")
        # Plain ndarray views of the memory maps: no copy, and indexing without np.memmap's overhead.
        arrays = [np.asarray(np.load(folder / f"{prefix}.{n}.npy", mmap_mode="r"))
                  for n in ("indptr", "rows", "tf", "lengths")]
        return cls(vocab, *arrays)

    def term(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows holding ``term``, and its frequency in each."""
        i = self.vocab.get(term)
        if i is None:
            return np.zeros(0, np.int32), np.zeros(0, np.int32)
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        return np.asarray(self.rows[lo:hi]), np.asarray(self.tf[lo:hi])

    @staticmethod
    def files(prefix: str) -> list[str]:
        return [f"{prefix}.{f}" for f in Postings.FILES]


def _bm25(tf: np.ndarray, lengths: np.ndarray, idf: float, avgdl: float) -> np.ndarray:
    """Lucene's BM25 term weight (as bm25s's "lucene" method computes it)."""
    return idf * tf / (K1 * ((1 - B) + B * lengths / avgdl) + tf)


def _idf(n: int, df: float) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


# --------------------------------------------------------------------------- segments

SEGMENT_FILES = ("documents.jsonl", "texts.bin", "passages.npy", "sentences.npy", "sentence_kinds.npy",
                 "passage_vectors.faiss", "sentence_vectors.npy",
                 *Postings.files("passage_terms"), *Postings.files("sentence_terms"))
_DOC_FIELDS = {"doc_id": str, "title": str, "source": str, "sha256": str}


class Segment:
    """An immutable segment, opened read-only (arrays memory-mapped)."""

    def __init__(self, path: Path, manifest: SegmentManifest) -> None:
        self.path, self.manifest, self.name = path, manifest, path.name
        with (path / "documents.jsonl").open(encoding="utf-8") as f:
            self.docs = [_doc_row(line) for line in f]
        # Memory-mapped, as plain ndarray views (np.memmap's per-index overhead dominated queries).
        self.passages = np.asarray(np.load(path / "passages.npy", mmap_mode="r"))
        self.sentences = np.asarray(np.load(path / "sentences.npy", mmap_mode="r"))
        self.kinds = np.asarray(np.load(path / "sentence_kinds.npy", mmap_mode="r"))
        self.index = read_vector_index(path / "passage_vectors.faiss", manifest.vector_index, mmap=True)
        self.sentence_vectors = np.asarray(np.load(path / "sentence_vectors.npy", mmap_mode="r"))
        self.passage_terms = Postings.load(path, "passage_terms")
        self.sentence_terms = Postings.load(path, "sentence_terms")
        size = (path / "texts.bin").stat().st_size
        with (path / "texts.bin").open("rb") as f:
            self._texts: mmap.mmap | bytes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        n = len(self.docs)
        p, s = np.asarray(self.passages), np.asarray(self.sentences)
        self.doc_passages = np.searchsorted(p[:, 0], np.arange(n + 1)) if len(p) else np.zeros(n + 1, np.int64)
        self.doc_sentences = np.searchsorted(s[:, 0], np.arange(n + 1)) if len(s) else np.zeros(n + 1, np.int64)

    def problem(self) -> str | None:
        """What is inconsistent between the arrays and the segment's manifest, or None:
        counts, shapes, the vector dimension, and every row's document, offsets and
        sentence range."""
        m = self.manifest
        p, s = np.asarray(self.passages), np.asarray(self.sentences)
        if (len(self.docs), len(p), len(s)) != (m.documents, m.passages, m.sentences):
            return "counts differ from its manifest"
        if p.ndim != 2 or p.shape[1] != 5 or s.ndim != 2 or s.shape[1] != 3 or p.dtype != np.int64 \
                or s.dtype != np.int64:
            return "the passage or sentence table has the wrong shape or type"
        if self.index.d != m.dimension or self.index.ntotal != len(p):
            return (f"the passage vectors have {self.index.d} dimensions and {self.index.ntotal} rows; the "
                    f"manifest says {m.dimension} and {len(p)}")
        if self.sentence_vectors.dtype != np.float32 or self.sentence_vectors.shape != (len(s), m.dimension):
            return f"the sentence vectors have shape {tuple(self.sentence_vectors.shape)}"
        if self.kinds.shape != (len(s),) or self.kinds.dtype != np.uint8:
            return "the sentence kinds do not match the sentences"
        if len(self.passage_terms.lengths) != len(p) or len(self.sentence_terms.lengths) != len(s):
            return "the BM25 postings do not match the passages or sentences"
        lengths = np.array([d["chars"] for d in self.docs], dtype=np.int64)
        for rows, what in ((p, "passage"), (s, "sentence")):
            if len(rows) and not ((rows[:, 0] >= 0).all() and (rows[:, 0] < len(self.docs)).all()
                                  and (rows[:, 1] >= 0).all() and (rows[:, 1] <= rows[:, 2]).all()
                                  and (rows[:, 2] <= lengths[np.clip(rows[:, 0], 0, max(len(lengths) - 1, 0))]).all()):
                return f"a {what} row points outside its article"
        if len(p) and not ((p[:, 3] >= 0).all() and (p[:, 3] < p[:, 4]).all() and (p[:, 4] <= len(s)).all()
                           and (s[p[:, 3], 0] == p[:, 0]).all() and (s[p[:, 4] - 1, 0] == p[:, 0]).all()
                           and (s[p[:, 3], 1] == p[:, 1]).all() and (s[p[:, 4] - 1, 2] == p[:, 2]).all()):
            return "a passage's sentence range does not match its offsets"
        size = len(self._texts)
        if any(d["text_offset"] + d["text_bytes"] > size for d in self.docs):
            return "a document's text lies outside texts.bin"
        return None

    def text(self, doc_row: int) -> str:
        d = self.docs[doc_row]
        return bytes(self._texts[d["text_offset"]:d["text_offset"] + d["text_bytes"]]).decode("utf-8", "surrogatepass")

    def document(self, doc_row: int) -> Document:
        d = self.docs[doc_row]
        return Document(d["doc_id"], d["title"], d["source"], self.text(doc_row), d["sha256"],
                        d.get("url"), d.get("date"), d.get("note"))

    def key(self, doc_row: int) -> str:
        d = self.docs[doc_row]
        return document_key(d["doc_id"], d["sha256"])

    def passage_row(self, doc_row: int, start: int, end: int) -> int | None:
        lo, hi = int(self.doc_passages[doc_row]), int(self.doc_passages[doc_row + 1])
        starts = np.asarray(self.passages[lo:hi, 1])
        at = int(np.searchsorted(starts, start))
        while at < len(starts) and starts[at] == start:
            if int(self.passages[lo + at, 2]) == end:
                return lo + at
            at += 1
        return None

    def sentence_row(self, doc_row: int, start: int, end: int) -> int | None:
        lo, hi = int(self.doc_sentences[doc_row]), int(self.doc_sentences[doc_row + 1])
        starts = np.asarray(self.sentences[lo:hi, 1])
        at = int(np.searchsorted(starts, start))
        if at < len(starts) and starts[at] == start and int(self.sentences[lo + at, 2]) == end:
            return lo + at
        return None


def _doc_row(line: str) -> dict[str, Any]:
    raw = json.loads(line)
    if not isinstance(raw, dict):
        raise ValueError("a documents.jsonl line is not a JSON object")
    for key, kind in _DOC_FIELDS.items():
        if not isinstance(raw.get(key), kind):
            raise ValueError(f"a document's {key!r} is missing or not a string")
    for key in ("text_offset", "text_bytes", "chars"):
        if not isinstance(raw.get(key), int) or isinstance(raw.get(key), bool) or raw[key] < 0:
            raise ValueError(f"a document's {key!r} is missing or not a count")
    for key in ("url", "date", "note"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ValueError(f"a document's {key!r} is not a string")
    return raw


def write_segment(path: Path, documents: Sequence[StoredDocument], dimension: int, exact_max: int) -> SegmentManifest:
    """Write ``documents`` as a new segment folder at ``path`` (which must not exist):
    everything in a temporary folder, checksummed, fsynced, then renamed into place."""
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.mkdir()
    try:
        docs = sorted(documents, key=lambda d: d.document.doc_id)
        passages: list[tuple[int, int, int, int, int]] = []
        sentences: list[tuple[int, int, int]] = []
        kinds: list[int] = []
        p_vectors: list[np.ndarray] = []
        s_vectors: list[np.ndarray] = []
        p_fields: list[str] = []
        s_texts: list[str] = []
        offset = 0
        with (tmp / "documents.jsonl").open("w", encoding="utf-8") as meta, (tmp / "texts.bin").open("wb") as texts:
            for row, stored in enumerate(docs):
                doc = stored.document
                data = doc.text.encode("utf-8", "surrogatepass")
                texts.write(data)
                meta.write(json.dumps({"doc_id": doc.doc_id, "title": doc.title, "source": doc.source,
                                       "sha256": doc.sha256, "url": doc.url, "date": doc.date, "note": doc.note,
                                       "text_offset": offset, "text_bytes": len(data), "chars": len(doc.text)},
                                      ensure_ascii=False) + "\n")
                offset += len(data)
                base = len(sentences)
                for s in stored.sentences:
                    sentences.append((row, s.start, s.end))
                    kinds.append(s.kind)
                    s_vectors.append(s.vector)
                    s_texts.append(s.text)
                for p in stored.passages:
                    passages.append((row, p.start, p.end, base + p.first_sentence, base + p.end_sentence))
                    p_vectors.append(p.vector)
                    p_fields.append(p.field_text)
        np.save(tmp / "passages.npy", np.array(passages, dtype=np.int64).reshape(-1, 5))
        np.save(tmp / "sentences.npy", np.array(sentences, dtype=np.int64).reshape(-1, 3))
        np.save(tmp / "sentence_kinds.npy", np.array(kinds, dtype=np.uint8))
        # Vectors are float32, C-contiguous and L2-normalised, so inner product is cosine.
        pv = np.ascontiguousarray(np.array(p_vectors, dtype=np.float32).reshape(-1, dimension))
        spec = choose_index(len(pv), dimension, exact_max)
        write_vector_index(build_vector_index(pv, spec), tmp / "passage_vectors.faiss")
        np.save(tmp / "sentence_vectors.npy",
                np.ascontiguousarray(np.array(s_vectors, dtype=np.float32).reshape(-1, dimension)))
        Postings.build(analyze(p_fields)).save(tmp, "passage_terms")
        Postings.build(analyze(s_texts)).save(tmp, "sentence_terms")
        manifest = SegmentManifest(len(docs), len(passages), len(sentences), dimension, spec,
                                   {k: FileInfo(**v) for k, v in file_table(tmp).items()})
        (tmp / SEGMENT_MANIFEST).write_text(json.dumps(manifest.to_json(), indent=1) + "\n", encoding="utf-8")
        fsync_tree(tmp)
        os.rename(tmp, path)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_segment(index_dir: Path, ref: SegmentRef, *, full: bool) -> Segment:
    """Open a segment a generation lists, after checking its manifest's checksum, its
    files' sizes (and, with ``full``, their checksums) and its rows.

    Raises:
        IndexMismatchError: naming the damage and the fix.
    """
    path = index_dir / ref.name
    manifest_path = path / SEGMENT_MANIFEST
    if path.is_symlink() or not manifest_path.is_file():
        raise IndexMismatchError(f"The index at {index_dir} is damaged: its segment {ref.name} is missing. "
                                 f"{repair_hint(index_dir)}")
    try:
        checksum = sha256_file(manifest_path)
    except OSError as exc:  # unreadable (permissions, an I/O error)
        raise IndexMismatchError(f"The index at {index_dir} cannot be read ({exc}). {repair_hint(index_dir)}") from exc
    if checksum != ref.checksum:
        raise IndexMismatchError(f"Index file {ref.name}/{SEGMENT_MANIFEST} does not match its checksum "
                                 f"(corrupt). {repair_hint(index_dir)}")
    try:
        manifest = SegmentManifest.from_json(json.loads(manifest_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"The segment manifest {manifest_path} {exc}. {repair_hint(index_dir)}") from exc
    missing = [f for f in SEGMENT_FILES if f not in manifest.files]
    if missing:
        raise IndexMismatchError(f"The segment manifest {manifest_path} does not list {missing[0]}. "
                                 f"{repair_hint(index_dir)}")
    for rel, meta in manifest.files.items():
        file = path / rel
        problem = None
        try:
            if not file.is_file():
                problem = "is missing"
            elif file.stat().st_size != meta.bytes:
                problem = f"has {file.stat().st_size} bytes, the manifest says {meta.bytes} (truncated?)"
            elif full and sha256_file(file) != meta.sha256:
                problem = "does not match its checksum (corrupt)"
        except OSError as exc:
            problem = f"cannot be read ({exc})"
        if problem:
            raise IndexMismatchError(f"Index file {ref.name}/{rel} {problem}. {repair_hint(index_dir)}")
    try:
        segment = Segment(path, manifest)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, IndexError) as exc:
        raise IndexMismatchError(f"The index at {index_dir} cannot be read ({exc}). {repair_hint(index_dir)}") from exc
    problem = segment.problem()
    if problem is None and any(r >= len(segment.docs) for r in ref.removed):
        problem = "its generation removes documents the segment does not hold"
    if problem:
        raise IndexMismatchError(f"The index at {index_dir} is inconsistent: {ref.name}: {problem}. "
                                 f"{repair_hint(index_dir)}")
    return segment


def read_manifest(index_dir: Path, generation: str) -> Manifest:
    """The parsed and checked manifest of a generation.

    Raises:
        IndexMismatchError: unreadable, of another format or version, or malformed.
    """
    path = index_dir / generation / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(f"The index manifest at {path} cannot be read ({exc}). "
                                 f"{repair_hint(index_dir)}") from exc
    try:
        return Manifest.from_json(raw)
    except ManifestError as exc:
        if "Verbatim index" in str(exc):
            what = f"{index_dir} does not hold a Verbatim index"
        elif raw.get("format_version") == 2 if isinstance(raw, dict) else False:
            what = (f"The index at {index_dir} was written by an older Verbatim (format version 2; this "
                    f"version reads 3). Nothing is lost: `python -m indexer upgrade{index_flag(index_dir)}` "
                    "(or any `add`) rebuilds it from the articles it stores")
        else:
            what = f"The index manifest at {path} {exc}"
        raise IndexMismatchError(f"{what}. {repair_hint(index_dir)}") from exc


# --------------------------------------------------------------------------- the store

class LocalStore:
    """The index at ``index_dir``. Reads open the live generation on first use (and keep
    it: a write makes a new generation, which a new :class:`LocalStore` sees); writes take
    the folder's lock and may create the index.

    Raises (on first read):
        IndexNotFoundError, IndexMismatchError: with the command that fixes it.
    """

    kind = "local"

    def __init__(self, index_dir: Path | str, *, exact_max: int = 100_000, full_check: bool | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.exact_max = exact_max
        self.full_check = full_check
        self._df_cache: dict[tuple[str, str], float] = {}

    # -- opening ----------------------------------------------------------------------
    @cached_property
    def generation(self) -> str:
        return self.version()

    @cached_property
    def manifest(self) -> Manifest:
        return read_manifest(self.index_dir, self.generation)

    @cached_property
    def segments(self) -> tuple[Segment, ...]:
        refs = self.manifest.segments
        full = self.full_check
        if full is None:
            total = 0
            for ref in refs:
                try:
                    raw = json.loads((self.index_dir / ref.name / SEGMENT_MANIFEST).read_text(encoding="utf-8"))
                    total += sum(int(f.get("bytes", 0)) for f in raw.get("files", {}).values())
                except (OSError, ValueError, AttributeError, TypeError):
                    pass
            full = total <= FULL_CHECK_BYTES
        out = tuple(read_segment(self.index_dir, ref, full=full) for ref in refs)
        for seg in out:
            if seg.manifest.dimension != self.manifest.model.dimension:
                raise IndexMismatchError(
                    f"The index at {self.index_dir} is inconsistent: {seg.name} holds {seg.manifest.dimension}-"
                    f"dimensional vectors, the manifest says {self.manifest.model.dimension}. "
                    f"{repair_hint(self.index_dir)}")
        live = sum(len(s.docs) - len(r.removed) for s, r in zip(out, refs))
        if live != self.manifest.documents:
            raise IndexMismatchError(f"The index at {self.index_dir} is inconsistent: counts differ from its "
                                     f"manifest. {repair_hint(self.index_dir)}")
        return out

    @cached_property
    def _alive(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per segment: live documents, passages and sentences (bool masks)."""
        out = []
        for seg, ref in zip(self.segments, self.manifest.segments):
            docs = np.ones(len(seg.docs), dtype=bool)
            docs[list(ref.removed)] = False
            p = docs[np.asarray(seg.passages[:, 0])] if len(seg.passages) else np.zeros(0, bool)
            s = docs[np.asarray(seg.sentences[:, 0])] if len(seg.sentences) else np.zeros(0, bool)
            out.append((docs, p, s))
        return out

    @cached_property
    def _keys(self) -> dict[str, tuple[int, int]]:
        """Document key -> (segment, row), for live documents."""
        out = {}
        for i, (seg, (docs, _, _)) in enumerate(zip(self.segments, self._alive)):
            for row in np.flatnonzero(docs):
                out[seg.key(int(row))] = (i, int(row))
        return out

    @cached_property
    def _ids(self) -> dict[str, tuple[int, int]]:
        """Document id -> (segment, row), for live documents."""
        return {self.segments[i].docs[r]["doc_id"]: (i, r) for i, r in self._keys.values()}

    @cached_property
    def _stats(self) -> dict[str, tuple[int, float]]:
        """Rows and average length, of live passages and of live sentences."""
        out = {}
        for kind in ("p", "s"):
            n, total = 0, 0
            for seg, (_, p, s) in zip(self.segments, self._alive):
                lengths = np.asarray((seg.passage_terms if kind == "p" else seg.sentence_terms).lengths)
                alive = p if kind == "p" else s
                n += int(alive.sum())
                total += int(lengths[alive].sum())
            out[kind] = (n, total / n if n else 1.0)
        return out

    @property
    def info(self) -> StoreInfo:
        m = self.manifest
        return StoreInfo("local", str(self.index_dir), m.model, m.chunking, m.passage_field, m.documents,
                         m.passages, m.sentences, m.built_at)

    def version(self) -> str:
        name = read_pointer(self.index_dir)
        if name is None:
            raise IndexNotFoundError(f"No index at {self.index_dir}. Build it with: "
                                     f"{build_command(self.index_dir)} {SEEDS_CAVEAT}")
        return name

    # -- query time -------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        found: list[tuple[float, str]] = []
        for seg, (_, alive, _) in zip(self.segments, self._alive):
            n = seg.index.ntotal
            if not n:
                continue
            # One more than asked: whether the (k+1)-th ties with the k-th decides if a search
            # deeper is needed (below).
            depth = min(n, k + 1 + int((~alive).sum()))
            while True:
                scores, rows = seg.index.search(query, depth)
                hits = [(float(s), int(r)) for s, r in zip(scores[0], rows[0]) if r >= 0 and alive[r]]
                # Passages tied with the k-th one may lie past the depth searched: search on
                # until they are all in, so that ties are broken by id below, as in any other
                # split of the same passages into segments (a fresh build answers the same).
                if depth >= n or rows[0][-1] < 0 or len(hits) < k or scores[0][-1] < hits[k - 1][0]:
                    break
                depth = min(n, 2 * depth)
            found += [(score, self._passage_id(seg, row)) for score, row in hits]
        found.sort(key=lambda f: (-f[0], f[1]))
        return [(pid, score) for score, pid in found[:k]]

    def _passage_id(self, seg: Segment, row: int) -> str:
        doc, start, end = (int(x) for x in seg.passages[row, :3])
        return passage_id(seg.key(doc), start, end)

    def _df(self, kind: str, term: str) -> float:
        key = (kind, term)
        if key not in self._df_cache:
            df = 0
            for seg, (_, p, s) in zip(self.segments, self._alive):
                rows, _ = (seg.passage_terms if kind == "p" else seg.sentence_terms).term(term)
                alive = p if kind == "p" else s
                df += int(alive[rows].sum()) if len(rows) else 0
            self._df_cache[key] = float(df)
        return self._df_cache[key]

    def lexical_search(self, query: LexicalQuery, k: int) -> list[tuple[str, float]]:
        terms = query.terms
        n, avgdl = self._stats["p"]
        if not terms or not n:
            return []
        found: list[tuple[float, str]] = []
        for seg, (_, alive, _) in zip(self.segments, self._alive):
            rows_all, weights = [], []
            lengths = np.asarray(seg.passage_terms.lengths)
            for term in terms:  # a term asked twice counts twice, as bm25s counts it
                rows, tf = seg.passage_terms.term(term)
                keep = alive[rows] if len(rows) else np.zeros(0, bool)
                rows, tf = rows[keep], tf[keep]
                if len(rows):
                    rows_all.append(rows)
                    weights.append(_bm25(tf, lengths[rows], _idf(n, self._df("p", term)), avgdl))
            if not rows_all:
                continue
            rows = np.concatenate(rows_all)
            scores = np.concatenate(weights)
            unique, where = np.unique(rows, return_inverse=True)
            total = np.bincount(where, weights=scores)
            # This segment's k best, and every passage tied with the k-th (ties are broken by
            # id below, whatever the segments).
            top = np.flatnonzero(total >= -np.partition(-total, k - 1)[k - 1]) if len(total) > k else range(len(total))
            found += [(float(total[i]), self._passage_id(seg, int(unique[i]))) for i in top if total[i] > 0]
        found.sort(key=lambda f: (-f[0], f[1]))
        return [(pid, score) for score, pid in found[:k]]

    def _locate(self, item_id: str) -> tuple[Segment, int, int] | None:
        """(segment, document row, passage or sentence row) of a live item, or None."""
        try:
            key, kind, start, end = parse_id(item_id)
        except ValueError:
            return None
        where = self._keys.get(key)
        if where is None:
            return None
        seg = self.segments[where[0]]
        row = (seg.passage_row if kind == "p" else seg.sentence_row)(where[1], start, end)
        return None if row is None else (seg, where[1], row)

    def _scores(self, kind: str, query: LexicalQuery, ids: Sequence[str]) -> np.ndarray:
        terms = query.terms
        n, avgdl = self._stats[kind]
        out = np.zeros(len(ids), dtype=np.float64)
        if not terms or not n:
            return out.astype(np.float32)
        by_segment: dict[int, tuple[list[int], list[int]]] = {}  # segment -> (positions in ids, rows)
        segment_of = {id(seg): i for i, seg in enumerate(self.segments)}
        for j, item in enumerate(ids):
            loc = self._locate(item)
            if loc is not None:
                at, rows = by_segment.setdefault(segment_of[id(loc[0])], ([], []))
                at.append(j)
                rows.append(loc[2])
        for term in terms:  # a term asked twice counts twice
            idf = _idf(n, self._df(kind, term))
            for i, (at, wanted) in by_segment.items():
                seg = self.segments[i]
                postings = seg.passage_terms if kind == "p" else seg.sentence_terms
                rows, tf = postings.term(term)
                if not len(rows):
                    continue
                want = np.asarray(wanted, dtype=np.int64)
                pos = np.minimum(np.searchsorted(rows, want), len(rows) - 1)
                hit = rows[pos] == want
                if hit.any():
                    out[np.asarray(at)[hit]] += _bm25(tf[pos[hit]].astype(np.float64),
                                                      postings.lengths[want[hit]].astype(np.float64), idf, avgdl)
        return out.astype(np.float32)

    def passage_bm25(self, query: LexicalQuery, passage_ids: Sequence[str]) -> np.ndarray:
        return self._scores("p", query, passage_ids)

    def sentence_bm25(self, query: LexicalQuery, sentence_ids: Sequence[str]) -> np.ndarray:
        return self._scores("s", query, sentence_ids)

    def term_counts(self, query: LexicalQuery) -> TermCounts:
        return TermCounts(self._stats["p"][0], np.array([self._df("p", t) for t in query.terms], dtype=np.float64))

    def passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        found = []  # (passage id, segment, document row, passage row) of the live ones, in order
        for pid in passage_ids:
            loc = self._locate(pid)
            if loc is not None:
                found.append((pid, *loc))
        # The passage vectors of each segment in one call (per-row calls cost a query ~1 ms).
        vectors: dict[tuple[str, int], np.ndarray] = {}
        for seg in {id(f[1]): f[1] for f in found}.values():
            rows = [f[3] for f in found if f[1] is seg]
            for row, vector in zip(rows, _reconstruct(seg.index, rows)):
                vectors[(seg.name, row)] = vector
        out = []
        texts: dict[tuple[str, int], str] = {}
        for pid, seg, doc_row, row in found:
            text = texts.get((seg.name, doc_row))
            if text is None:
                text = texts[(seg.name, doc_row)] = seg.text(doc_row)
            key = pid.rpartition(":")[0]
            _, start, end, lo, hi = seg.passages[row].tolist()
            sentences = tuple(Sentence(sentence_id(key, a, b), a, b, k)
                              for (_, a, b), k in zip(seg.sentences[lo:hi].tolist(), seg.kinds[lo:hi].tolist()))
            doc = seg.docs[doc_row]
            out.append(Passage(pid, doc["doc_id"], start, end, text[start:end], sentences,
                               tuple(text[s.start:s.end] for s in sentences), vectors[(seg.name, row)],
                               np.asarray(seg.sentence_vectors[lo:hi]), doc["title"]))
        return out

    def document(self, doc_id: str) -> Document | None:
        where = self._ids.get(doc_id)
        return None if where is None else self.segments[where[0]].document(where[1])

    def document_infos(self) -> list[DocumentInfo]:
        out = []
        for i, r in self._ids.values():
            seg = self.segments[i]
            d = seg.docs[r]
            out.append(DocumentInfo(d["doc_id"], d["title"], d["source"], d["sha256"], d.get("url"), d.get("date"),
                                    d.get("note"), d["chars"], int(seg.doc_passages[r + 1] - seg.doc_passages[r])))
        return sorted(out, key=lambda d: d.doc_id)

    def headings(self, doc_id: str) -> tuple[tuple[int, int], ...]:
        where = self._ids.get(doc_id)
        if where is None:
            return ()
        seg = self.segments[where[0]]
        lo, hi = int(seg.doc_sentences[where[1]]), int(seg.doc_sentences[where[1] + 1])
        return tuple((int(a), int(b)) for (_, a, b), k in zip(np.asarray(seg.sentences[lo:hi]),
                                                              np.asarray(seg.kinds[lo:hi])) if k != BODY)

    # -- build time -------------------------------------------------------------------
    def check_room(self, needed: int) -> None:
        """Refuse, before anything is embedded, a write the disk cannot hold."""
        check_free_space(self.index_dir, needed)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out = {}
        try:
            self.segments
        except IndexNotFoundError:
            return out
        for item in ids:
            loc = self._locate(item)
            if loc is None:
                continue
            seg, _, row = loc
            out[item] = (seg.index.reconstruct(int(row)) if parse_id(item)[1] == "p"
                         else np.asarray(seg.sentence_vectors[row]))
        return out

    def stored_documents(self, doc_ids: Iterable[str] | None = None) -> list[StoredDocument]:
        """Live documents read back with all their rows and vectors (to merge segments)."""
        from indexer.stores.base import StoredPassage, StoredSentence

        wanted = None if doc_ids is None else set(doc_ids)
        out = []
        for doc_id, (i, r) in sorted(self._ids.items()):
            if wanted is not None and doc_id not in wanted:
                continue
            seg = self.segments[i]
            doc = seg.document(r)
            key = seg.key(r)
            slo, shi = int(seg.doc_sentences[r]), int(seg.doc_sentences[r + 1])
            plo, phi = int(seg.doc_passages[r]), int(seg.doc_passages[r + 1])
            sentences = tuple(StoredSentence(sentence_id(key, int(a), int(b)), int(a), int(b), int(seg.kinds[k]),
                                             doc.text[int(a):int(b)], np.asarray(seg.sentence_vectors[k]))
                              for k, (_, a, b) in zip(range(slo, shi), np.asarray(seg.sentences[slo:shi])))
            vectors = seg.index.reconstruct_batch(np.arange(plo, phi, dtype=np.int64)) if phi > plo else []
            passages = tuple(
                StoredPassage(passage_id(key, int(a), int(b)), int(a), int(b), int(lo) - slo, int(hi) - slo,
                              _field(doc.title, doc.text[int(a):int(b)], self.manifest.passage_field), vectors[n])
                for n, (_, a, b, lo, hi) in enumerate(np.asarray(seg.passages[plo:phi])))
            out.append(StoredDocument(doc, passages, sentences))
        return out

    def write(self, change: Change) -> None:
        with write_lock(self.index_dir):
            self._write_locked(change)
        self.reopen()

    def reopen(self) -> None:
        """Forget the generation this object had opened: the next read opens the live one."""
        index_dir, exact_max, full_check = self.index_dir, self.exact_max, self.full_check
        self.__dict__.clear()
        self.__init__(index_dir, exact_max=exact_max, full_check=full_check)  # type: ignore[misc]

    def _write_locked(self, change: Change) -> None:
        try:
            previous: str | None = read_pointer(self.index_dir)
            known = True
        except IndexMismatchError:
            previous, known = None, False  # a damaged pointer: keep every generation there is
        if change.based_on is not None and previous != change.based_on:
            raise IndexLockedError(moved_on_message(str(self.index_dir)))
        current = None
        if previous is not None and not change.replace_all:
            current = LocalStore(self.index_dir, exact_max=self.exact_max)
            current.segments  # noqa: B018 - opened (and checked) before anything is written
        base = current.manifest if current is not None else None
        model = change.model or (base.model if base else None)
        chunking = change.chunking or (base.chunking if base else None)
        if model is None or chunking is None:
            raise ValueError("the first write of an index must say which model and chunking made it")
        drop = set(change.remove) | {d.document.doc_id for d in change.put}
        refs: list[SegmentRef] = []
        kept: list[Segment] = []
        if current is not None:
            for seg, ref in zip(current.segments, base.segments):  # type: ignore[union-attr]
                removed = set(ref.removed) | {r for r, d in enumerate(seg.docs) if d["doc_id"] in drop}
                if len(removed) < len(seg.docs):
                    refs.append(SegmentRef(ref.name, ref.checksum, tuple(sorted(removed))))
                    kept.append(seg)
        new_segments: list[Path] = []
        gen_name = new_name("gen")
        gen_tmp = self.index_dir / f".tmp-{gen_name}"
        live = False
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            puts = list(change.put)
            refs, kept, puts = self._merge_policy(current, refs, kept, puts)
            if puts:
                check_free_space(self.index_dir, _estimated_bytes(puts, model.dimension))
                name = new_name("seg")
                write_segment(self.index_dir / name, puts, model.dimension, self.exact_max)
                new_segments.append(self.index_dir / name)
                refs.append(SegmentRef(name, sha256_file(self.index_dir / name / SEGMENT_MANIFEST)))
                kept.append(Segment(self.index_dir / name, SegmentManifest.from_json(json.loads(
                    (self.index_dir / name / SEGMENT_MANIFEST).read_text(encoding="utf-8")))))
            documents = passages = sentences = 0
            for seg, ref in zip(kept, refs):
                removed = set(ref.removed)
                alive = np.array([r not in removed for r in range(len(seg.docs))], dtype=bool)
                documents += int(alive.sum())
                passages += int(alive[np.asarray(seg.passages[:, 0])].sum()) if len(seg.passages) else 0
                sentences += int(alive[np.asarray(seg.sentences[:, 0])].sum()) if len(seg.sentences) else 0
            if not documents:
                raise ValueError("there is no text to index")
            manifest = Manifest(model, chunking, tuple(refs), documents, passages, sentences,
                                change.passage_field or (base.passage_field if base else ""),
                                library_versions(), datetime.now(timezone.utc).isoformat(timespec="seconds"))
            gen_tmp.mkdir()
            (gen_tmp / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=1) + "\n", encoding="utf-8")
            fsync_tree(gen_tmp)
            os.rename(gen_tmp, self.index_dir / gen_name)
            write_pointer(self.index_dir, gen_name)  # the atomic switch
            live = True
        except OSError as exc:
            _undo(gen_tmp, self.index_dir / gen_name, new_segments, live)
            raise write_error(self.index_dir, exc) from exc
        except BaseException:
            # A Ctrl-C held back during the switch is raised just after it: then it is live.
            _undo(gen_tmp, self.index_dir / gen_name, new_segments, live or gen_name in SWITCHED)
            raise
        keep_gens = {gen_name, previous} if known and previous else ({gen_name} if known else None)
        keep_segs = None
        if keep_gens is not None:
            keep_segs = {r.name for r in refs}
            if previous is not None:
                with _suppress():
                    keep_segs |= {r.name for r in read_manifest(self.index_dir, previous).segments}
        remove_unused(self.index_dir, {g for g in keep_gens if g} if keep_gens else None, keep_segs)

    def _merge_policy(self, current: "LocalStore | None", refs: list[SegmentRef], kept: list[Segment],
                      puts: list[StoredDocument]) -> tuple[list[SegmentRef], list[Segment], list[StoredDocument]]:
        """When the new generation would list too many segments, or too many removed
        passages, the small segments' live documents (or all of them) join the new one."""
        if current is None or not kept:
            return refs, kept, puts
        sizes = [len(s.passages) for s in kept]
        removed = sum(int((~a[1]).sum()) for a in _alive_masks(kept, refs))
        total = sum(sizes)
        if len(kept) + bool(puts) <= MAX_SEGMENTS and removed <= MAX_REMOVED_SHARE * max(total, 1):
            return refs, kept, puts
        largest = int(np.argmax(sizes))
        small = sum(sizes) - sizes[largest]
        merge_all = removed > MAX_REMOVED_SHARE * max(total, 1) or small * 4 > sizes[largest]
        chosen = [i for i in range(len(kept)) if merge_all or i != largest]
        ids = {d["doc_id"] for i in chosen for r, d in enumerate(kept[i].docs) if r not in set(refs[i].removed)}
        moved = current.stored_documents(ids - {p.document.doc_id for p in puts})
        stay = [i for i in range(len(kept)) if i not in chosen]
        return [refs[i] for i in stay], [kept[i] for i in stay], [*puts, *moved]

    def compact(self) -> None:
        """Merge every segment into one (removed documents are left out)."""
        with write_lock(self.index_dir):
            current = LocalStore(self.index_dir, exact_max=self.exact_max)
            documents = current.stored_documents()
            m = current.manifest
            self._write_locked(Change(put=tuple(documents), model=m.model, chunking=m.chunking,
                                      passage_field=m.passage_field, replace_all=True))
        self.reopen()

    def close(self) -> None:
        self.__dict__.pop("segments", None)

    def verify(self) -> list[str]:
        """Check everything in full (every checksum, every row); return warnings about
        source files that changed or disappeared.

        Raises:
            IndexNotFoundError, IndexMismatchError.
        """
        store = LocalStore(self.index_dir, exact_max=self.exact_max, full_check=True)
        return source_warnings(((i.doc_id, i.source, i.sha256) for i in store.document_infos()),
                               index_flag(self.index_dir))


def _reconstruct(index: Any, rows: Sequence[int]) -> np.ndarray:
    """The stored vectors of ``rows`` (float32, one row each)."""
    if not rows:
        return np.zeros((0, index.d), dtype=np.float32)
    try:
        return index.reconstruct_batch(np.asarray(rows, dtype=np.int64))
    except RuntimeError:  # an index type without batch reconstruction
        return np.stack([index.reconstruct(int(r)) for r in rows])


def _alive_masks(segments: Sequence[Segment], refs: Sequence[SegmentRef]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for seg, ref in zip(segments, refs):
        docs = np.ones(len(seg.docs), dtype=bool)
        docs[list(ref.removed)] = False
        out.append((docs, docs[np.asarray(seg.passages[:, 0])] if len(seg.passages) else np.zeros(0, bool)))
    return out


def _field(title: str, text: str, passage_field: str) -> str:
    """The text a passage's BM25 and embedding see (indexer.build.passage_field's rule)."""
    return f"{title}\n{text}" if passage_field and title and not text.startswith(title) else text


def _estimated_bytes(documents: Sequence[StoredDocument], dimension: int) -> int:
    """About how many bytes a segment of these documents takes (an upper estimate)."""
    text = sum(len(d.document.text.encode("utf-8", "surrogatepass")) for d in documents)
    rows = sum(len(d.passages) + len(d.sentences) for d in documents)
    return int(1.3 * (1.2 * text + rows * (4 * dimension + 48) + 3 * text)) + 1_000_000


def _undo(gen_tmp: Path, gen: Path, new_segments: Sequence[Path], live: bool) -> None:
    """Remove what a failed write left: unless ``CURRENT`` already names its generation,
    that generation and the segments it wrote."""
    import shutil

    shutil.rmtree(gen_tmp, ignore_errors=True)
    if not live:
        shutil.rmtree(gen, ignore_errors=True)
        for path in new_segments:
            shutil.rmtree(path, ignore_errors=True)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, tb) -> bool:  # type: ignore[no-untyped-def]
        return kind is not None and issubclass(kind, (IndexMismatchError, OSError))


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
    generation is checked in full (manifest, segments, checksums, rows), newest first, and
    the first intact one becomes current (atomically, under the writer lock).

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
            from indexer.stores.legacy import legacy_documents

            if legacy_documents(index_dir) is not None:  # not damaged: of the older format
                raise IndexMismatchError(
                    f"The index at {index_dir} was written by an older Verbatim (format version 2), and "
                    f"repair does not apply to it. Nothing is lost: `python -m indexer upgrade{index_flag(index_dir)}` "
                    "rebuilds it from the articles it stores.")
        bad = []
        names = [g.name for g in reversed(generations(index_dir))]
        # An intact current generation is left as it is: it is checked first.
        for name in sorted(names, key=lambda n: n != current):
            store = LocalStore(index_dir, full_check=True)
            store.__dict__["generation"] = name
            try:
                documents = len(store.document_infos())
            except IndexMismatchError:
                bad.append(name)
                continue
            if name != current:
                try:
                    write_pointer(index_dir, name)
                except OSError as exc:
                    raise write_error(index_dir, exc) from exc
            return Repair(name, name != current, documents, tuple(bad))
    raise IndexMismatchError(f"No generation of the index at {index_dir} is intact. {rebuild_hint(index_dir)}")

