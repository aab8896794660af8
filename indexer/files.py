"""Finding article files (light: no parser is imported here; query time uses it for hints)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import DocumentError

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED_SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".docx")


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why (``reason`` does not repeat the path)."""

    path: str
    reason: str

    @classmethod
    def because(cls, path: str | Path, error: DocumentError) -> "Skipped":
        """The skip a :class:`DocumentError` about ``path`` stands for (its message starts
        with the path; the reason is the rest)."""
        return cls(str(path), str(error).removeprefix(f"{path}: "))


def find_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Skipped]]:
    """Expand files and folders (recursively) into supported article files, sorted.

    A path that does not exist, or a file with an unsupported suffix named directly, is
    reported as skipped rather than silently ignored.
    """
    found: list[Path] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(path)
            else:
                skipped.append(Skipped(str(path), f"unsupported file type {path.suffix or '(none)'!r}; "
                                       f"supported: {', '.join(SUPPORTED_SUFFIXES)}"))
        else:
            skipped.append(Skipped(str(path), "no such file or folder"))
    unique = sorted(dict.fromkeys(found))
    return unique, skipped


