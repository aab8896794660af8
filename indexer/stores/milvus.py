"""The Milvus store: documents, passages and sentences in Milvus collections.

It serves a Milvus server or cluster (``http://HOST:PORT``, ``https://…``) or milvus-lite,
embedded (``milvus:PATH.db``, one process at a time) or served on 127.0.0.1
(:mod:`indexer.stores.milvus_server`). pymilvus is imported on first use, so importing this
module is cheap.

Collections (``P`` is ``settings.milvus_collection``, ``N`` the live version)::

    P_meta            pointer rows (the live version and sequence number, and what StoreInfo
                      says: model, chunking, passage_field, built_at, counts), writers' lock
                      rows and the intents ("pending" rows) of unfinished writes
    P_vN_documents    one row per document *version*: pk ``<key>#<seq>``, doc_id, key, seq,
                      removed (a tombstone), title, source, sha256, url, date, note (None as
                      "" plus a bit in ``nulls``: lite has no nullable fields), chars, counts,
                      and the text when it fits (else it is in P_vN_texts)
    P_vN_texts        longer texts in pieces: pk ``<key>#<n>``, at most PIECE_CHARS characters
                      each (under 65535 UTF-8 bytes), reassembled in order
    P_vN_passages     pk passage id, doc_id, key, start, end, the passage's sentences as JSON
                      ``[[start, end, kind], ...]`` (so sentence ids follow without a lookup),
                      ``text`` = the passage's field text, analysed (:data:`ANALYZER`) into a
                      BM25 sparse vector by a Milvus BM25 function, the dense vector (IP on unit
                      vectors: cosine), and ``bucket`` (for counting large document frequencies)
    P_vN_sentences    pk sentence id, doc_id, key, start, end, kind, text (BM25), dense vector

Which rows are live. The pointer row names a version ``N`` and a sequence number ``S``.
A document is the row of its doc_id with the highest ``seq <= S`` (none if that row is a
tombstone); a passage or sentence is live when its ``key`` is a live document's key. An
incremental write (1) records the keys it will write in a pending row, (2) inserts the new
versions' rows (new keys: nothing live changes), (3) inserts documents rows and tombstones
with ``seq = S + 1`` (still invisible), then (4) switches: inserts a pointer row with
``S + 1`` and deletes the older pointer rows — lite has no aliases, and insert-then-delete
was never seen to leave a reader without a pointer. Only then (5) are the replaced rows
deleted. A failure before (4) leaves the previous content answering; whatever it left is
never returned (rows of keys that are not live are dropped from every answer, after a small
over-fetch) and the next write removes it. A full rebuild (``replace_all``) writes version
``N + 1``'s collections, switches the pointer, and drops version ``N``'s.

Writers take turns by lock rows in P_meta: each inserts one, and proceeds when no live
row of a writer that asked before it is there (checked twice, LOCK_GRACE apart); the others
wait in line, up to LOCK_WAIT, then get IndexLockedError. A crashed writer's row expires
after LOCK_TTL (rows are renewed while writing and waiting). Ids are stored with quotes, backslashes, control characters and lone
surrogates percent-encoded (filter expressions cannot carry them and milvus-lite's deletes
break on quotes); a text that cannot be sent as UTF-8 is stored JSON-escaped.

A store object reads the pointer and the documents table (without texts) once and answers
from them until it is closed or :meth:`MilvusStore.reopen` is called, as
:class:`indexer.stores.local.LocalStore` answers from the generation it opened — except
that a later write deletes the rows it replaced: an old object's searches then no longer
find the replaced documents (they never find a mix of versions), and reading such a
document's text or sentences re-opens it once, as a rebuild elsewhere that dropped its
collections does. :meth:`MilvusStore.version` reads the pointer afresh.

Scores. Milvus's BM25 is Lucene's with a factor (k1 + 1); scores are divided by it, so
they are on the local store's scale. Milvus analyses text itself (the standard tokenizer:
one-character tokens are kept, ``_`` splits words), so scores differ slightly from the
local store's. :meth:`MilvusStore.term_counts` counts, for each term, the live passages
that a one-word BM25 search finds (exact; see there) — milvus-lite 2.5.1 rejects
``TEXT_MATCH`` ("Invalid expr").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import shlex
import socket
import sys
import threading
import time
import uuid
import warnings
import weakref
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from indexer.errors import (
    ConfigError, IndexLockedError, IndexMismatchError, IndexNotFoundError, IndexWriteError, StoreUnavailableError,
)
from indexer.manifest import ModelInfo
from indexer.settings import ChunkingParams
from indexer.stores.base import (
    Change, DocumentInfo, LexicalQuery, Passage, Sentence, StoreInfo, StoredDocument, TermCounts,
    moved_on_message, parse_id, sentence_id,
)
from indexer.stores import redact
from indexer.stores.folder import SEEDS_CAVEAT, SWITCHED, source_warnings
from indexer.types import Document

if TYPE_CHECKING:
    from indexer.settings import Settings

FORMAT_NAME = "verbatim-milvus"
FORMAT_VERSION = 1

#: How passage and sentence texts are analysed for BM25 (fixed: changing it needs a rebuild).
ANALYZER: dict[str, Any] = {"tokenizer": "standard",
                            "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]},
                                       {"type": "stemmer", "language": "english"}]}
BM25_K1, BM25_B = 1.5, 0.75
#: The dense passage index: HNSW on a server; milvus-lite accepts only FLAT, IVF_FLAT and
#: AUTOINDEX, so FLAT (exact) there. Sentence vectors are never searched: FLAT everywhere.
DENSE_INDEX_SERVER: dict[str, Any] = {"index_type": "HNSW", "params": {"M": 16, "efConstruction": 200}}
DENSE_INDEX_LITE: dict[str, Any] = {"index_type": "FLAT", "params": {}}
HNSW_EF_MIN = 128

CONNECT_TIMEOUT = 5.0  # seconds to connect (a server that does not answer fails within it)
READ_TIMEOUT = 20.0  # every read call (bounds pymilvus's retry loop of up to 75 attempts)
LOAD_TIMEOUT = 900.0  # loading a version's collections into memory on open (milvus-lite: ~40 s at 100k passages)
WRITE_TIMEOUT = 120.0  # every write call
RETRIES = 3  # pymilvus retries a failed call up to 75 times by default
INSERT_ROWS = 1000  # rows per insert (lite slows down sharply past ~7 MiB a batch)
INSERT_BYTES = 4 << 20
IN_VALUES = 1000  # values per "in [...]" filter
TOPK_MAX = 16384  # Milvus's largest search limit and query window
OVERFETCH = 16  # extra candidates fetched, in case some are rows of unfinished writes
VARCHAR_BYTES = 65535
ID_BYTES = 1024  # pk, doc_id and key fields (ids are escaped, see _esc)
PIECE_CHARS = 16000  # characters of a text piece: at most 64,000 UTF-8 bytes
ESCAPED_PIECE_CHARS = 5000  # ... of a text that must be stored JSON-escaped (at most 60,000 bytes)
BUCKETS = 1024  # passage buckets, to count a term's passages past TOPK_MAX
LOCK_TTL = 300.0  # a writer's lock row older than this is a crashed writer's
LOCK_RENEW = 60.0
LOCK_WAIT = 900.0  # how long a writer waits in line for the writers before it
LOCK_GRACE = 0.5  # seconds between the two checks that no writer is ahead
DUMMY = [1.0, 0.0]  # the tiny vector of collections that hold no vectors (servers want one)
KINDS = ("documents", "passages", "sentences", "texts")
_NULL_BITS = {"url": 1, "date": 2, "note": 4}
_MARK = "\x00j:"  # a stored string that is JSON: its text could not be sent as UTF-8
_LITE_NAME = re.compile(r"^[a-zA-Z0-9.\-_]+$")

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- pymilvus

_PYMILVUS: Any = None


def _pymilvus() -> Any:
    """pymilvus, imported on first use (its own logger silenced: failures become messages)."""
    global _PYMILVUS
    if _PYMILVUS is None:
        try:
            import pymilvus
        except ImportError as exc:
            raise ConfigError("The Milvus store needs pymilvus: pip install 'pymilvus==3.0.2' "
                              "'milvus-lite==2.5.1' 'setuptools<82'") from exc
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        _PYMILVUS = pymilvus
    return _PYMILVUS


@contextlib.contextmanager
def quiet_lite() -> Iterator[None]:
    """While milvus-lite is imported or started: no pkg_resources deprecation warning
    (setuptools 80/81) and no root-logger lines from milvus_lite (errors become messages)."""
    def drop(record: logging.LogRecord) -> bool:
        return "milvus_lite" not in record.pathname

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated", category=UserWarning)
            yield
    finally:
        root.removeFilter(drop)


def lite_log_dir(path: Path) -> Path:
    """Where milvus-lite's engine writes its own log files for the database ``path``:
    ``PATH.db.logs/`` beside it (glog writes them to /tmp otherwise, a few per start)."""
    folder = path.with_name(path.name + ".logs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(os.environ.get("TMPDIR") or "/tmp")
    return folder


@contextlib.contextmanager
def lite_logs(path: Path) -> Iterator[None]:
    """While milvus-lite's engine is started for ``path``: its log files go to
    :func:`lite_log_dir` (the engine reads GLOG_log_dir from its environment)."""
    before = os.environ.get("GLOG_log_dir")
    os.environ["GLOG_log_dir"] = str(lite_log_dir(path))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GLOG_log_dir", None)
        else:
            os.environ["GLOG_log_dir"] = before


class _Failure(Exception):
    """A Milvus call failed: ``kind`` is missing (collection), unreachable, auth or other."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    if not isinstance(message, str) or not message:
        details = getattr(exc, "details", None)
        message = details() if callable(details) else str(exc)
    message = " ".join(str(message).split())
    return message[:300] + ("…" if len(message) > 300 else "")


