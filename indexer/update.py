"""Adding and removing articles in an existing index, embedding only what is new.

Both operations go through :func:`indexer.build.build_index` with the current index as
``previous``: unchanged articles keep their vectors, the BM25 index is rebuilt from the
stored texts (fast), and the new generation replaces the old one atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from indexer.build import BuildResult, Precomputed, build_index, embed_ahead
from indexer.documents import Skipped
from indexer.embedding import Embedder
from indexer.errors import DocumentError, IndexNotFoundError, IndexWriteError
from indexer.settings import Settings
from indexer.store import IndexData, load_index, write_lock
from indexer.types import Document


class LazyEmbedder:
    """Knows a model's name and size; loads the model only if something must be embedded.

    Removing articles, or re-adding unchanged ones, then never pays for a model load.
    """

    def __init__(self, name: str, dimension: int, load: Callable[[], Embedder], backend: str = "torch") -> None:
        self.name, self.dimension, self._load, self._backend = name, dimension, load, backend
        self._model: Embedder | None = None

    @property
    def backend(self) -> str:
        """The configured backend's label; once loaded, what the model really runs on (a
        broken export makes ``auto`` fall back)."""
        if self._model is not None:
            return str(getattr(self._model, "backend", "torch"))
        return self._backend

    def encode(self, texts: Sequence[str], *, batch_size: int = 32,
               show_progress: bool = False) -> np.ndarray:
        if self._model is None:
            self._model = self._load()
        return self._model.encode(texts, batch_size=batch_size, show_progress=show_progress)


@dataclass(frozen=True)
class UpdateReport:
    """What an add or remove did."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    result: BuildResult | None = None
    titles: dict[str, str] = field(default_factory=dict)  # of the added and updated articles


def _current(settings: Settings) -> IndexData | None:
    try:
        return load_index(settings.index_dir)
    except IndexNotFoundError:
        return None


