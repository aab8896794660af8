"""The domain exceptions, re-exported for query-time callers (they live in indexer.errors
so that the build side, which is imported by the query side, can raise them too)."""

from indexer.errors import (
    ConfigError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    ModelNotFoundError,
    QuestionError,
    StoreUnavailableError,
    VerbatimError,
)

__all__ = [
    "ConfigError", "IndexLockedError", "IndexMismatchError", "IndexNotFoundError",
    "ModelNotFoundError", "QuestionError", "StoreUnavailableError", "VerbatimError",
]