def _classify(exc: BaseException) -> _Failure:
    reason = _reason(exc)
    cause = exc.__cause__  # pymilvus wraps a refused connect ("Fail connecting ...") around the grpc error
    code = getattr(cause, "code", None)
    if cause is not None and callable(code):
        with contextlib.suppress(Exception):
            reason += f" [{getattr(code(), 'name', code())}: {_reason(cause)}]"
    low = f"{reason} {getattr(exc, 'code', '')} {type(exc).__name__}".lower()
    if "database not found" in low or "database:" in low and "not found" in low:
        kind = "database"
    elif "collection not found" in low or "can't find collection" in low or "can not find collection" in low:
        kind = "missing"
    elif any(w in low for w in ("unauthenticated", "permission_denied", "permission denied", "auth",
                                "credential", "password")):
        kind = "auth"
    elif any(w in low for w in ("fail connecting", "unavailable", "deadline", "retry timeout",
                                "connection refused", "should create connection first", "timed out")):
        kind = "unreachable"
    else:
        kind = "other"
    return _Failure(kind, reason)


def _failures() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [_pymilvus().exceptions.MilvusException]
    try:
        import grpc

        kinds.append(grpc.RpcError)
    except ImportError:  # pragma: no cover - pymilvus needs grpc
        pass
    return tuple(kinds)


# --------------------------------------------------------------------------- strings

_ESC_CHARS = re.compile(r"[%'\"\\\x00-\x1f\x7f\ud800-\udfff]")
_UNESC = re.compile(r"%(?:u([0-9A-F]{4})|([0-9A-F]{2}))")


def _esc(s: str) -> str:
    """An id as stored: quotes, backslashes, control characters, lone surrogates and %
    percent-encoded (Milvus filter expressions cannot carry control characters, and
    milvus-lite's deletes break on quotes). The identity for ordinary ids."""
    if not _ESC_CHARS.search(s):
        return s
    return _ESC_CHARS.sub(lambda m: f"%u{ord(m.group()):04X}" if ord(m.group()) > 0xFF else f"%{ord(m.group()):02X}",
                          s)


def _unesc(s: str) -> str:
    if "%" not in s:
        return s
    return _UNESC.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), s)


def _lit(values: Iterable[str]) -> str:
    """A filter's list literal of (escaped) strings."""
    return "[" + ",".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def _utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _enc(s: str) -> str:
    """A metadata string as stored (JSON-escaped when it cannot be sent as UTF-8)."""
    return s if _utf8(s) and not s.startswith(_MARK) else _MARK + json.dumps(s)


def _dec(s: str) -> str:
    return json.loads(s[len(_MARK):]) if s.startswith(_MARK) else s


def _analysed(text: str) -> str:
    """A text for Milvus's analyser: valid UTF-8, at most 65535 bytes (BM25 sees no more)."""
    data = text.encode("utf-8", "replace")
    return data[:VARCHAR_BYTES].decode("utf-8", "ignore") if len(data) > VARCHAR_BYTES else data.decode("utf-8")


