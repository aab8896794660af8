"""Reading what an index of an older format stored, to rebuild it (nothing is lost).

Format 2 (until 2026-12-01) kept one set of files a generation, with every article's full
text in ``documents.jsonl``; :func:`legacy_documents` reads those articles back so that
``python -m indexer add`` / ``upgrade`` rebuild the index in the current format.
"""

from __future__ import annotations

import json
from pathlib import Path

from indexer.errors import IndexMismatchError
from indexer.stores.folder import MANIFEST, read_pointer, rebuild_hint
from indexer.types import Document

_FIELDS = ("doc_id", "title", "source", "text", "sha256")


def legacy_documents(index_dir: Path | str) -> list[Document] | None:
    """The articles a format-2 index stores, or None when ``index_dir`` holds no index of
    that format (none at all, or the current one).

    Raises:
        IndexMismatchError: the pointer is damaged (as for any index), or the articles
            cannot all be read back.
    """
    index_dir = Path(index_dir)
    name = read_pointer(index_dir)
    if name is None:
        return None
    try:
        manifest = json.loads((index_dir / name / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format_version") != 2:
        return None
    documents = []
    path = index_dir / name / "documents.jsonl"
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                raw = json.loads(line)
                if not (isinstance(raw, dict) and all(isinstance(raw.get(k), str) for k in _FIELDS)):
                    raise ValueError(f"line {n} is not an article")
                documents.append(Document(**{k: raw.get(k) for k in (*_FIELDS, "url", "date", "note")}))
    except (OSError, ValueError) as exc:  # never an article silently left out
        raise IndexMismatchError(f"The index at {index_dir} (format version 2, written by an older Verbatim) "
                                 f"is damaged: {path} cannot be read ({exc}), so it cannot be upgraded. "
                                 f"{rebuild_hint(index_dir)}") from exc
    return documents
