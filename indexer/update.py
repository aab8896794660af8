"""Adding and removing articles in an existing store, embedding only what is new.

Adds embed the new or changed articles first (no lock held), then write one change to the
store: the local store adds a segment beside the others, Milvus inserts rows. Removals
write only the removal: nothing is re-chunked or re-embedded. A change of the model or
of the chunking settings rebuilds everything from the stored articles.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.build import (
    PASSAGE_FIELD, BuildResult, build_index, embed_ahead, model_record, stored_documents,
)
from indexer.documents import Skipped
from indexer.embedding import Embedder
from indexer.errors import DocumentError, IndexNotFoundError, IndexWriteError
from indexer.settings import Settings
from indexer.stores import open_store, store_option
from indexer.stores.base import Change, DocumentInfo, Store
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


def _infos(store: Store) -> list[DocumentInfo] | None:
    """The stored documents' metadata, or None when there is no index yet."""
    try:
        return store.document_infos()
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
    store: Store | None = None,
) -> UpdateReport:
    """Add or update articles. A document whose id exists is replaced when its content
    changed and it comes from the same file; a different file with an indexed article's id
    is skipped (it would replace that article: rename it, or remove the other first), and an
    article whose content equals another article's is reported and skipped.

    Creates the index when there is none yet, and rebuilds it from the stored articles when
    it was built with other chunking settings or another model. The new articles are
    embedded before anything is written (:func:`indexer.build.embed_ahead`); the write is
    one atomic change. ``on_accept`` is called with the documents that will be added or
    updated, just before the change is written (uploads save their files there).
    """
    store = store if store is not None else open_store(settings)
    infos = _infos(store)
    existing = {d.doc_id: d for d in infos or ()}
    by_hash = {d.sha256: d.doc_id for d in existing.values()}
    added, updated, unchanged, skips = [], [], [], list(skipped)
    accepted: dict[str, Document] = {}
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
                f"that one first: python -m indexer remove {doc.doc_id} {store_option(settings)}")))
            continue
        (updated if old is not None else added).append(doc.doc_id)
        accepted[doc.doc_id] = doc
        by_hash[doc.sha256] = doc.doc_id
    stale = infos is not None and (store.info.chunking != settings.chunking
                                   or store.info.model.name != embedder.name
                                   or store.info.passage_field != PASSAGE_FIELD)
    result = None
    if stale:  # rebuild everything from the stored articles (and the new ones)
        # Read without the lock (embedding everything takes minutes): the write is refused if
        # another writer lands in between, rather than silently dropping its change.
        based_on = store.version()
        store.reopen()  # read what that version holds (this object may have opened an older one)
        docs = {d.doc_id: store.document(d.doc_id) for d in store.document_infos()}
        docs.update(accepted)
        if on_accept is not None and accepted:
            on_accept(list(accepted.values()))
        result = build_index([d for d in docs.values() if d is not None], settings, embedder, store=store,
                             show_progress=show_progress, based_on=based_on)
    elif accepted or infos is None:
        if not accepted:
            return UpdateReport(skipped=tuple(skips))
        # Embedding is the slow part: done before the store's lock is taken.
        ahead = embed_ahead(list(accepted.values()), settings, embedder, store=store, show_progress=show_progress)
        stored, emb_p, emb_s, reused = stored_documents(list(accepted.values()), settings, embedder, store,
                                                        precomputed=ahead)
        if on_accept is not None:
            on_accept(list(accepted.values()))
        store.write(Change(put=tuple(stored), model=model_record(embedder), chunking=settings.chunking,
                           passage_field=PASSAGE_FIELD))
        info = store.info
        result = BuildResult(info.location, info.documents, info.passages, info.sentences, emb_p, emb_s, reused)
    return UpdateReport(added=tuple(added), updated=tuple(updated), unchanged=tuple(unchanged),
                        skipped=tuple(skips), result=result,
                        titles={i: accepted[i].title for i in (*added, *updated)})


def remove_documents(doc_ids: Sequence[str], settings: Settings, embedder: Embedder | None = None, *,
                     store: Store | None = None) -> UpdateReport:
    """Remove articles by id, without re-chunking or re-embedding anything (the model is
    never loaded).

    Raises:
        IndexNotFoundError: no index yet.
        DocumentError: an unknown id (the message lists close matches), or removing every article.
    """
    store = store if store is not None else open_store(settings)
    existing = {d.doc_id for d in store.document_infos()}
    unknown = [i for i in doc_ids if i not in existing]
    if unknown:
        import difflib

        hints = {u: difflib.get_close_matches(u, existing, n=3) for u in unknown}
        detail = "; ".join(f"{u!r}" + (f" (did you mean {', '.join(h)}?)" if h else "")
                           for u, h in hints.items())
        raise DocumentError(f"No article with id {detail} in the index. "
                            f"List the ids with: python -m indexer list {store_option(settings)}")
    if not existing - set(doc_ids):
        fix = (f"build a new one from your articles: python -m indexer build FOLDER {store_option(settings)} "
               "(it replaces this collection only once the new one is complete)" if settings.store
               else f"delete the folder {settings.index_dir} and build a new index")
        raise DocumentError(f"Removing every article would leave an empty index. To start over, {fix}.")
    store.write(Change(remove=tuple(dict.fromkeys(doc_ids))))
    info = store.info
    return UpdateReport(removed=tuple(dict.fromkeys(doc_ids)),
                        result=BuildResult(info.location, info.documents, info.passages, info.sentences))


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