def _chunks(items: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


# --------------------------------------------------------------------------- lite bookkeeping

_LITE_LOCK = threading.Lock()
_LITE_USERS: dict[str, int] = {}  # resolved .db path -> open MilvusStore connections in this process
_SERVED: dict[str, str] = {}  # resolved .db path -> http URI, served by this process (milvus_server)


def lite_path(uri: str) -> Path:
    """The file of a ``milvus:PATH.db`` store URI.

    Raises:
        ConfigError: not a .db path, or a file name milvus-lite does not accept.
    """
    raw = uri[len("milvus:"):] if uri.startswith("milvus:") else uri
    path = Path(raw).expanduser()
    if not raw or path.suffix != ".db":
        raise ConfigError(f"A milvus-lite store is milvus:PATH.db (a file ending in .db); got {uri!r}.")
    if not _LITE_NAME.match(path.name) or len(path.name) > 36:
        raise ConfigError(f"milvus-lite accepts a file name of at most 36 letters, digits, '.', '-' and '_'; "
                          f"got {path.name!r}. Choose another name: --store milvus:DIR/verbatim.db")
    return path


def held_by_another_process(path: Path) -> bool:
    """Whether another process holds milvus-lite's lock on the .db file (call only when
    this process does not: closing a lock file descriptor drops this process's locks)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - milvus-lite runs on Linux and macOS only
        return False
    lock = path.parent / f".{path.name}.lock"
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def lite_processes(path: Path) -> list[tuple[int, str]]:
    """(pid, address) of the milvus-lite server programs running on the .db file ``path``:
    the address is ``host:port`` when it is served, a ``unix:`` socket when embedded (Linux:
    read from /proc; elsewhere none are found)."""
    target = str(path.absolute().resolve())
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if len(argv) > 2 and argv[0].endswith(b"/milvus") and b"milvus_lite" in argv[0] \
                    and os.fsdecode(argv[1]) == target:
                found.append((int(entry.name), os.fsdecode(argv[2])))
    return found


def open_elsewhere(path: Path) -> bool:
    """Whether another process has the milvus-lite file open: it holds the file's lock, or
    a milvus-lite server program runs on it (a failed open by another process deletes the
    lock file of the one that has it open — milvus-lite 2.5.1 — so the lock alone does not
    tell). Call only when this process does not have the file open."""
    return held_by_another_process(path) or bool(lite_processes(path))


def open_here(path: Path) -> bool:
    """Whether this process has the milvus-lite file open (embedded or served)."""
    resolved = str(path.absolute().resolve())
    if resolved in _LITE_USERS or resolved in _SERVED:
        return True
    manager = sys.modules.get("milvus_lite.server_manager")
    servers = getattr(getattr(manager, "server_manager_instance", None), "_servers", {})
    return resolved in servers


def open_elsewhere_message(path: Path) -> str:
    served = [address for _, address in lite_processes(path) if not address.startswith("unix:")]
    if served:
        uri = f"http://{served[0]}"
        return (f"The milvus-lite file {path} is served by another process at {uri}: use --store {uri} "
                f"(VERBATIM_STORE={uri}) while it runs.")
    return (f"The milvus-lite file {path} is open in another process: serve it once with python -m indexer "
            f"serve --store milvus:{path} and use http://127.0.0.1:PORT in both (--store http://127.0.0.1:PORT).")


# --------------------------------------------------------------------------- state

@dataclass(frozen=True)
class _Doc:
    """A documents row (no text)."""

    pk: str
    doc_id: str
    key: str
    seq: int
    removed: bool
    title: str = ""
    source: str = ""
    sha256: str = ""
    url: str | None = None
    date: str | None = None
    note: str | None = None
    chars: int = 0
    passages: int = 0
    sentences: int = 0
    pieces: int = 0
    piece_chars: int = PIECE_CHARS
    escaped: bool = False


_DOC_FIELDS = ["pk", "doc_id", "key", "seq", "removed", "title", "source", "sha256", "url", "date", "note", "nulls",
               "chars", "passages", "sentences", "pieces", "piece_chars", "escaped"]


def _doc(row: dict[str, Any]) -> _Doc:
    nulls = int(row.get("nulls", 0))
    opt = {name: (None if nulls & bit else _dec(row.get(name, ""))) for name, bit in _NULL_BITS.items()}
    return _Doc(row["pk"], _unesc(row["doc_id"]), _unesc(row["key"]), int(row["seq"]), bool(row["removed"]),
                _dec(row.get("title", "")), _dec(row.get("source", "")), row.get("sha256", ""), opt["url"],
                opt["date"], opt["note"], int(row.get("chars", 0)), int(row.get("passages", 0)),
                int(row.get("sentences", 0)), int(row.get("pieces", 0)), int(row.get("piece_chars", PIECE_CHARS)),
                bool(row.get("escaped", False)))


@dataclass(frozen=True)
class _Pointer:
    ver: int  # the pointer row's number
    version: int  # collections version N
    seq: int  # sequence number S
    raw: dict[str, Any]

    @property
    def dense_index(self) -> str:
        return str(self.raw.get("dense_index", "FLAT"))


@dataclass
class _State:
    pointer: _Pointer
    docs: dict[str, _Doc]  # doc_id -> live row
    keys: dict[str, str] = field(default_factory=dict)  # live key -> doc_id

    def __post_init__(self) -> None:
        self.keys = {d.key: d.doc_id for d in self.docs.values()}


def _live(rows: Iterable[_Doc], seq: int) -> dict[str, _Doc]:
    """doc_id -> its live row: the highest seq <= ``seq``, unless that is a tombstone."""
    best: dict[str, _Doc] = {}
    for r in rows:
        if r.seq <= seq and (r.doc_id not in best or r.seq > best[r.doc_id].seq):
            best[r.doc_id] = r
    return {k: r for k, r in best.items() if not r.removed}


# --------------------------------------------------------------------------- the store

class MilvusStore:
    """The index in Milvus at ``uri`` (``milvus:PATH.db``, ``http://HOST:PORT`` or
    ``https://…``). Nothing is opened until it is first asked something.

    Raises (on first use):
        IndexNotFoundError: never built here.
        StoreUnavailableError: the server cannot be reached (or a served lite file stopped answering).
        IndexLockedError: a milvus-lite file another process has open.
        IndexMismatchError: damaged collections.
        ConfigError: a bad URI or credentials the server refuses.
    """

    kind = "milvus"

    def __init__(self, uri: str, settings: "Settings") -> None:
        self.uri = uri.strip()
        self.settings = settings
        self.prefix = settings.milvus_collection or "verbatim"
        self.lite = self.uri.startswith("milvus:")
        self.path = lite_path(self.uri) if self.lite else None
        if not self.lite:
            parts = urlsplit(self.uri)
            try:
                parts.port  # noqa: B018 - raises on a port that is not a number
                valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            except ValueError:
                valid = False
            if not valid:
                raise ConfigError(f"A Milvus server URI is http://HOST:PORT or https://HOST:PORT; got "
                                  f"{self.location!r}.")
        self._client: Any = None
        self._release: weakref.finalize | None = None
        self._state: _State | None = None
        self._lock = threading.RLock()
        self._pieces: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._pieces_chars = 0

    # -- names and messages -----------------------------------------------------------
    @property
    def location(self) -> str:
        """The URI without credentials (user:password@, query string); with the database
        (VERBATIM_MILVUS_DB) as its path, as pymilvus reads a URI."""
        if self.lite:
            return self.uri
        scheme, _, rest = redact(self.uri).partition("://")
        host, slash, path = rest.partition("/")
        path = f"/{path}".rstrip("/") if slash else ""
        path = path or (f"/{self.settings.milvus_db}" if self.settings.milvus_db else "")
        return f"{scheme}://{host}{path}"

    def _name(self, version: int, kind: str) -> str:
        return f"{self.prefix}_v{version}_{kind}"

    @property
    def _meta(self) -> str:
        return f"{self.prefix}_meta"

    def _build_command(self) -> str:
        env = "" if self.prefix == "verbatim" else f"VERBATIM_MILVUS_COLLECTION={self.prefix} "
        return f"{env}python -m indexer build seeds --store {shlex.quote(self.location)} {SEEDS_CAVEAT}"

    def _not_built(self, why: str) -> IndexNotFoundError:
        return IndexNotFoundError(f"No index in the Milvus store {self.location} ({why}). Build it with: "
                                  f"{self._build_command()}")

    def _damaged(self, why: str) -> IndexMismatchError:
        return IndexMismatchError(f"The index in the Milvus store {self.location} is damaged or incomplete: "
                                  f"{why}. Rebuild it with: {self._build_command()}")

    def _scrub(self, text: str) -> str:
        for secret in (self.settings.milvus_token, urlsplit(self.uri).password if not self.lite else None):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _translate(self, failure: _Failure, writing: bool = False) -> Exception:
        reason = self._scrub(failure.reason)
        if failure.kind == "auth":
            return ConfigError(f"The Milvus server at {self.location} refused the credentials ({reason}). Set "
                               "VERBATIM_MILVUS_TOKEN to user:password or an API key (the token is never printed).")
        if failure.kind == "database":
            return ConfigError(f"The Milvus server at {self.location} has no database "
                               f"{self.settings.milvus_db or 'default'!r} ({reason}). Set VERBATIM_MILVUS_DB to one "
                               "it has (empty: the default database), or create it on the server.")
        if failure.kind == "unreachable" and not writing:
            if self.lite:
                return StoreUnavailableError(f"The milvus-lite server of {self.path} stopped answering ({reason}). "
                                             "Restart the program; the file keeps its data.")
            return StoreUnavailableError(
                f"Cannot reach the Milvus server at {self.location} ({reason}). Start it (for a milvus-lite file: "
                "python -m indexer serve --store milvus:PATH.db), or check VERBATIM_STORE (--store).")
        if writing:
            return IndexWriteError(f"Writing to the Milvus store {self.location} failed ({reason}); nothing was "
                                   "changed: it still answers from what it held before. Fix the cause (is the "
                                   "server running, with room on its disk?) and run the command again.")
        if failure.kind == "missing":
            return self._damaged(f"a collection is missing ({reason})")
        if failure.kind == "stale":
            return self._damaged(reason)
        return IndexMismatchError(f"The Milvus store {self.location} failed to answer ({reason}). Check the "
                                  f"server; if its collections are damaged, rebuild with: {self._build_command()}")

    # -- connection -------------------------------------------------------------------
    def _connect(self, *, create: bool) -> Any:
        """The client, connected (a .db file is only created when ``create``)."""
        with self._lock:
            if self._client is not None:
                return self._client
            pm = _pymilvus()
            failures = _failures()
            if self.lite:
                assert self.path is not None
                resolved = str(self.path.absolute().resolve())
                if resolved in _SERVED:
                    raise IndexLockedError(f"The milvus-lite file {self.path} is served by this process at "
                                           f"{_SERVED[resolved]}: use --store {_SERVED[resolved]}.")
                # Asked before milvus-lite tries: its failed open deletes the lock file of the
                # process that has the file open, after which a third could open it too.
                if self.path.exists() and not open_here(self.path) and open_elsewhere(self.path):
                    raise IndexLockedError(open_elsewhere_message(self.path))
                if not self.path.exists() or self.path.stat().st_size == 0:
                    if not create:
                        raise self._not_built("the file does not exist yet" if not self.path.exists()
                                              else "the file is empty")
                    try:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                    except OSError as exc:
                        raise IndexWriteError(f"Cannot create the folder of {self.path} ({exc}). Choose a "
                                              "writable place: --store milvus:DIR/verbatim.db") from exc
                try:
                    with quiet_lite(), lite_logs(self.path):
                        client = pm.MilvusClient(uri=str(self.path), timeout=CONNECT_TIMEOUT)
                except failures as exc:
                    if open_elsewhere(self.path):
                        raise IndexLockedError(open_elsewhere_message(self.path)) from None
                    raise IndexMismatchError(
                        f"The milvus-lite file {self.path} cannot be opened ({self._scrub(_reason(exc))}): it is "
                        f"damaged or not a milvus-lite database. Move it away and rebuild: "
                        f"{self._build_command()}") from None
                except RuntimeError as exc:  # milvus-lite's own name checks
                    raise ConfigError(f"milvus-lite cannot open {self.path}: {exc}") from None
                with _LITE_LOCK:
                    _LITE_USERS[resolved] = _LITE_USERS.get(resolved, 0) + 1
                # Released on close(), or when this object is collected without one.
                self._release = weakref.finalize(self, _release_lite, resolved)
            else:
                kwargs: dict[str, Any] = {"uri": self.uri, "timeout": CONNECT_TIMEOUT}
                if self.settings.milvus_token:
                    kwargs["token"] = self.settings.milvus_token
                if self.settings.milvus_db:
                    kwargs["db_name"] = self.settings.milvus_db
                try:
                    client = pm.MilvusClient(**kwargs)
                    client.list_collections(timeout=CONNECT_TIMEOUT)
                except failures as exc:
                    failure = _classify(exc)
                    if failure.kind in ("other", "missing"):
                        failure = _Failure("unreachable", failure.reason)
                    raise self._translate(failure) from None
            self._client = client
            return client

    def _rpc(self, method: str, *args: Any, timeout: float = READ_TIMEOUT, **kwargs: Any) -> Any:
        client = self._connect(create=False) if self._client is None else self._client
        try:
            return getattr(client, method)(*args, timeout=timeout, retry_times=RETRIES, **kwargs)
        except _failures() as exc:
            failure = _classify(exc)
            if failure.kind == "missing" and args and isinstance(args[0], str):
                failure.reason = f"{args[0]}: {failure.reason}"
            raise failure from None

    def _query(self, collection: str, filter: str, fields: list[str], *, limit: int | None = None) -> list[dict]:
        kwargs: dict[str, Any] = {"limit": limit} if limit else {}
        return list(self._rpc("query", collection, filter=filter, output_fields=fields,
                              consistency_level="Strong", **kwargs))

    def _query_in(self, collection: str, name: str, values: Sequence[str], fields: list[str],
                  extra: str = "") -> list[dict]:
        out: list[dict] = []
        values = list(dict.fromkeys(values))
        for part in _chunks(values, IN_VALUES):
            out += self._query(collection, f"{name} in {_lit(part)}{extra}", fields)
        return out

    def _scan(self, collection: str, filter: str, fields: list[str], batch: int = 4000) -> Iterator[dict]:
        """Every row matching ``filter`` (a query iterator: no 16384-row window)."""
        client = self._client if self._client is not None else self._connect(create=False)
        try:
            it = client.query_iterator(collection, batch_size=batch, filter=filter, output_fields=fields,
                                       timeout=READ_TIMEOUT, consistency_level="Strong", retry_times=RETRIES)
            while True:
                rows = it.next()
                if not rows:
                    it.close()
                    return
                yield from rows
        except _failures() as exc:
            failure = _classify(exc)
            if failure.kind == "missing":
                failure.reason = f"{collection}: {failure.reason}"
            raise failure from None

    def _delete(self, collection: str, filter: str) -> None:
        self._rpc("delete", collection, filter=filter, timeout=WRITE_TIMEOUT)

    def _delete_in(self, collection: str, name: str, values: Iterable[str]) -> None:
        for part in _chunks(list(dict.fromkeys(values)), IN_VALUES):
            self._delete(collection, f"{name} in {_lit(part)}")

    def _has(self, collection: str) -> bool:
        return bool(self._rpc("has_collection", collection))

    # -- reading the pointer and documents ----------------------------------------------
    def _pointer(self) -> _Pointer | None:
        if not self._has(self._meta):
            return None
        rows = self._query(self._meta, 'kind == "ptr"', ["pk", "value"])
        if not rows:
            return None
        row = max(rows, key=lambda r: int(r["pk"].split(":")[1]))
        try:
            raw = json.loads(row["value"])
            if raw.get("format") != FORMAT_NAME:
                raise ValueError("not a Verbatim pointer")
            if int(raw.get("format_version", 0)) > FORMAT_VERSION:
                raise IndexMismatchError(
                    f"The Milvus store {self.location} was written by a newer Verbatim (format version "
                    f"{raw.get('format_version')}; this version reads {FORMAT_VERSION}). Upgrade Verbatim, or "
                    f"rebuild with: {self._build_command()}")
            return _Pointer(int(row["pk"].split(":")[1]), int(raw["version"]), int(raw["seq"]), raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise self._damaged(f"its pointer row cannot be read ({exc})") from None

    def _doc_rows(self, version: int, filter: str = "seq >= 0") -> list[_Doc]:
        return [_doc(r) for r in self._scan(self._name(version, "documents"), filter, _DOC_FIELDS)]

    def _open(self) -> _State:
        """The pointer and the live documents (re-read when a write switched in between)."""
        pointer = None
        for _ in range(3):
            pointer = self._pointer()
            if pointer is None:
                raise self._not_built(f"no collection {self._meta}" if not self._has(self._meta)
                                      else "no build finished")
            docs = _live(self._doc_rows(pointer.version, f"seq <= {pointer.seq}"), pointer.seq)
            again = self._pointer()
            if again is not None and again.ver == pointer.ver:
                return _State(pointer, docs)
        assert pointer is not None
        return _State(pointer, _live(self._doc_rows(pointer.version, f"seq <= {pointer.seq}"), pointer.seq))

    def _read(self, fn: Callable[[_State], Any]) -> Any:
        """``fn(state)``, with Milvus failures as messages; re-opened once if a write
        elsewhere removed what this object had opened (a rebuild dropped its collections,
        or an update deleted the rows of a document it replaced)."""
        for attempt in range(2):
            try:
                with self._lock:
                    if self._state is None:
                        self._connect(create=False)
                        state = self._open()
                        self._load(state.pointer.version)
                        self._state = state
                    state = self._state
                return fn(state)
            except _Failure as failure:
                if failure.kind in ("missing", "stale") and attempt == 0:
                    with self._lock:
                        self._state = None
                        self._pieces.clear()
                        self._pieces_chars = 0
                    continue
                raise self._translate(failure) from None
        raise AssertionError("unreachable")

    def _load(self, version: int) -> None:
        """Load the version's collections into memory now, with time for it: a reopened
        milvus-lite file (or a released collection on a server) is otherwise loaded by the
        first search, which then outlasts :data:`READ_TIMEOUT`. Quick when already loaded."""
        for kind in KINDS:
            self._rpc("load_collection", self._name(version, kind), timeout=LOAD_TIMEOUT)

    # -- info -------------------------------------------------------------------------
    @property
    def info(self) -> StoreInfo:
        return self._read(self._info)

    def version(self) -> str:
        """``<collections version>.<sequence number>.<pointer row>``, read afresh: it
        changes with every write that lands (the pointer row number grows with each)."""
        try:
            self._connect(create=False)
            pointer = self._pointer()
        except _Failure as failure:
            raise self._translate(failure) from None
        if pointer is None:
            raise self._not_built(f"no collection {self._meta}" if not self._has_quiet(self._meta)
                                  else "no build finished")
        return f"{pointer.version}.{pointer.seq}.{pointer.ver}"

    def _has_quiet(self, collection: str) -> bool:
        try:
            return self._has(collection)
        except _Failure as failure:
            raise self._translate(failure) from None

    def reopen(self) -> None:
        """Forget what this object had opened: the next read opens the live version."""
        with self._lock:
            self._state = None
            self._pieces.clear()
            self._pieces_chars = 0

    def _info(self, state: _State) -> StoreInfo:
        raw = state.pointer.raw
        try:
            model = ModelInfo(**raw["model"])
            chunking = ChunkingParams(**raw["chunking"])
        except (KeyError, TypeError, ConfigError) as exc:
            raise self._damaged(f"its pointer row does not say which model and chunking built it ({exc})") from None
        return StoreInfo("milvus", self.location, model, chunking, str(raw.get("passage_field", "")),
                         int(raw.get("documents", len(state.docs))), int(raw.get("passages", 0)),
                         int(raw.get("sentences", 0)), str(raw.get("built_at", "")))

    # -- query time -------------------------------------------------------------------
    def _live_hits(self, state: _State, hits: Iterable[dict]) -> list[tuple[str, float]]:
        out = []
        for h in hits:
            key = _unesc(h["entity"]["key"])
            if key in state.keys:
                out.append((_unesc(str(h["id"])), float(h["distance"])))
        return out

    def _search_live(self, state: _State, collection: str, data: Any, anns: str, params: dict[str, Any], k: int,
                     filter: str = "", scale: float = 1.0) -> list[tuple[str, float]]:
        """The ``k`` best live hits (rows of keys that are not live are dropped; the search
        goes deeper while they crowd out live ones)."""
        limit = min(TOPK_MAX, k + max(OVERFETCH, k // 4))
        while True:
            if "params" in params and "ef" in params["params"]:
                params = {**params, "params": {**params["params"], "ef": max(HNSW_EF_MIN, limit)}}
            res = self._rpc("search", collection, data=[data], anns_field=anns, limit=limit, filter=filter,
                            output_fields=["key"], search_params=params, consistency_level="Strong")
            hits = list(res[0]) if res else []
            found = self._live_hits(state, hits)
            found.sort(key=lambda f: (-f[1], f[0]))
            # Deeper while rows of unfinished writes crowd out live ones, or while passages
            # tied with the k-th may lie past the depth searched (ties are broken by id).
            if len(hits) < limit or limit >= TOPK_MAX or (
                    len(found) >= k and float(hits[-1]["distance"]) < found[k - 1][1]):
                break
            limit = min(TOPK_MAX, limit * 4)
        return [(pid, score / scale) for pid, score in found[:k]]

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        if k <= 0:
            return []

        def run(state: _State) -> list[tuple[str, float]]:
            query = np.asarray(vector, dtype=np.float32).reshape(-1)
            dim = int(state.pointer.raw["model"]["dimension"])
            if query.shape[0] != dim:
                raise IndexMismatchError(f"The Milvus store {self.location} holds {dim}-dimensional vectors, but "
                                         f"the query vector has {query.shape[0]}: the configured model is not the "
                                         f"one that built it. Rebuild with: {self._build_command()}")
            if not state.docs:
                return []
            params: dict[str, Any] = {"metric_type": "IP"}
            if state.pointer.dense_index == "HNSW":
                params["params"] = {"ef": HNSW_EF_MIN}
            return self._search_live(state, self._name(state.pointer.version, "passages"), query.tolist(),
                                     "dense", params, k)
        return self._read(run)

    @staticmethod
    def _text_of(query: LexicalQuery) -> str:
        return query.text.strip() or " ".join(query.terms)

    def lexical_search(self, query: LexicalQuery, k: int) -> list[tuple[str, float]]:
        text = self._text_of(query)
        if k <= 0 or not query.terms or not text:
            return []
        return self._read(lambda state: self._search_live(
            state, self._name(state.pointer.version, "passages"), text, "sparse", {"metric_type": "BM25"}, k,
            scale=BM25_K1 + 1) if state.docs else [])

    def _bm25_of(self, kind: str, query: LexicalQuery, ids: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(ids), dtype=np.float32)
        text = self._text_of(query)
        if not ids or not query.terms or not text:
            return out

        def run(state: _State) -> np.ndarray:
            wanted: dict[str, list[int]] = {}
            for j, item in enumerate(ids):
                try:
                    key = parse_id(item)[0]
                except ValueError:
                    continue
                if key in state.keys:
                    wanted.setdefault(_esc(item), []).append(j)
            collection = self._name(state.pointer.version, kind)
            for part in _chunks(list(wanted), IN_VALUES):
                res = self._rpc("search", collection, data=[text], anns_field="sparse", limit=len(part),
                                filter=f"pk in {_lit(part)}", output_fields=["key"],
                                search_params={"metric_type": "BM25"}, consistency_level="Strong")
                for hit in (res[0] if res else []):
                    for j in wanted.get(str(hit["id"]), ()):
                        out[j] = float(hit["distance"]) / (BM25_K1 + 1)
            return out
        return self._read(run)

    def passage_bm25(self, query: LexicalQuery, passage_ids: Sequence[str]) -> np.ndarray:
        return self._bm25_of("passages", query, passage_ids)

    def sentence_bm25(self, query: LexicalQuery, sentence_ids: Sequence[str]) -> np.ndarray:
        return self._bm25_of("sentences", query, sentence_ids)

    def term_counts(self, query: LexicalQuery) -> TermCounts:
        """The live passages, and for each term the live passages holding it.

        A term is counted by a BM25 search of one word it came from (found by analysing each
        word of ``query.text`` with :func:`indexer.lexical.analyze`; the term itself when none
        is): the search returns every passage holding the word's token (its score is
        positive), so the count of its live hits is exact for Milvus's own analysis. Past
        16384 hits (Milvus's largest limit) the count is taken per range of the passages'
        ``bucket`` field, split until each range returns fewer: exact for any realistic size
        (a single bucket would need over 16 million holders). Rows of unfinished writes are
        not counted. Milvus's analyser differs a little from the local one (one-character
        tokens, ``_`` splits words), so a count can differ from the local store's.
        """
        terms = tuple(query.terms)

        def run(state: _State) -> TermCounts:
            rows = int(state.pointer.raw.get("passages", 0))
            if not terms:
                return TermCounts(rows, np.zeros(0, dtype=np.float64))
            words = self._term_words(query)
            distinct = list(dict.fromkeys(words[t] for t in terms))
            collection = self._name(state.pointer.version, "passages")
            counts: dict[str, int] = {}
            if state.docs:
                res = self._rpc("search", collection, data=distinct, anns_field="sparse", limit=TOPK_MAX,
                                output_fields=["key"], search_params={"metric_type": "BM25"},
                                consistency_level="Strong")
                for word, hits in zip(distinct, res):
                    hits = list(hits)
                    if len(hits) >= TOPK_MAX:
                        counts[word] = self._count_buckets(state, collection, word, 0, BUCKETS)
                    else:
                        counts[word] = len(self._live_hits(state, hits))
            return TermCounts(rows, np.array([float(counts.get(words[t], 0)) for t in terms], dtype=np.float64))
        return self._read(run)

    def _count_buckets(self, state: _State, collection: str, word: str, lo: int, hi: int) -> int:
        res = self._rpc("search", collection, data=[word], anns_field="sparse", limit=TOPK_MAX,
                        filter=f"bucket >= {lo} and bucket < {hi}", output_fields=["key"],
                        search_params={"metric_type": "BM25"}, consistency_level="Strong")
        hits = list(res[0]) if res else []
        if len(hits) < TOPK_MAX or hi - lo <= 1:
            if len(hits) >= TOPK_MAX:
                log.warning("term %r: more than %d passages in one bucket; counted %d", word, TOPK_MAX, TOPK_MAX)
            return len(self._live_hits(state, hits))
        mid = (lo + hi) // 2
        return self._count_buckets(state, collection, word, lo, mid) + self._count_buckets(state, collection, word,
                                                                                           mid, hi)

    @staticmethod
    def _term_words(query: LexicalQuery) -> dict[str, str]:
        """For each term, a word of ``query.text`` it came from (else the term itself)."""
        words: dict[str, str] = {}
        tokens = re.findall(r"\w+", query.text or "")
        if tokens:
            from indexer.lexical import analyze

            for token, analysed in zip(tokens, analyze(tokens)):
                for term in analysed:
                    words.setdefault(term, token)
        return {t: words.get(t, t) for t in query.terms}

    # -- texts ------------------------------------------------------------------------
    def _cache(self, key: tuple[str, int], text: str) -> None:
        if key in self._pieces:
            return
        self._pieces[key] = text
        self._pieces_chars += len(text)
        while self._pieces_chars > 8_000_000 and len(self._pieces) > 1:
            _, old = self._pieces.popitem(last=False)
            self._pieces_chars -= len(old)

    def _slices(self, state: _State, spans: Sequence[tuple[_Doc, int, int]]) -> list[str]:
        """Document text ``[start:end]`` for each (document, start, end)."""
        with self._lock:  # the piece cache is shared by threads
            return self._slices_locked(state, spans)

    def _slices_locked(self, state: _State, spans: Sequence[tuple[_Doc, int, int]]) -> list[str]:
        need_inline, need_pieces = [], []
        for d, start, end in spans:
            if d.pieces == 0:
                if (d.key, -1) not in self._pieces:
                    need_inline.append(d)
            else:
                for n in range(start // d.piece_chars, max(start, end - 1) // d.piece_chars + 1):
                    if (d.key, n) not in self._pieces:
                        need_pieces.append((d, n))
        version = state.pointer.version
        if need_inline:
            by_pk = {d.pk: d for d in need_inline}
            for row in self._query_in(self._name(version, "documents"), "pk", list(by_pk), ["pk", "text"]):
                d = by_pk[row["pk"]]
                self._cache((d.key, -1), json.loads(row["text"]) if d.escaped else row["text"])
        if need_pieces:
            by_pk = {f"{_esc(d.key)}#{n}": (d, n) for d, n in need_pieces}
            for row in self._query_in(self._name(version, "texts"), "pk", list(by_pk), ["pk", "text"]):
                d, n = by_pk[row["pk"]]
                self._cache((d.key, n), json.loads(row["text"]) if d.escaped else row["text"])
        out = []
        for d, start, end in spans:
            if d.pieces == 0:
                text = self._pieces.get((d.key, -1))
                if text is None:
                    raise _Failure("stale", f"the text of {d.doc_id!r} is missing")
                out.append(text[start:end])
                continue
            first = start // d.piece_chars
            parts = []
            for n in range(first, max(start, end - 1) // d.piece_chars + 1):
                piece = self._pieces.get((d.key, n))
                if piece is None:
                    raise _Failure("stale", f"piece {n} of the text of {d.doc_id!r} is missing")
                parts.append(piece)
            joined = "".join(parts)
            base = first * d.piece_chars
            out.append(joined[start - base:end - base])
        return out

    def passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        def run(state: _State) -> list[Passage]:
            version = state.pointer.version
            wanted = []
            for pid in passage_ids:
                try:
                    key, kind, _, _ = parse_id(pid)
                except ValueError:
                    continue
                if kind == "p" and key in state.keys:
                    wanted.append(pid)
            if not wanted:
                return []
            rows = {_unesc(r["pk"]): r for r in self._query_in(
                self._name(version, "passages"), "pk", [_esc(p) for p in wanted],
                ["pk", "key", "start", "end", "sentences", "dense"])}
            spans: dict[str, list[list[int]]] = {pid: json.loads(r["sentences"]) for pid, r in rows.items()}
            sids = {pid: [sentence_id(_unesc(rows[pid]["key"]), a, b) for a, b, _ in s] for pid, s in spans.items()}
            svec = {_unesc(r["pk"]): r["dense"] for r in self._query_in(
                self._name(version, "sentences"), "pk", [_esc(s) for ids in sids.values() for s in ids],
                ["pk", "dense"])}
            order = [pid for pid in dict.fromkeys(wanted) if pid in rows]
            docs = [state.docs[state.keys[_unesc(rows[pid]["key"])]] for pid in order]
            texts = self._slices(state, [(d, int(rows[pid]["start"]), int(rows[pid]["end"]))
                                         for d, pid in zip(docs, order)])
            made: dict[str, Passage] = {}
            for pid, d, text in zip(order, docs, texts):
                r = rows[pid]
                start, end = int(r["start"]), int(r["end"])
                sentences = tuple(Sentence(sid, int(a), int(b), int(k)) for sid, (a, b, k) in zip(sids[pid], spans[pid]))
                missing = [s.sentence_id for s in sentences if s.sentence_id not in svec]
                if missing:
                    raise _Failure("stale", f"the sentence {missing[0]!r} of a stored passage is missing")
                vectors = (np.asarray([svec[s.sentence_id] for s in sentences], dtype=np.float32)
                           if sentences else np.zeros((0, len(r["dense"])), dtype=np.float32))
                made[pid] = Passage(passage_id=pid, doc_id=d.doc_id, start=start, end=end, text=text,
                                    sentences=sentences,
                                    sentence_texts=tuple(text[s.start - start:s.end - start] for s in sentences),
                                    vector=np.asarray(r["dense"], dtype=np.float32), sentence_vectors=vectors,
                                    title=d.title)
            return [made[pid] for pid in passage_ids if pid in made]
        return self._read(run)

    def document(self, doc_id: str) -> Document | None:
        def run(state: _State) -> Document | None:
            d = state.docs.get(doc_id)
            if d is None:
                return None
            text = self._slices(state, [(d, 0, d.chars)])[0] if d.chars else ""
            if len(text) != d.chars:
                raise self._damaged(f"the text of {doc_id!r} has {len(text)} characters, its row says {d.chars}")
            return Document(d.doc_id, d.title, d.source, text, d.sha256, d.url, d.date, d.note)
        return self._read(run)

    def document_infos(self) -> list[DocumentInfo]:
        return self._read(lambda state: sorted(
            (DocumentInfo(d.doc_id, d.title, d.source, d.sha256, d.url, d.date, d.note, d.chars, d.passages)
             for d in state.docs.values()), key=lambda i: i.doc_id))

    def headings(self, doc_id: str) -> tuple[tuple[int, int], ...]:
        def run(state: _State) -> tuple[tuple[int, int], ...]:
            d = state.docs.get(doc_id)
            if d is None or not d.sentences:
                return ()
            rows = self._query(self._name(state.pointer.version, "sentences"),
                               f"key == {json.dumps(_esc(d.key), ensure_ascii=False)} and kind != 0",
                               ["start", "end"])
            return tuple(sorted((int(r["start"]), int(r["end"])) for r in rows))
        return self._read(run)

    # -- build time -------------------------------------------------------------------
    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        try:
            self.info  # noqa: B018 - an index that is not there has no vectors to reuse
        except IndexNotFoundError:
            return {}

        def run(state: _State) -> dict[str, np.ndarray]:
            by_kind: dict[str, list[str]] = {"p": [], "s": []}
            for item in ids:
                try:
                    key, kind, _, _ = parse_id(item)
                except ValueError:
                    continue
                if key in state.keys:
                    by_kind[kind].append(_esc(item))
            out = {}
            for kind, name in (("p", "passages"), ("s", "sentences")):
                if by_kind[kind]:
                    for r in self._query_in(self._name(state.pointer.version, name), "pk", by_kind[kind],
                                            ["pk", "dense"]):
                        out[_unesc(r["pk"])] = np.asarray(r["dense"], dtype=np.float32)
            return out
        return self._read(run)

    def check_room(self, nbytes: int) -> None:
        """Raise IndexWriteError when a milvus-lite file's disk cannot take about ``nbytes``
        more (a server's disk is its own business)."""
        if not self.lite or self.path is None:
            return
        import shutil

        folder = self.path.parent if self.path.parent.exists() else Path(".")
        free = shutil.disk_usage(folder).free
        if free < nbytes:
            raise IndexWriteError(f"Not enough disk space for the milvus-lite file {self.path}: about "
                                  f"{nbytes / 1e6:,.0f} MB are needed, {free / 1e6:,.0f} MB are free. Free some "
                                  "space and run the command again.")

    def write(self, change: Change) -> None:
        """Apply ``change`` (see the module's docstring for how it stays atomic)."""
        try:
            self._connect(create=True)
        except _Failure as failure:  # pragma: no cover - _connect translates its own
            raise self._translate(failure) from None
        writer = _Writer(self, change)
        try:
            writer.lock()
        except _Failure as failure:
            writer.unlock()
            raise self._translate(failure, writing=failure.kind not in ("auth", "unreachable")) from None
        try:
            writer.run()
        except _Failure as failure:
            writer.undo()
            raise self._translate(failure, writing=True) from None
        except BaseException:
            writer.undo()
            raise
        finally:
            writer.unlock()
        self.reopen()

    # -- checks -----------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Read everything back: every collection, every row's document, offsets, sentence
        spans and text pieces, the counts; warn about rows of unfinished writes and changed
        or missing source files.

        Raises:
            IndexNotFoundError, IndexMismatchError.
        """
        with self._lock:
            self._state = None
        return self._read(self._verify)

    def _verify(self, state: _State) -> list[str]:
        version = state.pointer.version
        for kind in KINDS:
            if not self._has(self._name(version, kind)):
                raise self._damaged(f"the collection {self._name(version, kind)} is missing")
        info = self._info(state)
        described = self._rpc("describe_collection", self._name(version, "passages"))
        dims = [int(f.get("params", {}).get("dim", 0)) for f in described.get("fields", []) if f.get("name") == "dense"]
        if dims != [info.model.dimension]:
            raise self._damaged(f"its passage vectors have {dims} dimensions, the pointer says "
                                f"{info.model.dimension}")
        by_key = {d.key: d for d in state.docs.values()}
        orphans = 0
        counts: dict[str, list[int]] = {k: [0, 0, 0] for k in by_key}
        for r in self._scan(self._name(version, "passages"), 'pk != ""', ["key", "start", "end", "sentences"]):
            d = by_key.get(_unesc(r["key"]))
            if d is None:
                orphans += 1
                continue
            counts[d.key][0] += 1
            spans = json.loads(r["sentences"])
            start, end = int(r["start"]), int(r["end"])
            if not (0 <= start <= end <= d.chars) or (spans and (spans[0][0] != start or spans[-1][1] != end)) \
                    or any(not (start <= a <= b <= end) for a, b, _ in spans):
                raise self._damaged(f"a passage of {d.doc_id!r} points outside its article")
        for r in self._scan(self._name(version, "sentences"), 'pk != ""', ["key", "start", "end"]):
            d = by_key.get(_unesc(r["key"]))
            if d is None:
                orphans += 1
                continue
            counts[d.key][1] += 1
            if not 0 <= int(r["start"]) <= int(r["end"]) <= d.chars:
                raise self._damaged(f"a sentence of {d.doc_id!r} points outside its article")
        for r in self._scan(self._name(version, "texts"), 'pk != ""', ["key", "n"]):
            d = by_key.get(_unesc(r["key"]))
            if d is None:
                orphans += 1
                continue
            counts[d.key][2] += 1
        for key, (p, s, t) in counts.items():
            d = by_key[key]
            if (p, s, t) != (d.passages, d.sentences, d.pieces):
                raise self._damaged(f"{d.doc_id!r} has {p} passages, {s} sentences and {t} text pieces stored; its "
                                    f"row says {d.passages}, {d.sentences} and {d.pieces}")
        for d in state.docs.values():
            text = self._slices(state, [(d, 0, d.chars)])[0] if d.chars else ""
            if len(text) != d.chars:
                raise self._damaged(f"the text of {d.doc_id!r} has {len(text)} characters, its row says {d.chars}")
        totals = (len(state.docs), sum(d.passages for d in state.docs.values()),
                  sum(d.sentences for d in state.docs.values()))
        if totals != (info.documents, info.passages, info.sentences):
            raise self._damaged(f"it holds {totals[0]} documents, {totals[1]} passages and {totals[2]} sentences; its "
                                f"pointer says {info.documents}, {info.passages} and {info.sentences}")
        warnings_: list[str] = []
        if orphans:
            warnings_.append(f"{orphans} rows of an unfinished write are stored but never answered; the next write "
                             "removes them")
        docs = sorted(state.docs.values(), key=lambda d: d.doc_id)
        return warnings_ + source_warnings(((d.doc_id, d.source, d.sha256) for d in docs),
                                           f" --store {shlex.quote(self.location)}")

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._state = None
            self._pieces.clear()
            self._pieces_chars = 0
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
            release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> "MilvusStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MilvusStore({self.location!r}, prefix={self.prefix!r})"


def _release_lite(resolved: str) -> None:
    """One MilvusStore fewer on a milvus-lite file; the last one stops its server (so that
    another process may open the file)."""
    with _LITE_LOCK:
        _LITE_USERS[resolved] = _LITE_USERS.get(resolved, 1) - 1
        last = _LITE_USERS[resolved] <= 0
        if last:
            del _LITE_USERS[resolved]
    if last:
        with contextlib.suppress(Exception), quiet_lite():
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(resolved)


# --------------------------------------------------------------------------- writing

class _Writer:
    """One write under the store's lock row (see the module docstring for the steps)."""

    def __init__(self, store: MilvusStore, change: Change) -> None:
        self.s = store
        self.change = change
        self.owner = uuid.uuid4().hex
        self.lock_pks: list[str] = []
        self.rows_written = 0
        self.since = 0.0
        self.renewed = 0.0
        self.created: list[str] = []  # collections this write created (dropped if it fails)
        self.pending_pks: list[str] = []
        self.new_keys: list[str] = []  # keys whose rows this write inserted
        self.new_doc_pks: list[str] = []
        self.version = 0
        self.committed = False
        self._buffers: dict[str, tuple[list[dict[str, Any]], list[int]]] = {}

    # -- the lock ---------------------------------------------------------------------
    def _ensure_meta(self) -> None:
        s = self.s
        if not s._has(s._meta):
            pm = _pymilvus()
            schema = pm.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("pk", pm.DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("kind", pm.DataType.VARCHAR, max_length=32)
            schema.add_field("value", pm.DataType.VARCHAR, max_length=VARCHAR_BYTES)
            schema.add_field("_v", pm.DataType.FLOAT_VECTOR, dim=2)
            index = pm.MilvusClient.prepare_index_params()
            index.add_index(field_name="_v", index_type="FLAT", metric_type="IP")
            s._rpc("create_collection", s._meta, schema=schema, consistency_level="Strong", timeout=WRITE_TIMEOUT)
            s._rpc("create_index", s._meta, index, timeout=WRITE_TIMEOUT, sync=False)
            s._rpc("load_collection", s._meta, timeout=WRITE_TIMEOUT)

    def lock(self) -> None:
        """Take the store's writer lock, waiting in line (up to :data:`LOCK_WAIT`) behind
        writers that came first: several workers (``indexer add --shard I/N``) can write
        to one store; their writes take turns, their reading and embedding do not.

        Milvus has no compare-and-set, so the lock is a row per writer: each inserts its
        row (its place in line is when it first asked, ``since``), and goes ahead when no
        live row came before it — checked twice, :data:`LOCK_GRACE` apart, so that a row
        whose insert was still under way at the first check is seen."""
        self._ensure_meta()
        self.since = time.time()
        self._lock_row()
        deadline = time.monotonic() + LOCK_WAIT
        delay = 0.2
        confirmed = False
        while True:
            ahead = self._ahead()
            if not ahead:
                if confirmed:
                    return
                confirmed = True
                time.sleep(LOCK_GRACE)
                continue
            confirmed = False
            if time.monotonic() > deadline:
                self.unlock()
                v = min(ahead, key=lambda o: (o["since"], o["owner"]))
                since = datetime.fromtimestamp(v["since"], timezone.utc).strftime("%H:%M:%S UTC")
                raise IndexLockedError(
                    f"Another process (pid {v.get('pid')} on {v.get('host')}) has been writing the Milvus store "
                    f"{self.s.location} since {since}, and this one waited {int(LOCK_WAIT)} s for it. Wait until "
                    f"it finishes and try again; a writer that crashed stops blocking after "
                    f"{int(LOCK_TTL // 60)} minutes.")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
            self.renew()

    def _ahead(self) -> list[dict[str, Any]]:
        """The live lock rows of writers ahead of this one (stale ones are deleted)."""
        rows = self.s._query(self.s._meta, 'kind == "lock"', ["pk", "value"])
        now = time.time()
        mine = (self.since, self.owner)
        ahead, stale = [], []
        for r in rows:
            try:
                v = json.loads(r["value"])
                owner, ts = str(v["owner"]), float(v["ts"])
                v["since"] = float(v.get("since", ts))
            except (ValueError, KeyError, TypeError):
                stale.append(r["pk"])
                continue
            if owner == self.owner:
                continue
            if now - ts > LOCK_TTL:
                stale.append(r["pk"])
            elif (v["since"], owner) < mine:
                ahead.append(v)
        if stale:
            self.s._delete_in(self.s._meta, "pk", stale)
        return ahead

    def _lock_row(self) -> None:
        pk = f"lock:{self.owner}:{self.rows_written}"
        self.rows_written += 1
        value = json.dumps({"owner": self.owner, "ts": time.time(), "since": self.since, "pid": os.getpid(),
                            "host": socket.gethostname()})
        self.s._rpc("insert", self.s._meta, [{"pk": pk, "kind": "lock", "value": value, "_v": DUMMY}],
                    timeout=WRITE_TIMEOUT)
        old, self.lock_pks = self.lock_pks, [pk]
        if old:
            self.s._delete_in(self.s._meta, "pk", old)
        self.renewed = time.time()

    def renew(self) -> None:
        if time.time() - self.renewed > LOCK_RENEW:
            self._lock_row()

    def unlock(self) -> None:
        if self.lock_pks:
            with contextlib.suppress(_Failure):
                self.s._delete_in(self.s._meta, "pk", self.lock_pks)
            self.lock_pks = []

    # -- helpers ----------------------------------------------------------------------
    def _versions(self) -> set[int]:
        pattern = re.compile(rf"^{re.escape(self.s.prefix)}_v(\d+)_(?:{'|'.join(KINDS)})$")
        return {int(m.group(1)) for name in self.s._rpc("list_collections") if (m := pattern.match(name))}

    def _add(self, collection: str, rows: Iterable[dict[str, Any]], dim: int) -> None:
        """Queue rows for ``collection``; full batches (INSERT_ROWS rows or INSERT_BYTES)
        are inserted at once, the rest by :meth:`_flush`."""
        batch, size = self._buffers.setdefault(collection, ([], [0]))
        for row in rows:
            nbytes = 4 * dim + sum(len(v) * 2 for v in row.values() if isinstance(v, str)) + 64
            if batch and (len(batch) >= INSERT_ROWS or size[0] + nbytes > INSERT_BYTES):
                self._insert_batch(collection, batch)
                batch.clear()
                size[0] = 0
            batch.append(row)
            size[0] += nbytes

    def _flush(self) -> None:
        for collection, (batch, size) in self._buffers.items():
            if batch:
                self._insert_batch(collection, batch)
                batch.clear()
                size[0] = 0

    def _insert(self, collection: str, rows: Iterable[dict[str, Any]], dim: int) -> None:
        self._add(collection, rows, dim)
        self._flush()

    def _insert_batch(self, collection: str, batch: list[dict[str, Any]]) -> None:
        self.renew()
        res = self.s._rpc("insert", collection, batch, timeout=WRITE_TIMEOUT)
        count = res.get("insert_count", len(batch)) if isinstance(res, dict) else len(batch)
        if count != len(batch):
            raise _Failure("other", f"{collection}: {count} of {len(batch)} rows were inserted")

    def _create(self, version: int, dim: int, server_index: bool) -> str:
        """Create version ``version``'s collections; the dense index type used."""
        s = self.s
        pm = _pymilvus()
        dt = pm.DataType

        def schema(*fields: tuple[Any, ...], bm25: bool = False, vectors: int = 0) -> Any:
            sch = pm.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            sch.add_field("pk", dt.VARCHAR, is_primary=True, max_length=ID_BYTES)
            for name, kind, *extra in fields:
                sch.add_field(name, kind, **(extra[0] if extra else {}))
            if bm25:
                sch.add_field("text", dt.VARCHAR, max_length=VARCHAR_BYTES, enable_analyzer=True,
                              analyzer_params=ANALYZER)
                sch.add_field("sparse", dt.SPARSE_FLOAT_VECTOR)
                sch.add_function(pm.Function(name="bm25", function_type=pm.FunctionType.BM25,
                                             input_field_names=["text"], output_field_names=["sparse"]))
            sch.add_field("dense" if vectors else "_v", dt.FLOAT_VECTOR, dim=vectors or 2)
            return sch

        def index(dense: dict[str, Any] | None, bm25: bool = False, field_name: str = "dense") -> Any:
            ip = pm.MilvusClient.prepare_index_params()
            spec = dense or DENSE_INDEX_LITE
            ip.add_index(field_name=field_name, index_type=spec["index_type"], metric_type="IP",
                         params=dict(spec["params"]))
            if bm25:
                ip.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                             params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
            return ip

        def create(name: str, sch: Any, ip: Any, fallback: Any = None) -> None:
            # create_collection(index_params=...) waits 0.5 s per index for it to be built;
            # an empty collection's index needs no wait.
            self.created.append(name)
            s._rpc("create_collection", name, schema=sch, consistency_level="Strong", timeout=WRITE_TIMEOUT)
            try:
                s._rpc("create_index", name, ip, timeout=WRITE_TIMEOUT, sync=False)
            except _Failure as failure:
                if fallback is None or "only support" not in failure.reason:
                    raise
                s._rpc("create_index", name, fallback, timeout=WRITE_TIMEOUT, sync=False)
            s._rpc("load_collection", name, timeout=WRITE_TIMEOUT)

        ids = {"max_length": ID_BYTES}
        text = {"max_length": VARCHAR_BYTES}
        create(s._name(version, "documents"), schema(
            ("doc_id", dt.VARCHAR, ids), ("key", dt.VARCHAR, ids), ("seq", dt.INT64), ("removed", dt.BOOL),
            ("title", dt.VARCHAR, text), ("source", dt.VARCHAR, text), ("sha256", dt.VARCHAR, {"max_length": 128}),
            ("url", dt.VARCHAR, text), ("date", dt.VARCHAR, text), ("note", dt.VARCHAR, text), ("nulls", dt.INT64),
            ("chars", dt.INT64), ("passages", dt.INT64), ("sentences", dt.INT64), ("text", dt.VARCHAR, text),
            ("pieces", dt.INT64), ("piece_chars", dt.INT64), ("escaped", dt.BOOL)), index(None, field_name="_v"))
        create(s._name(version, "texts"), schema(("key", dt.VARCHAR, ids), ("n", dt.INT64), ("text", dt.VARCHAR, text)),
               index(None, field_name="_v"))
        passages_schema = lambda: schema(  # noqa: E731
            ("doc_id", dt.VARCHAR, ids), ("key", dt.VARCHAR, ids), ("start", dt.INT64), ("end", dt.INT64),
            ("first", dt.INT64), ("sentences", dt.VARCHAR, text), ("bucket", dt.INT64), bm25=True, vectors=dim)
        if server_index:  # milvus-lite served over http says "local mode only support FLAT ...": FLAT
            create(s._name(version, "passages"), passages_schema(), index(DENSE_INDEX_SERVER, bm25=True),
                   fallback=index(DENSE_INDEX_LITE, bm25=True))
        else:
            create(s._name(version, "passages"), passages_schema(), index(DENSE_INDEX_LITE, bm25=True))
        described = s._rpc("list_indexes", s._name(version, "passages"), field_name="dense")
        detail = s._rpc("describe_index", s._name(version, "passages"), described[0]) if described else {}
        chosen = DENSE_INDEX_SERVER if detail.get("index_type") == "HNSW" else DENSE_INDEX_LITE
        create(s._name(version, "sentences"), schema(
            ("doc_id", dt.VARCHAR, ids), ("key", dt.VARCHAR, ids), ("start", dt.INT64), ("end", dt.INT64),
            ("kind", dt.INT64), bm25=True, vectors=dim), index(DENSE_INDEX_LITE, bm25=True))
        return str(chosen["index_type"])

    # -- rows -------------------------------------------------------------------------
    @staticmethod
    def _check_ids(value: str, what: str) -> str:
        out = _esc(value)
        if len(out.encode("utf-8")) > ID_BYTES:
            raise ValueError(f"{what} is longer than Milvus stores ({ID_BYTES} bytes): {value[:80]!r}…")
        return out

    @staticmethod
    def _vector(v: np.ndarray, dim: int, what: str) -> list[float]:
        a = np.asarray(v, dtype=np.float32).reshape(-1)
        if a.shape[0] != dim or not np.isfinite(a).all():
            raise ValueError(f"the vector of {what} has {a.shape[0]} dimensions (expected {dim}) or is not finite")
        return a.tolist()

    def _rows(self, stored: StoredDocument, seq: int, dim: int, with_rows: bool
              ) -> tuple[dict[str, Any], list[dict], list[dict], list[dict]]:
        """The documents row and (when ``with_rows``) the passages, sentences and texts rows."""
        doc = stored.document
        key = stored.key
        ekey = self._check_ids(key, "a document key")
        edoc = self._check_ids(doc.doc_id, "a document id")
        text = doc.text
        escaped = not _utf8(text)
        piece = ESCAPED_PIECE_CHARS if escaped else PIECE_CHARS
        stored_text = (lambda t: json.dumps(t)) if escaped else (lambda t: t)
        pieces = 0 if len(text) <= piece else -(-len(text) // piece)
        nulls = sum(bit for name, bit in _NULL_BITS.items() if getattr(doc, name) is None)
        meta = {name: _enc(getattr(doc, name) or "") for name in ("title", "source", "url", "date", "note")}
        for name, value in meta.items():
            if len(value.encode("utf-8")) > VARCHAR_BYTES:
                raise ValueError(f"the {name} of {doc.doc_id!r} is longer than Milvus stores ({VARCHAR_BYTES} bytes)")
        doc_row = {"pk": f"{ekey}#{seq}", "doc_id": edoc, "key": ekey, "seq": seq, "removed": False, **meta,
                   "sha256": doc.sha256, "nulls": nulls, "chars": len(text), "passages": len(stored.passages),
                   "sentences": len(stored.sentences), "text": stored_text(text) if pieces == 0 else "",
                   "pieces": pieces, "piece_chars": piece, "escaped": escaped, "_v": DUMMY}
        if not with_rows:
            return doc_row, [], [], []
        texts = [{"pk": f"{ekey}#{n}", "key": ekey, "n": n, "text": stored_text(text[n * piece:(n + 1) * piece]),
                  "_v": DUMMY} for n in range(pieces)]
        spans = [[s.start, s.end, int(s.kind)] for s in stored.sentences]
        passages = []
        for p in stored.passages:
            if parse_id(p.passage_id)[0] != key or not 0 <= p.first_sentence < p.end_sentence <= len(spans):
                raise ValueError(f"the passage {p.passage_id!r} does not belong to {key!r} or its sentence range "
                                 "is wrong")
            pk = self._check_ids(p.passage_id, "a passage id")
            passages.append({"pk": pk, "doc_id": edoc, "key": ekey, "start": p.start, "end": p.end,
                             "first": p.first_sentence, "sentences": json.dumps(spans[p.first_sentence:p.end_sentence]),
                             "bucket": zlib.crc32(pk.encode("utf-8")) % BUCKETS, "text": _analysed(p.field_text),
                             "dense": self._vector(p.vector, dim, p.passage_id)})
        sentences = []
        for sen in stored.sentences:
            if parse_id(sen.sentence_id)[0] != key:
                raise ValueError(f"the sentence {sen.sentence_id!r} does not belong to {key!r}")
            sentences.append({"pk": self._check_ids(sen.sentence_id, "a sentence id"), "doc_id": edoc, "key": ekey,
                              "start": sen.start, "end": sen.end, "kind": int(sen.kind),
                              "text": _analysed(sen.text), "dense": self._vector(sen.vector, dim, sen.sentence_id)})
        return doc_row, passages, sentences, texts

    @staticmethod
    def _tombstone(doc_id: str, seq: int) -> dict[str, Any]:
        return {"pk": f"{_esc(doc_id)}#removed#{seq}", "doc_id": _esc(doc_id), "key": "", "seq": seq,
                "removed": True, "title": "", "source": "", "sha256": "", "url": "", "date": "", "note": "",
                "nulls": 7, "chars": 0, "passages": 0, "sentences": 0, "text": "", "pieces": 0,
                "piece_chars": PIECE_CHARS, "escaped": False, "_v": DUMMY}

    def _write_rows(self, version: int, passages: list[dict], sentences: list[dict], texts: list[dict],
                    dim: int) -> None:
        self._add(self.s._name(version, "texts"), texts, 2)
        self._add(self.s._name(version, "passages"), passages, dim)
        self._add(self.s._name(version, "sentences"), sentences, dim)

    def _delete_keys(self, version: int, keys: Iterable[str]) -> None:
        keys = [_esc(k) for k in keys]
        if keys:
            for kind in ("passages", "sentences", "texts"):
                self.s._delete_in(self.s._name(version, kind), "key", keys)

    def _pointer_value(self, version: int, seq: int, docs: dict[str, _Doc], model: ModelInfo,
                       chunking: ChunkingParams, passage_field: str, dense_index: str) -> str:
        return json.dumps({
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "version": version, "seq": seq,
            "model": {"name": model.name, "dimension": model.dimension, "normalized": model.normalized,
                      "backend": model.backend},
            "chunking": {"min_words": chunking.min_words, "max_words": chunking.max_words,
                         "overlap_sentences": chunking.overlap_sentences},
            "passage_field": passage_field, "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "documents": len(docs), "passages": sum(d.passages for d in docs.values()),
            "sentences": sum(d.sentences for d in docs.values()), "dense_index": dense_index,
        }, ensure_ascii=False)

    def _switch(self, old: _Pointer | None, value: str) -> None:
        """Insert the new pointer row, then delete the older ones: the atomic switch."""
        ver = (old.ver if old else 0) + 1
        try:
            self.s._rpc("insert", self.s._meta,
                        [{"pk": f"ptr:{ver:012d}", "kind": "ptr", "value": value, "_v": DUMMY}],
                        timeout=WRITE_TIMEOUT)
        except _Failure as failure:
            if failure.kind != "unreachable":  # refused by the server: it did not land
                raise
            # A timeout or a lost connection: the insert may have landed, now or later, and
            # undoing this write could then delete what the live pointer names. Keep
            # everything (what no pointer names is removed by the next write) and say so.
            self.committed = True
            landed = None
            with contextlib.suppress(Exception):
                landed = self.s._pointer()
            if landed is not None and landed.ver == ver:
                SWITCHED.append(self.s.location)
                return
            raise IndexWriteError(
                f"Writing to the Milvus store {self.s.location} was cut off at its last step ({failure.reason}): "
                "the change may or may not have been applied, and nothing is lost either way. Check with: "
                f"python -m indexer list --store {shlex.quote(self.s.location)} (or verify), and run the "
                "command again if the change is missing.") from None
        self.committed = True
        SWITCHED.append(self.s.location)  # the command line's Ctrl-C message: already updated
        with contextlib.suppress(_Failure):
            olds = [r["pk"] for r in self.s._query(self.s._meta, 'kind == "ptr"', ["pk"])
                    if int(r["pk"].split(":")[1]) < ver]
            self.s._delete_in(self.s._meta, "pk", olds)

    # -- the write --------------------------------------------------------------------
    def run(self) -> None:
        s, change = self.s, self.change
        pointer = s._pointer()
        if change.based_on is not None:
            now = f"{pointer.version}.{pointer.seq}.{pointer.ver}" if pointer else None
            if now != change.based_on:
                raise IndexLockedError(moved_on_message(s.location))
        # Another process's failed full rebuild may have left collections of other versions.
        live_version = pointer.version if pointer else None
        for v in sorted(self._versions()):
            if v != live_version:
                for kind in KINDS:
                    s._rpc("drop_collection", s._name(v, kind), timeout=WRITE_TIMEOUT)
        raw = pointer.raw if pointer else {}
        try:
            base_model = ModelInfo(**raw["model"]) if raw else None
            base_chunking = ChunkingParams(**raw["chunking"]) if raw else None
        except (KeyError, TypeError, ConfigError):
            base_model = base_chunking = None
        model = change.model or base_model
        chunking = change.chunking or base_chunking
        if model is None or chunking is None:
            raise ValueError("the first write of an index must say which model and chunking made it")
        passage_field = change.passage_field or str(raw.get("passage_field", ""))
        ids = [d.document.doc_id for d in change.put]
        if len(set(ids)) != len(ids):
            raise ValueError("document ids must be unique")
        if change.replace_all or pointer is None:
            self._full(pointer, model, chunking, passage_field)
        else:
            if base_model is not None and model.dimension != base_model.dimension:
                raise IndexMismatchError(
                    f"The Milvus store {s.location} holds {base_model.dimension}-dimensional vectors; this write "
                    f"brings {model.dimension}-dimensional ones. Rebuild it with: {s._build_command()}")
            self._incremental(pointer, model, chunking, passage_field)

    def _full(self, pointer: _Pointer | None, model: ModelInfo, chunking: ChunkingParams, passage_field: str) -> None:
        s, change = self.s, self.change
        if not change.put:
            raise ValueError("there is no text to index")
        version = max([pointer.version if pointer else 0, *self._versions()]) + 1
        self.version = version
        dim = model.dimension
        dense_index = self._create(version, dim, server_index=not s.lite)
        docs: dict[str, _Doc] = {}
        for stored in sorted(change.put, key=lambda d: d.document.doc_id):
            doc_row, p, se, t = self._rows(stored, 1, dim, True)
            self._write_rows(version, p, se, t, dim)
            self._add(s._name(version, "documents"), [doc_row], 2)  # (a new version: unseen until the switch)
            docs[stored.document.doc_id] = _doc(doc_row)
        self._flush()
        self._switch(pointer, self._pointer_value(version, 1, docs, model, chunking, passage_field, dense_index))
        if pointer is not None:
            for kind in KINDS:
                with contextlib.suppress(_Failure):
                    s._rpc("drop_collection", s._name(pointer.version, kind), timeout=WRITE_TIMEOUT)

    def _sweep(self, pointer: _Pointer) -> dict[str, _Doc]:
        """Remove what unfinished writes left; return the live documents."""
        s = self.s
        version, seq = pointer.version, pointer.seq
        rows = []
        for n, row in enumerate(s._scan(s._name(version, "documents"), "seq >= 0", _DOC_FIELDS)):
            rows.append(_doc(row))
            if n % 4000 == 0:
                self.renew()  # a scan of millions of documents outlasts the lock's expiry otherwise
        live = _live(rows, seq)
        live_pks = {d.pk for d in live.values()}
        live_keys = {d.key for d in live.values()}
        pending = s._query(s._meta, 'kind == "pending"', ["pk", "value"])
        junk_keys = {r.key for r in rows if r.key and r.key not in live_keys}
        for r in pending:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                junk_keys |= {k for k in json.loads(r["value"])["keys"] if k not in live_keys}
        # Rows below the live one (and uncommitted ones) first, then tombstones: never the
        # other way round, or a removed document would come back.
        best: dict[str, _Doc] = {}
        for r in rows:
            if r.seq <= seq and (r.doc_id not in best or r.seq > best[r.doc_id].seq):
                best[r.doc_id] = r
        below = [r.pk for r in rows if r.pk not in live_pks and best.get(r.doc_id) is not r]
        tombs = [r.pk for r in best.values() if r.removed]
        self.renew()
        self._delete_keys(version, junk_keys)
        self.renew()
        s._delete_in(s._name(version, "documents"), "pk", below)
        s._delete_in(s._name(version, "documents"), "pk", tombs)
        s._delete_in(s._meta, "pk", [r["pk"] for r in pending])
        return live

    def _incremental(self, pointer: _Pointer, model: ModelInfo, chunking: ChunkingParams, passage_field: str) -> None:
        s, change = self.s, self.change
        version, dim = pointer.version, model.dimension
        self.version = version
        live = self._sweep(pointer)
        seq = pointer.seq + 1
        touched = {d.document.doc_id for d in change.put} | set(change.remove)
        after = {k: v for k, v in live.items() if k not in touched}
        if not after and not change.put:
            raise ValueError("there is no text to index")
        fresh = [d for d in change.put if live.get(d.document.doc_id) is None
                 or live[d.document.doc_id].key != d.key]
        fresh_ids = {d.document.doc_id for d in fresh}
        # 1. the intent: keys about to get rows (the next write removes them if this one fails)
        keys = [d.key for d in fresh]
        for n, part in enumerate(_chunks(keys, 500)):
            pk = f"pending:{seq}:{n}"
            s._rpc("insert", s._meta, [{"pk": pk, "kind": "pending", "value": json.dumps({"seq": seq, "keys": list(part)},
                                                                                       ensure_ascii=False),
                                        "_v": DUMMY}], timeout=WRITE_TIMEOUT)
            self.pending_pks.append(pk)
        self.new_keys = keys
        # 2. the new versions' rows, under new keys (leftovers of those keys removed first)
        self._delete_keys(version, keys)
        # 3. with them, documents rows and tombstones of seq S+1 (not visible before the switch)
        documents = s._name(version, "documents")
        for stored in sorted(change.put, key=lambda d: d.document.doc_id):
            doc_row, p, se, t = self._rows(stored, seq, dim, stored.document.doc_id in fresh_ids)
            self._write_rows(version, p, se, t, dim)
            self.new_doc_pks.append(doc_row["pk"])
            self._add(documents, [doc_row], 2)
            after[stored.document.doc_id] = _doc(doc_row)
        put_ids = {d.document.doc_id for d in change.put}
        tombs = [self._tombstone(doc_id, seq) for doc_id in sorted(set(change.remove) - put_ids) if doc_id in live]
        self.new_doc_pks += [r["pk"] for r in tombs]
        self._add(documents, tombs, 2)
        self._flush()
        # 4. the switch
        self._switch(pointer, self._pointer_value(version, seq, after, model, chunking, passage_field,
                                                  pointer.dense_index))
        # 5. what the switch replaced (a failure here leaves only rows no answer uses)
        with contextlib.suppress(_Failure):
            old = [live[doc_id] for doc_id in touched if doc_id in live]
            gone = [d.key for d in old if after.get(d.doc_id) is None or after[d.doc_id].key != d.key]
            self._delete_keys(version, gone)
            s._delete_in(s._name(version, "documents"), "pk", [d.pk for d in old])
            s._delete_in(s._name(version, "documents"), "pk", [r["pk"] for r in tombs])
            s._delete_in(s._meta, "pk", self.pending_pks)

    def undo(self) -> None:
        """After a failure before the switch: remove what this write added (best effort;
        whatever stays is never answered and the next write removes it)."""
        if self.committed:
            return
        s = self.s
        with contextlib.suppress(Exception):
            for name in reversed(self.created):
                s._rpc("drop_collection", name, timeout=WRITE_TIMEOUT)
            if not self.created and self.version:
                self._delete_keys(self.version, self.new_keys)
                s._delete_in(s._name(self.version, "documents"), "pk", self.new_doc_pks)
                s._delete_in(s._meta, "pk", self.pending_pks)


__all__ = ["ANALYZER", "BM25_B", "BM25_K1", "DENSE_INDEX_LITE", "DENSE_INDEX_SERVER", "MilvusStore",
           "held_by_another_process", "lite_path", "lite_processes", "open_elsewhere", "open_elsewhere_message",
           "open_here", "quiet_lite"]