def _same_file(a: str, b: str) -> bool:
    """Whether two recorded sources are one file (by inode when both exist, else by path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def add_documents(
    new_docs: Sequence[Document],
    settings: Settings,
    embedder: Embedder,
    *,
    skipped: Sequence[Skipped] = (),
    show_progress: bool = False,
    on_accept: Callable[[Sequence[Document]], None] | None = None,
) -> UpdateReport:
    """Add or update articles. A document whose id exists is replaced when its content
    changed and it comes from the same file; a different file with an indexed article's id
    is skipped (it would replace that article: rename it, or remove the other first), and an
    article whose content equals another article's is reported and skipped.

    Creates the index when there is none yet, and rebuilds it when it was built with other
    chunking settings or another model. The writer lock is held from reading the current
    index to writing the new one, so a concurrent update cannot be lost; the new articles
    are embedded before it is taken (:func:`indexer.build.embed_ahead`). ``on_accept`` is
    called under the lock with the documents that will be added or updated, before the new
    index is written (uploads save their files there).
    """
    # Embedding is the slow part: done before the lock (against the index as it is now), so
    # that the lock is held only to merge with the index as it is then, and to write.
    ahead = embed_ahead(new_docs, settings, embedder, previous=_current(settings),
                        show_progress=show_progress)
    with write_lock(settings.index_dir):
        return _add_locked(new_docs, settings, embedder, skipped, show_progress, on_accept, ahead)


def _add_locked(new_docs: Sequence[Document], settings: Settings, embedder: Embedder,
                skipped: Sequence[Skipped], show_progress: bool,
                on_accept: Callable[[Sequence[Document]], None] | None,
                ahead: Precomputed) -> UpdateReport:
    previous = _current(settings)
    existing = {d.doc_id: d for d in previous.documents} if previous else {}
    by_hash = {d.sha256: d.doc_id for d in existing.values()}
    added, updated, unchanged, skips = [], [], [], list(skipped)
    merged = dict(existing)
    for doc in new_docs:
        old = existing.get(doc.doc_id)
        if old is not None and old.sha256 == doc.sha256:
            unchanged.append(doc.doc_id)
            continue
        twin = by_hash.get(doc.sha256)
        if twin is not None and twin != doc.doc_id:
            skips.append(Skipped(doc.source, f"duplicate: same content as the indexed article {twin!r}"))
            continue
        if old is not None and not _same_file(old.source, doc.source):
            skips.append(Skipped(doc.source, (
                f"an indexed article already has the id {doc.doc_id!r} (from {old.source}), and this "
                "file would replace it; rename this file to add it as another article, or remove "
                f"that one first: python -m indexer remove {doc.doc_id}")))
            continue
        (updated if old is not None else added).append(doc.doc_id)
        merged[doc.doc_id] = doc
        by_hash[doc.sha256] = doc.doc_id
    stale = previous is not None and (
        previous.manifest.chunking != settings.chunking
        or previous.manifest.model.name != embedder.name)
    result = None
    if added or updated or stale or previous is None:
        if not merged:
            return UpdateReport(skipped=tuple(skips))
        if on_accept is not None:
            on_accept([merged[i] for i in (*added, *updated)])
        result = build_index(list(merged.values()), settings, embedder, previous=previous,
                             sources=[d.source for d in sorted(merged.values(), key=lambda d: d.doc_id)],
                             show_progress=show_progress, locked=True, precomputed=ahead)
    return UpdateReport(added=tuple(added), updated=tuple(updated), unchanged=tuple(unchanged),
                        skipped=tuple(skips), result=result,
                        titles={i: merged[i].title for i in (*added, *updated)})


def remove_documents(doc_ids: Sequence[str], settings: Settings, embedder: Embedder) -> UpdateReport:
    """Remove articles by id, without re-embedding the others.

    Raises:
        IndexNotFoundError: no index yet.
        DocumentError: an unknown id (the message lists close matches), or removing every article.
    """
    with write_lock(settings.index_dir):
        return _remove_locked(doc_ids, settings, embedder)


def _remove_locked(doc_ids: Sequence[str], settings: Settings, embedder: Embedder) -> UpdateReport:
    previous = load_index(settings.index_dir)
    existing = {d.doc_id: d for d in previous.documents}
    unknown = [i for i in doc_ids if i not in existing]
    if unknown:
        import difflib

        hints = {u: difflib.get_close_matches(u, existing, n=3) for u in unknown}
        detail = "; ".join(f"{u!r}" + (f" (did you mean {', '.join(h)}?)" if h else "")
                           for u, h in hints.items())
        raise DocumentError(f"No article with id {detail} in the index. "
                            f"List the ids with: python -m indexer list --index {settings.index_dir}")
    keep = [d for d in previous.documents if d.doc_id not in set(doc_ids)]
    if not keep:
        raise DocumentError("Removing every article would leave an empty index. To start over, "
                            f"delete the folder {settings.index_dir} and build a new index.")
    # Re-chunk with the index's own settings, and present the embedder as the backend the
    # index records, so that every vector is reused (none mixed in) and nothing is embedded.
    same = replace(settings, chunking=previous.chunking)
    as_recorded = LazyEmbedder(embedder.name, embedder.dimension, lambda: embedder,
                               backend=previous.manifest.model.backend)
    result = build_index(keep, same, as_recorded, previous=previous,
                         sources=[d.source for d in keep], locked=True)
    return UpdateReport(removed=tuple(dict.fromkeys(doc_ids)), result=result)


def upload_articles(
    files: Sequence[tuple[str, bytes]], settings: Settings, embedder: Embedder
) -> UpdateReport:
    """Save files uploaded from the browser into ``settings.upload_dir`` and add them.

    Each file is saved under :func:`indexer.loaders.upload_name` of its name (no folders,
    no path tricks; two different names never share a file, and the same name updates its
    article). A file over a limit or that cannot be read, a second file of the upload with
    the same name, and a file that would replace an article from elsewhere are skipped with
    their reasons; only the files of added or updated articles are written, each atomically.
    """
    from indexer.documents import check_article, check_size, document_from_bytes
    from indexer.loaders import upload_name

    docs: list[Document] = []
    skipped: list[Skipped] = []
    payload: dict[str, bytes] = {}
    for name, data in files:
        target: Path | None = None
        try:
            target = settings.upload_dir / upload_name(name)
            if str(target) in payload:
                raise DocumentError(f"{target}: another file of this upload has the same name; "
                                    "rename one of them and upload it again")
            check_size(target, len(data), settings.limits)
            doc = document_from_bytes(target, data, settings.limits)
            check_article(doc, settings.limits, settings.chunking)
        except DocumentError as exc:
            skipped.append(Skipped(name, Skipped.because(target or name, exc).reason))
            continue
        payload[str(target)] = data
        docs.append(doc)

    def save(accepted: Sequence[Document]) -> None:
        try:
            settings.upload_dir.mkdir(parents=True, exist_ok=True)
            for doc in accepted:
                target = Path(doc.source)
                tmp = target.with_name(f".{target.name}.part")
                tmp.write_bytes(payload[doc.source])
                tmp.replace(target)  # atomic: a half-written upload never replaces an article
        except OSError as exc:
            raise IndexWriteError(
                f"Cannot save the uploaded files in {settings.upload_dir} ({exc.strerror or exc}). "
                "Make that folder writable, or point VERBATIM_UPLOAD_DIR at one that is; the index "
                "is unchanged.") from exc

    return add_documents(docs, settings, embedder, skipped=skipped, on_accept=save)
