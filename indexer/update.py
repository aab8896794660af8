"""Adding and removing articles in an existing index, embedding only what is new.

Both operations go through :func:`indexer.build.build_index` with the current index as
``previous``: unchanged articles keep their vectors, the BM25 index is rebuilt from the
stored texts (fast), and the new generation replaces the old one atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from indexer.build import BuildResult, build_index
from indexer.documents import Skipped
from indexer.embedding import Embedder
from indexer.errors import DocumentError, IndexNotFoundError
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


def _current(settings: Settings) -> IndexData | None:
    try:
        return load_index(settings.index_dir)
    except IndexNotFoundError:
        return None


def add_documents(
    new_docs: Sequence[Document],
    settings: Settings,
    embedder: Embedder,
    *,
    skipped: Sequence[Skipped] = (),
    show_progress: bool = False,
) -> UpdateReport:
    """Add or update articles. A document whose id exists is replaced when its content
    changed; an article whose content equals another article's is reported and skipped.

    Creates the index when there is none yet, and rebuilds it when it was built with other
    chunking settings or another model. The writer lock is held from reading the current
    index to writing the new one, so a concurrent update cannot be lost.
    """
    with write_lock(settings.index_dir):
        return _add_locked(new_docs, settings, embedder, skipped, show_progress)


def _add_locked(new_docs: Sequence[Document], settings: Settings, embedder: Embedder,
                skipped: Sequence[Skipped], show_progress: bool) -> UpdateReport:
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
        (updated if old is not None else added).append(doc.doc_id)
        merged[doc.doc_id] = doc
        by_hash[doc.sha256] = doc.doc_id
    stale = previous is not None and (
        previous.manifest["chunking"] != asdict(settings.chunking)
        or previous.manifest["model"]["name"] != embedder.name)
    result = None
    if added or updated or stale or previous is None:
        if not merged:
            return UpdateReport(skipped=tuple(skips))
        result = build_index(list(merged.values()), settings, embedder, previous=previous,
                             sources=[d.source for d in sorted(merged.values(), key=lambda d: d.doc_id)],
                             show_progress=show_progress, locked=True)
    return UpdateReport(added=tuple(added), updated=tuple(updated), unchanged=tuple(unchanged),
                        skipped=tuple(skips), result=result)


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
                               backend=previous.manifest["model"].get("backend", "torch"))
    result = build_index(keep, same, as_recorded, previous=previous,
                         sources=[d.source for d in keep], locked=True)
    return UpdateReport(removed=tuple(dict.fromkeys(doc_ids)), result=result)


def upload_articles(
    files: Sequence[tuple[str, bytes]], settings: Settings, embedder: Embedder
) -> UpdateReport:
    """Save files uploaded from the browser into ``settings.upload_dir`` and add them.

    Names are sanitised (no directories, no path tricks); a file over the size limit or
    that cannot be read is skipped with its reason, never written over an existing one
    unless it has the same name (an update of that article).
    """
    from indexer.documents import document_from_bytes
    from indexer.loaders import safe_upload_name

    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    docs: list[Document] = []
    skipped: list[Skipped] = []
    for name, data in files:
        try:
            target = settings.upload_dir / safe_upload_name(name)
            if len(data) > settings.max_file_bytes:
                raise DocumentError(f"{name}: {len(data):,} bytes is over the limit of "
                                    f"{settings.max_file_bytes:,} (setting VERBATIM_MAX_FILE_BYTES)")
            doc = document_from_bytes(target, data)
        except DocumentError as exc:
            skipped.append(Skipped(name, str(exc)))
            continue
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(data)
        tmp.replace(target)  # atomic: a half-written upload never replaces an article
        docs.append(doc)
    return add_documents(docs, settings, embedder, skipped=skipped)
