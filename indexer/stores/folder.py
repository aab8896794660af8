"""An index folder's mechanics, whatever it holds: the live-generation pointer (``CURRENT``),
the writer lock, atomic switches, write errors as messages, and the hints that name the fix.

See docs/index-format.md. The local store (:mod:`indexer.stores.local`) keeps its
generations and segments in such a folder; nothing here knows their contents.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from indexer.errors import IndexLockedError, IndexMismatchError, IndexWriteError
from indexer.files import find_files

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
LOCK = ".lock"
# Files whose checksums are verified on every load when the index is this small or smaller;
# larger indexes check sizes on load and full checksums with `python -m indexer verify`.
FULL_CHECK_BYTES = 256 * 1024 * 1024
# A generation is a plain folder of the index: "gen-" and letters, digits, ".", "_", "-";
# a segment likewise, "seg-".
GENERATION_NAME = re.compile(r"gen-[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
SEGMENT_NAME = re.compile(r"seg-[A-Za-z0-9][A-Za-z0-9._-]{0,200}")

# Said after a build command that names seeds/ because the indexed articles are unknown.
SEEDS_CAVEAT = "(that indexes the example articles in seeds/; name your own articles' folders instead)"


def new_name(prefix: str) -> str:
    """A folder name that sorts in the order names were made: ``<prefix>-<UTC time>-<ns>-<pid>``."""
    now = time.time_ns()  # one reading: names sort in the order they were made
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now // 10**9))}-{now % 10**9:09d}-{os.getpid()}"


def build_command(index_dir: Path | str, sources: Iterable[str] = ()) -> str:
    """The command that rebuilds the index at ``index_dir`` from ``sources`` (the indexed
    articles' files, when known; else the seeds). A folder is named instead of its files
    when every article file under it was indexed (never ".": that would take in whatever
    else sits in the working directory).

    >>> build_command("index")
    'python -m indexer build seeds'
    """
    paths = _rebuild_paths(sources) or ["seeds"]
    index_dir = str(index_dir)
    return (f"python -m indexer build {' '.join(shlex.quote(p) for p in paths)}"
            + ("" if index_dir == "index" else f" --index {shlex.quote(index_dir)}"))


def _rebuild_paths(sources: Iterable[str]) -> list[str]:
    by_folder: dict[str, list[str]] = {}
    for source in dict.fromkeys(os.path.normpath(s) for s in sources):
        by_folder.setdefault(os.path.dirname(source), []).append(source)
    indexed = {s for files in by_folder.values() for s in files}
    paths: list[str] = []
    folders: list[str] = []  # named folders (searched recursively by the build)
    for folder, files in sorted(by_folder.items()):
        if any(folder.startswith(f + os.sep) for f in folders):
            continue
        found = find_files([folder])[0] if folder and Path(folder).is_dir() else []
        if found and {os.path.normpath(str(p)) for p in found} <= indexed:
            paths.append(folder)
            folders.append(folder)
        else:
            paths.extend(sorted(files))
    return paths


def indexed_sources(index_dir: Path | str) -> list[str]:
    """Best effort: the source files of the articles in the current index generation, for
    a rebuild hint; empty when they cannot be read."""
    index_dir = Path(index_dir)
    name = _pointer_or_none(index_dir)
    candidates = [name] if name else [g.name for g in reversed(generations(index_dir))]
    for candidate in candidates:
        try:
            manifest = json.loads((index_dir / candidate / MANIFEST).read_text(encoding="utf-8"))
            sources: list[str] = []
            for seg in manifest["segments"]:
                if not SEGMENT_NAME.fullmatch(seg["name"]):  # never a path out of the index
                    raise ValueError(f"not a segment name: {seg['name']!r}")
                removed = set(seg.get("removed", ()))
                with (index_dir / seg["name"] / "documents.jsonl").open(encoding="utf-8") as f:
                    sources += [str(json.loads(line)["source"]) for n, line in enumerate(f) if n not in removed]
            return sources
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return []


def rebuild_hint(index_dir: Path | str) -> str:
    """"Rebuild it with: <command>" naming the indexed articles where they are known, else
    the seeds with a word on naming your own folders instead."""
    sources = indexed_sources(index_dir)
    command = build_command(index_dir, sources)
    if not sources:
        command += f" {SEEDS_CAVEAT}"
    return f"Rebuild it with: {command}"


def source_warnings(documents: Iterable[tuple[str, str, str]], option: str) -> list[str]:
    """``verify``'s warnings about the indexed articles' files: for each (doc id, source,
    sha256), a file that is gone or has changed since (with the command that updates it;
    ``option`` names the index, e.g. `` --index DIR``)."""
    warnings = []
    for doc_id, source, sha256 in documents:
        path = Path(source)
        if not path.is_file():
            warnings.append(f"{doc_id}: source file {source} is missing (the index keeps its text; citations "
                            "still work)")
        elif sha256_file(path) != sha256:
            warnings.append(f"{doc_id}: source file {source} changed since it was indexed; update it with: "
                            f"python -m indexer add {shlex.quote(source)}{option}")
    return warnings


def index_flag(index_dir: Path | str) -> str:
    """`` --index DIR`` for commands a message suggests, or nothing for the default ``index``.

    >>> index_flag("index"), index_flag("my news")
    ('', " --index 'my news'")
    """
    return "" if str(index_dir) == "index" else f" --index {shlex.quote(str(index_dir))}"


def repair_hint(index_dir: Path | str) -> str:
    """What to run about a damaged index: the repair command when some generation of it
    may still be intact, and the rebuild command."""
    index_dir = Path(index_dir)
    flag = index_flag(index_dir)
    # Another generation than the (damaged) one CURRENT names may still be intact.
    others = [g for g in generations(index_dir) if g.name != _pointer_or_none(index_dir)]
    restore = f"Restore its newest intact generation with: python -m indexer repair{flag}; or r" if others else "R"
    return f"{restore}{rebuild_hint(index_dir)[1:]}"


def package_version(package: str) -> str | None:
    """An installed distribution's version from its metadata (no import), or None."""
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """Versions recorded in the manifest (read from package metadata: importing
    sentence-transformers would import torch, which the ONNX backends never need)."""
    return {name: package_version(name) for name in
            ("faiss-cpu", "bm25s", "numpy", "sentence-transformers", "onnxruntime", "pymilvus", "milvus-lite")}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_table(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under ``folder`` but its manifest."""
    table = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (MANIFEST, "segment.json")):
        table[path.relative_to(folder).as_posix()] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return table


def fsync_tree(root: Path) -> None:
    for path in [*root.rglob("*"), root]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- write errors

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def write_error(index_dir: Path, exc: BaseException) -> IndexWriteError:
    """The message for a failed write into ``index_dir`` (the existing index is intact)."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in _FULL or "No space left" in text or "Disk quota" in text:
        return IndexWriteError(
            f"There is not enough free disk space to write the index in {index_dir} ({text}). "
            "Free some space, or use --index (VERBATIM_INDEX_DIR) on another disk, and run the "
            "command again; the existing index is unchanged.")
    if code in _READ_ONLY or "Read-only file system" in text or "Permission denied" in text:
        return IndexWriteError(
            f"The index folder {index_dir} is not writable ({text}). Make it writable, or use "
            "--index (VERBATIM_INDEX_DIR) with a folder you can write; the existing index is "
            "unchanged.")
    return IndexWriteError(f"Cannot write the index in {index_dir} ({type(exc).__name__}: {text}). "
                           "Check the folder and the disk, and run the command again; the existing "
                           "index is unchanged.")


def check_free_space(index_dir: Path, needed: int) -> None:
    """Refuse to start a write that cannot fit: ``needed`` bytes (an estimate of the new
    generation) must be free on the index's file system, before anything is embedded.

    Raises:
        IndexWriteError: naming the space needed and free.
    """
    probe = index_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell: the write itself reports a full disk
    if free < needed:
        raise IndexWriteError(
            f"There is not enough free disk space in {index_dir}: the new index needs about "
            f"{needed / 1e6:,.1f} MB and {free / 1e6:,.1f} MB are free. Free some space, or use "
            "--index (VERBATIM_INDEX_DIR) on another disk, and run the command again; the "
            "existing index is unchanged.")


@contextlib.contextmanager
def write_lock(index_dir: Path, wait_seconds: float = 10.0) -> Iterator[None]:
    """Hold the index's writer lock; wait up to ``wait_seconds`` for another writer.

    Raises:
        IndexLockedError: another process kept the lock for longer.
        IndexWriteError: the folder cannot be written (read-only, full).
    """
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = (index_dir / LOCK).open("a")
    except OSError as exc:
        raise write_error(index_dir, exc) from exc
    with handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexLockedError(
                        f"Another process is writing the index at {index_dir}. Wait for it to "
                        "finish and try again (the existing index stays usable meanwhile)."
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- generations

def generations(index_dir: Path) -> list[Path]:
    """The generation folders of an index, oldest first (their names begin with the time
    they were written)."""
    try:
        entries = list(Path(index_dir).iterdir())
    except OSError:
        return []
    return sorted((p for p in entries if GENERATION_NAME.fullmatch(p.name)
                   and p.is_dir() and not p.is_symlink()), key=lambda p: p.name)


def damaged(index_dir: Path, problem: str) -> IndexMismatchError:
    return IndexMismatchError(f"The index at {index_dir} is damaged: {problem}. Nothing was changed. "
                              f"{repair_hint(index_dir)}")


def read_pointer(index_dir: Path) -> str | None:
    """The name of the live generation that ``CURRENT`` holds, checked; None when there is
    no index at all (no ``CURRENT`` and no generation).

    ``CURRENT`` must be a plain file holding one generation name (``gen-…``, a folder
    directly inside the index, not a link) whose folder has a manifest.

    Raises:
        IndexMismatchError: ``CURRENT`` is missing beside generations, unreadable, not text,
            names something that is not a generation of this index, or a missing one.
    """
    pointer = index_dir / CURRENT
    if not os.path.lexists(pointer):
        if generations(index_dir):
            raise damaged(index_dir, f"its {CURRENT} file is missing, but it holds generation folders")
        return None
    if pointer.is_symlink() or not pointer.is_file():
        raise damaged(index_dir, f"{CURRENT} is not a plain file")
    try:
        with pointer.open("rb") as f:
            raw = f.read(4096)
    except OSError as exc:
        raise damaged(index_dir, f"{CURRENT} cannot be read ({exc.strerror or exc})") from exc
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise damaged(index_dir, f"{CURRENT} does not hold a generation name (not UTF-8 text)") from None
    if not GENERATION_NAME.fullmatch(name):
        raise damaged(index_dir, f"{CURRENT} holds {name[:80]!r}, which is not the name of a "
                                  "generation folder inside the index")
    gen = index_dir / name
    if gen.is_symlink() or not (gen / MANIFEST).is_file():
        raise damaged(index_dir, f"{CURRENT} names {name}, which is missing or has no {MANIFEST}")
    return name


def _pointer_or_none(index_dir: Path) -> str | None:
    """Best effort, for messages: the generation ``CURRENT`` names when it is usable."""
    try:
        name = (index_dir / CURRENT).read_bytes()[:4096].decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if GENERATION_NAME.fullmatch(name) and (index_dir / name).is_dir() else None


# The generations this process made current (the command line's Ctrl-C message says
# whether the index was already updated).
SWITCHED: list[str] = []


@contextlib.contextmanager
def _no_ctrl_c() -> Iterator[None]:
    """Hold Ctrl-C back (main thread only) while the switch and its record happen together."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_pointer(index_dir: Path, name: str) -> None:
    """Point ``CURRENT`` at generation ``name``: written aside, fsynced, then renamed over
    it (the atomic switch). A damaged ``CURRENT`` that is a folder is moved aside first
    (``.CURRENT.damaged-…``), not deleted."""
    pointer = index_dir / f".{CURRENT}.tmp-{os.getpid()}"
    target = index_dir / CURRENT
    if target.is_dir() and not target.is_symlink():
        os.rename(target, index_dir / f".{CURRENT}.damaged-{time.time_ns()}")
    try:
        with pointer.open("w", encoding="utf-8") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        with _no_ctrl_c():
            os.replace(pointer, target)
            SWITCHED.append(name)
    except BaseException:
        with contextlib.suppress(OSError):
            pointer.unlink()
        raise



def _discard(*paths: Path) -> None:
    """Remove what a failed write left."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def remove_unused(index_dir: Path, keep_generations: set[str] | None, keep_segments: set[str] | None) -> None:
    """Delete leftovers of interrupted writes (``.tmp-*`` folders, ``.CURRENT.tmp-*``
    files), and every generation and segment not kept. With a keep set of None (the old
    pointer was damaged, so which generation was live is unknown), nothing of that kind is
    deleted."""
    for path in list(index_dir.iterdir()):
        if path.name.startswith(".tmp-"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f".{CURRENT}.tmp-"):
            with contextlib.suppress(OSError):
                path.unlink()
    if keep_generations is not None:
        for path in generations(index_dir):
            if path.name not in keep_generations:
                shutil.rmtree(path, ignore_errors=True)
    if keep_segments is not None:
        for path in segments(index_dir):
            if path.name not in keep_segments:
                shutil.rmtree(path, ignore_errors=True)


def segments(index_dir: Path) -> list[Path]:
    """The segment folders of an index, oldest first."""
    try:
        entries = list(Path(index_dir).iterdir())
    except OSError:
        return []
    return sorted((p for p in entries if SEGMENT_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink()),
                  key=lambda p: p.name)
