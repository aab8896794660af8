"""Domain exceptions. Only the edges (CLI, app) turn them into messages and exit codes.

Every message says what went wrong *and* what to do next.
"""

from __future__ import annotations

class VerbatimError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(VerbatimError):
    """A setting has an invalid value."""


class ModelNotFoundError(VerbatimError):
    """The embedding model's folder is missing."""


class DocumentError(VerbatimError):
    """A file cannot be read as an article (binary, empty, undecodable, too large)."""


class IndexNotFoundError(VerbatimError):
    """No index at the given directory."""


class StoreUnavailableError(VerbatimError):
    """The store's server cannot be reached (it may hold an index: nothing is assumed)."""


class IndexMismatchError(VerbatimError):
    """The index on disk was built with another format, model or settings, or is corrupt."""


class QuestionError(VerbatimError):
    """The question is empty or too long."""


class IndexLockedError(VerbatimError):
    """Another process is writing the index."""


class IndexWriteError(VerbatimError):
    """The index cannot be written (read-only folder, full disk); the existing one is intact."""
