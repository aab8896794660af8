"""Command line for building and maintaining the index.

    python -m indexer build [PATH ...] [--index DIR] [--if-changed]
    python -m indexer add PATH ... [--index DIR]
    python -m indexer remove DOC_ID ... [--index DIR]
    python -m indexer list [--index DIR] [--json]
    python -m indexer verify [--index DIR]
    python -m indexer repair [--index DIR]

Everything printed in plain text goes through :func:`indexer.terminal.printable`: file
names, ids and titles cannot steer the terminal.
"""

from __future__ import annotations

import _signal  # the C module, always loaded: installing the handler imports nothing
import os
import sys


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C at any moment, imports included: a message and exit code 130, at once (a
    KeyboardInterrupt can be swallowed, or turned into an ImportError inside a C
    extension; this cannot). Stopping anywhere is safe: the index is switched atomically,
    and what an interrupted write leaves (``.tmp-*``) the next write removes."""
    store = sys.modules.get("indexer.store")
    updated = bool(getattr(store, "SWITCHED", None))
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 - interrupted in the middle of a write
        pass
    os.write(2, b"interrupted after the index was updated.\n" if updated
             else b"interrupted; the previous index is unchanged.\n")
    os._exit(130)


if __name__ == "__main__":
    _signal.signal(_signal.SIGINT, _interrupted)

import argparse  # noqa: E402
import time  # noqa: E402

from indexer.errors import VerbatimError  # noqa: E402
from indexer.terminal import json_line, printable  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer",
        description="Build and maintain the Verbatim index of articles.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=description)
        p.add_argument("--index", metavar="DIR", default=None,
                       help="index folder (default: VERBATIM_INDEX_DIR or ./index)")
        return p

    build = command(
        "build", "index articles from files and folders (full rebuild)",
        "Read articles (.txt, .md, .html, .pdf, .docx; folders are searched recursively), "
        "chunk, embed and index them. The new index replaces the old one atomically; files "
        "that cannot be read are skipped with a warning.")
    build.add_argument("paths", nargs="*", default=["seeds"], metavar="PATH",
                       help="article files or folders (default: seeds)")
    build.add_argument("--if-changed", action="store_true",
                       help="do nothing when the index already holds exactly these articles, "
                       "built with the current model, backend kind (float32 or int8) and chunking settings")
    add = command(
        "add", "add or update articles (embeds only new or changed ones)",
        "Add articles to the index, or update those whose content changed (same file name = "
        "same document id). Unchanged articles are not re-embedded; an article with the same "
        "content as an indexed one is reported as a duplicate and skipped. Creates the index "
        "when there is none.")
    add.add_argument("paths", nargs="+", metavar="PATH", help="article files or folders")
    remove = command("remove", "remove articles by document id",
                     "Remove articles from the index without re-embedding the others.")
    remove.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    lst = command("list", "list the indexed articles",
                  "List the indexed articles: id, title, date, passages, source.")
    lst.add_argument("--json", action="store_true",
                     help="print one JSON object per article, one per line")
    command("verify", "check the index against its manifest and its source files",
            "Check every index file against the manifest's sizes and checksums, the stored "
            "tables and vectors against the manifest's counts and dimension, and each "
            "article's source file against the indexed content. Exit 0 when the index is "
            "intact (changed or missing source files are reported as warnings), 3 when it "
            "is damaged.")
    command("repair", "make a damaged index answer again from its newest intact generation",
            "When CURRENT (the pointer to the live generation) is missing or damaged, or names "
            "a damaged generation, check every generation the index folder keeps, newest first, "
            "and make the newest intact one current. Deletes nothing. Exit 0 when the index "
            "answers (it was intact, or was repaired), 3 when no generation is intact.")
    return parser


def say(text: str, *, err: bool = False) -> None:
    """Print one line (or block) of plain-text output, made safe for a terminal."""
    print(printable(text, multiline=True), file=sys.stderr if err else sys.stdout)


def _warn_skipped(skipped, docs=()) -> None:  # type: ignore[no-untyped-def]
    for s in skipped:
        say(f"warning: skipped {printable(s.path)}: {s.reason}", err=True)
    for d in docs:
        if d.note:
            say(f"note: {printable(d.source)}: {d.note}", err=True)


def _is_current(settings, docs) -> bool:  # type: ignore[no-untyped-def]
    from indexer.build import same_vector_kind
    from indexer.embedding import backend_label
    from indexer.store import corpus_hash, read_manifest

    try:
        manifest = read_manifest(settings.index_dir)
    except VerbatimError:
        return False
    return (
        manifest.corpus.hash == corpus_hash(docs)
        and manifest.chunking == settings.chunking
        and manifest.model.name == settings.model_name
        and same_vector_kind(manifest.model, backend_label(settings.backend, settings.model_path))
        and list(manifest.sources) == sorted(d.source for d in docs)
    )


def _embedder(settings):  # type: ignore[no-untyped-def]
    from indexer.embedding import load_embedder

    return load_embedder(settings.model_path, settings.model_name, settings.backend)


def _lazy_embedder(settings):  # type: ignore[no-untyped-def]
    from indexer.embedding import backend_label
    from indexer.store import read_manifest
    from indexer.update import LazyEmbedder

    try:
        model = read_manifest(settings.index_dir).model
    except VerbatimError:
        return _embedder(settings)
    if model.name != settings.model_name:
        return _embedder(settings)  # another model: everything is re-embedded with it
    return LazyEmbedder(settings.model_name, model.dimension, lambda: _embedder(settings),
                        backend=backend_label(settings.backend, settings.model_path))


def _build(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.build import build_index
    from indexer.documents import load_documents

    docs, skipped = load_documents(args.paths, settings.limits, settings.chunking)
    _warn_skipped(skipped, docs)
    if not docs:
        say(f"error: no readable articles in {' '.join(map(printable, args.paths))} "
            "(expected .txt, .md, .html, .pdf or .docx files).", err=True)
        return 2
    if args.if_changed and _is_current(settings, docs):
        say(f"Index at {printable(settings.index_dir)} is up to date ({len(docs)} articles).")
        return 0
    started = time.perf_counter()
    result = build_index(docs, settings, _embedder(settings), sources=sorted(d.source for d in docs),
                         show_progress=True)
    say(f"Indexed {result.documents} articles, {result.chunks} passages, "
        f"{result.sentences} sentences into {printable(settings.index_dir)} "
        f"in {time.perf_counter() - started:.1f} s.")
    return 0


def _add(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.documents import load_documents
    from indexer.loaders import SUPPORTED_SUFFIXES
    from indexer.store import read_pointer
    from indexer.update import add_documents

    docs, skipped = load_documents(args.paths, settings.limits, settings.chunking)
    named = " ".join(map(printable, args.paths))
    if not docs and read_pointer(settings.index_dir) is None:
        _warn_skipped(skipped, docs)
        say(f"error: no readable articles in {named}, and no index at "
            f"{printable(settings.index_dir)} to keep: nothing to do. Give .txt, .md, .html, .pdf "
            "or .docx files or folders holding them.", err=True)
        return 2
    if not docs and not skipped:
        say(f"warning: no article files in {named} (looked for {', '.join(SUPPORTED_SUFFIXES)}); "
            "nothing to add, the index is unchanged.", err=True)
    report = add_documents(docs, settings, _lazy_embedder(settings), skipped=skipped,
                           show_progress=True)
    _warn_skipped(report.skipped, docs)
    say(f"Added {len(report.added)}, updated {len(report.updated)}, unchanged "
        f"{len(report.unchanged)}, skipped {len(report.skipped)}.")
    if report.result is not None:
        r = report.result
        say(f"Index now holds {r.documents} articles, {r.chunks} passages; embedded "
            f"{r.embedded_chunks} passages and {r.embedded_sentences} sentences.")
    return 0 if docs or not report.skipped else 2


def _remove(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.update import remove_documents

    report = remove_documents(args.doc_ids, settings, _lazy_embedder(settings))
    result = report.result
    say(f"Removed {', '.join(map(printable, report.removed))}. Index now holds "
        f"{result.documents if result else 0} articles, {result.chunks if result else 0} passages.")
    return 0


def _list(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    import numpy as np

    from indexer.store import load_index

    index = load_index(settings.index_dir)
    counts = np.bincount(np.asarray(index.chunks)[:, 0], minlength=len(index.documents))
    for row, doc in enumerate(index.documents):
        item = {"doc_id": doc.doc_id, "title": doc.title, "date": doc.date, "url": doc.url,
                "source": doc.source, "chunks": int(counts[row]), "chars": len(doc.text)}
        if args.json:
            print(json_line(item))
        else:
            say(f"{printable(doc.doc_id)}  {doc.date or '----------'}  {int(counts[row]):4d} passages  "
                f"{printable(doc.title[:70])}  ({printable(doc.source)})")
    if not args.json:
        say(f"{len(index.documents)} articles, {len(index.chunks)} passages.")
    return 0


def _verify(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.store import verify_index

    report = verify_index(settings.index_dir)
    for warning in report:
        say(f"warning: {printable(warning)}", err=True)
    say(f"Index at {printable(settings.index_dir)} is intact.")
    return 0


def _repair(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.store import repair_index

    done = repair_index(settings.index_dir)
    for name in done.damaged:
        say(f"warning: generation {name} is damaged; passed over (kept in the folder).", err=True)
    if done.switched:
        say(f"Repaired the index at {printable(settings.index_dir)}: it answers from generation "
            f"{done.generation} again ({done.documents} articles). Nothing was deleted.")
    else:
        say(f"Index at {printable(settings.index_dir)} is intact ({done.generation}, "
            f"{done.documents} articles); nothing to repair.")
    return 0


COMMANDS = {"build": _build, "add": _add, "remove": _remove, "list": _list, "verify": _verify,
            "repair": _repair}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        from indexer.settings import Settings

        settings = Settings.from_env().with_index(args.index)
        return COMMANDS[args.command](args, settings)
    except VerbatimError as exc:
        say(f"error: {exc}", err=True)
        return 3
    except KeyboardInterrupt:
        print("interrupted; the previous index is unchanged.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
