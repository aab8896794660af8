"""Where an index lives: the local folder (the default) or Milvus. See :mod:`indexer.stores.base`.

``open_store(settings)`` picks the implementation from ``settings.store`` (``VERBATIM_STORE``,
``--store``): empty for the local index at ``settings.index_dir``; ``milvus:PATH.db`` for
milvus-lite (embedded, one process at a time); ``http://HOST:PORT`` or ``https://…`` for a
Milvus server or cluster (or milvus-lite served on 127.0.0.1).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from indexer.errors import ConfigError

if TYPE_CHECKING:
    from indexer.settings import Settings
    from indexer.stores.base import Store

MILVUS_PREFIXES = ("milvus:", "http://", "https://")


def open_store(settings: "Settings") -> "Store":
    """The store ``settings`` name (nothing is read until it is first asked something).

    Raises:
        ConfigError: a store URI of an unknown kind.
    """
    uri = settings.store.strip()
    if not uri:
        from indexer.stores.local import LocalStore

        return LocalStore(settings.index_dir, exact_max=settings.exact_max)
    if uri.lower().startswith(MILVUS_PREFIXES):
        from indexer.stores.milvus import MilvusStore

        return MilvusStore(uri, settings)
    raise ConfigError(f"VERBATIM_STORE (--store) must be empty (the local index folder), milvus:PATH.db "
                      f"(milvus-lite) or http://HOST:PORT (a Milvus server); got {describe(settings)!r}.")


def describe(settings: "Settings") -> str:
    """The store in words for messages and --help (never a password or token).

    >>> from indexer.settings import Settings
    >>> describe(Settings(store="http://user:secret@db.example:19530/news?token=x"))
    'http://db.example:19530/news'
    >>> describe(Settings(store="htp://u:se#c/ret@h:1"))
    'htp://h:1'
    """
    uri = settings.store.strip()
    return redact(uri) if uri else str(settings.index_dir)


def redact(uri: str) -> str:
    """A store URI without what may be credentials: everything up to the last ``@`` (a
    password may hold ``/``, ``?`` or ``#``), and the query string.

    >>> redact("http://u:p@ss/w#rd@h:19530/db?token=t")
    'http://h:19530/db'
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    rest = rest.rpartition("@")[2]
    return f"{scheme}://{rest.split('?', 1)[0].split('#', 1)[0]}"


def store_option(settings: "Settings") -> str:
    """The command-line option that names this index, for commands a message suggests:
    ``--index DIR`` or ``--store URI`` (without credentials; quoted for the shell).

    >>> from indexer.settings import Settings
    >>> store_option(Settings(store="http://u:pw@h:19530"))
    '--store http://h:19530'
    """
    if not settings.store.strip():
        return f"--index {shlex.quote(str(settings.index_dir))}"
    return f"--store {shlex.quote(describe(settings))}"
