"""Command line for building and maintaining the index.

    python -m indexer build [PATH ...] [--index DIR] [--if-changed]
    python -m indexer add PATH ... [--index DIR] [--batch FILES] [--shard I/N]
    python -m indexer remove DOC_ID ... [--index DIR]
    python -m indexer list [--index DIR] [--json]
    python -m indexer verify [--index DIR]
    python -m indexer repair [--index DIR]
    python -m indexer compact [--index DIR]
    python -m indexer upgrade [--index DIR]
    python -m indexer serve --store milvus:PATH.db [--port PORT]

Every command takes --store URI (VERBATIM_STORE) to work on a Milvus store instead of the
index folder (--index DIR and --store URI together are a usage error; --index alone means
that folder, whatever VERBATIM_STORE says).

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
    store = sys.modules.get("indexer.stores.folder")
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
        p.add_argument("--store", metavar="URI", default=None,
                       help="where the index lives instead of the folder: milvus:PATH.db (milvus-lite) or "
                       "http://HOST:PORT (a Milvus server or cluster; token and database from "
                       "VERBATIM_MILVUS_TOKEN and VERBATIM_MILVUS_DB) (default: VERBATIM_STORE)")
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
        "when there is none. Files are read and written in batches (--batch), so memory does "
        "not grow with their number; --shard I/N takes every N-th file only, for N workers.")
    add.add_argument("paths", nargs="+", metavar="PATH", help="article files or folders")
    add.add_argument("--batch", type=int, default=500, metavar="FILES",
                     help="articles read, embedded and written together (default 500)")
    add.add_argument("--shard", default=None, metavar="I/N",
                     help="this worker's share of the files: the I-th of N (1 <= I <= N), by the files' "
                     "sorted order; run N workers with 1/N ... N/N against one Milvus store")
    remove = command("remove", "remove articles by document id",
                     "Remove articles from the index without re-embedding the others.")
    remove.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    lst = command("list", "list the indexed articles",
                  "List the indexed articles: id, title, date, passages, source.")
    lst.add_argument("--json", action="store_true",
                     help="print one JSON object per article, one per line")
    command("verify", "check the index against its manifest and its source files",
            "Check every stored file against its sizes and checksums, the stored tables and "
            "vectors against the counts and dimension, and each article's source file against "
            "the indexed content. Exit 0 when the index is intact (changed or missing source "
            "files are reported as warnings), 3 when it is damaged.")
    command("repair", "make a damaged index answer again from its newest intact generation",
            "When CURRENT (the pointer to the live generation) is missing or damaged, or names "
            "a damaged generation, check every generation the index folder keeps, newest first, "
            "and make the newest intact one current. Deletes nothing. Exit 0 when the index "
            "answers (it was intact, or was repaired), 3 when no generation is intact. Local "
            "index folders only.")
    command("compact", "merge the local index's segments into one",
            "Every add writes a small segment beside the others; they are merged when there get "
            "to be many. This merges them all now, leaving out removed articles. Local index "
            "folders only (Milvus compacts itself).")
    command("upgrade", "rebuild an index written by an older Verbatim from the articles it stores",
            "An index of an older format (version 2) is refused until upgraded; this rebuilds it "
            "from the article texts it stores (re-embedding them), keeping every article. add and "
            "build upgrade it too.")
    serve = command("serve", "serve a milvus-lite database on 127.0.0.1 for several processes",
                    "milvus-lite opens a .db file in one process only. Serve it once (until Ctrl-C) and "
                    "point the app and the command lines at the printed http://127.0.0.1:PORT.")
    serve.add_argument("--port", type=int, default=19530, help="port on 127.0.0.1 (default 19530)")
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


def _where(settings) -> str:  # type: ignore[no-untyped-def]
    from indexer.stores import describe

    return printable(describe(settings))


def _is_current(settings, store, docs) -> bool:  # type: ignore[no-untyped-def]
    from indexer.build import PASSAGE_FIELD, same_vector_kind
    from indexer.embedding import backend_label

    try:
        info = store.info
        stored = {(d.doc_id, d.sha256, d.source) for d in store.document_infos()}
    except VerbatimError:
        return False
    return (stored == {(d.doc_id, d.sha256, d.source) for d in docs}
            and info.chunking == settings.chunking and info.model.name == settings.model_name
            and info.passage_field == PASSAGE_FIELD
            and same_vector_kind(info.model, backend_label(settings.backend, settings.model_path)))


def _embedder(settings):  # type: ignore[no-untyped-def]
    from indexer.embedding import load_embedder

    return load_embedder(settings.model_path, settings.model_name, settings.backend)


def _lazy_embedder(settings, store):  # type: ignore[no-untyped-def]
    from indexer.embedding import backend_label
    from indexer.update import LazyEmbedder

    try:
        model = store.info.model
    except VerbatimError:
        return _embedder(settings)
    if model.name != settings.model_name:
        return _embedder(settings)  # another model: everything is re-embedded with it
    return LazyEmbedder(settings.model_name, model.dimension, lambda: _embedder(settings),
                        backend=backend_label(settings.backend, settings.model_path))


def _store(settings):  # type: ignore[no-untyped-def]
    from indexer.stores import open_store

    return open_store(settings)


def _upgrade_from_v2(settings, store, embedder, *, show_progress: bool = True) -> bool:  # type: ignore[no-untyped-def]
    """When the local index is of format 2, rebuild it from the articles it stores; True
    when it did."""
    from indexer.build import build_index
    from indexer.stores.legacy import legacy_documents

    if settings.store:
        return False
    documents = legacy_documents(settings.index_dir)
    if documents is None:
        return False
    say(f"Upgrading the index at {_where(settings)} (format 2) from the {len(documents)} articles it stores…",
        err=True)
    build_index(documents, settings, embedder() if callable(embedder) else embedder, store=store,
                show_progress=show_progress)
    return True


def _build(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.build import build_index
    from indexer.documents import load_documents

    docs, skipped = load_documents(args.paths, settings.limits, settings.chunking)
    _warn_skipped(skipped, docs)
    if not docs:
        say(f"error: no readable articles in {' '.join(map(printable, args.paths))} "
            "(expected .txt, .md, .html, .pdf or .docx files).", err=True)
        return 2
    store = _store(settings)
    if args.if_changed and _is_current(settings, store, docs):
        say(f"Index at {_where(settings)} is up to date ({len(docs)} articles).")
        return 0
    started = time.perf_counter()
    result = build_index(docs, settings, _embedder(settings), store=store, show_progress=True)
    say(f"Indexed {result.documents} articles, {result.chunks} passages, "
        f"{result.sentences} sentences into {_where(settings)} "
        f"in {time.perf_counter() - started:.1f} s.")
    return 0


def _shard(spec: str | None) -> tuple[int, int] | None:
    from indexer.errors import ConfigError

    if spec is None:
        return None
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must be I/N, e.g. 2/4; got {spec!r}.") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--shard I/N needs 1 <= I <= N; got {spec!r}.")
    return i, n


def _add(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.documents import load_documents
    from indexer.files import SUPPORTED_SUFFIXES, find_files
    from indexer.stores.folder import read_pointer
    from indexer.update import add_documents

    if args.batch < 1:
        say(f"error: --batch must be at least 1; got {args.batch}.", err=True)
        return 2
    try:
        shard = _shard(args.shard)
    except VerbatimError as exc:  # bad usage, like --batch 0: exit 2
        say(f"error: {exc}", err=True)
        return 2
    files, missing = find_files(args.paths)
    if shard is not None:
        files = [f for n, f in enumerate(files) if n % shard[1] == shard[0] - 1]
    store = _store(settings)
    named = " ".join(map(printable, args.paths))
    exists = read_pointer(settings.index_dir) is not None if not settings.store else True
    if not files and not exists:
        _warn_skipped(missing)
        say(f"error: no readable articles in {named}, and no index at "
            f"{_where(settings)} to keep: nothing to do. Give .txt, .md, .html, .pdf "
            "or .docx files or folders holding them.", err=True)
        return 2
    if not files and not missing:
        say(f"warning: no article files in {named} (looked for {', '.join(SUPPORTED_SUFFIXES)}); "
            "nothing to add, the index is unchanged.", err=True)
    embedder = _lazy_embedder(settings, store)
    if _upgrade_from_v2(settings, store, embedder):
        store = _store(settings)
    totals = {"added": 0, "updated": 0, "unchanged": 0, "skipped": len(missing)}
    last = None
    readable = 0
    _warn_skipped(missing)
    for lo in range(0, max(len(files), 1), args.batch):  # bounded memory: one batch at a time
        docs, skipped = load_documents(files[lo:lo + args.batch], settings.limits, settings.chunking)
        readable += len(docs)
        if not docs and not skipped:
            continue
        report = add_documents(docs, settings, embedder, skipped=skipped, show_progress=True, store=store)
        _warn_skipped(report.skipped, docs)
        for key in ("added", "updated", "unchanged"):
            totals[key] += len(getattr(report, key))
        totals["skipped"] += len(report.skipped)
        last = report.result or last
    say(f"Added {totals['added']}, updated {totals['updated']}, unchanged "
        f"{totals['unchanged']}, skipped {totals['skipped']}.")
    if last is not None:
        say(f"Index now holds {last.documents} articles, {last.chunks} passages; embedded "
            f"{last.embedded_chunks} passages and {last.embedded_sentences} sentences.")
    return 0 if readable or not totals["skipped"] else 2


def _remove(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.update import remove_documents

    report = remove_documents(args.doc_ids, settings, store=_store(settings))
    result = report.result
    say(f"Removed {', '.join(map(printable, report.removed))}. Index now holds "
        f"{result.documents if result else 0} articles, {result.chunks if result else 0} passages.")
    return 0


def _list(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    infos = _store(settings).document_infos()
    for d in infos:
        item = {"doc_id": d.doc_id, "title": d.title, "date": d.date, "url": d.url,
                "source": d.source, "chunks": d.passages, "chars": d.chars}
        if args.json:
            print(json_line(item))
        else:
            say(f"{printable(d.doc_id)}  {d.date or '----------'}  {d.passages:4d} passages  "
                f"{printable(d.title[:70])}  ({printable(d.source)})")
    if not args.json:
        say(f"{len(infos)} articles, {sum(d.passages for d in infos)} passages.")
    return 0


def _verify(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    for warning in _store(settings).verify():
        say(f"warning: {printable(warning)}", err=True)
    say(f"Index at {_where(settings)} is intact.")
    return 0


def _local_only(settings, what: str) -> int | None:  # type: ignore[no-untyped-def]
    if settings.store:
        say(f"{what} is for local index folders; the Milvus store at {_where(settings)} needs none.")
        return 0
    return None


def _repair(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.stores.local import repair_index

    done = _local_only(settings, "repair")
    if done is not None:
        return done
    repaired = repair_index(settings.index_dir)
    for name in repaired.damaged:
        say(f"warning: generation {name} is damaged; passed over (kept in the folder).", err=True)
    if repaired.switched:
        say(f"Repaired the index at {printable(settings.index_dir)}: it answers from generation "
            f"{repaired.generation} again ({repaired.documents} articles). Nothing was deleted.")
    else:
        say(f"Index at {printable(settings.index_dir)} is intact ({repaired.generation}, "
            f"{repaired.documents} articles); nothing to repair.")
    return 0


def _compact(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    done = _local_only(settings, "compact")
    if done is not None:
        return done
    store = _store(settings)
    before = len(store.manifest.segments)
    if before == 1 and not store.manifest.segments[0].removed:
        say(f"The index at {printable(settings.index_dir)} is already one segment "
            f"({store.info.documents} articles); nothing to compact.")
        return 0
    started = time.perf_counter()
    store.compact()
    say(f"Compacted the index at {printable(settings.index_dir)}: {before} segment(s) into "
        f"{len(store.manifest.segments)} in {time.perf_counter() - started:.1f} s "
        f"({store.info.documents} articles).")
    return 0


def _upgrade(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    done = _local_only(settings, "upgrade")
    if done is not None:
        return done
    store = _store(settings)
    if not _upgrade_from_v2(settings, store, lambda: _embedder(settings)):
        say(f"Index at {printable(settings.index_dir)} is of the current format; nothing to upgrade.")
        return 0
    say(f"Upgraded the index at {printable(settings.index_dir)}: {_store(settings).info.documents} articles.")
    return 0


def _serve(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.errors import ConfigError
    from indexer.stores.milvus_server import main as serve_main

    if not settings.store.startswith("milvus:"):
        raise ConfigError("serve needs --store milvus:PATH.db (a milvus-lite database file).")
    import signal

    # Ctrl-C stops serving ("Stopping…", exit 0) instead of the write commands' message.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return serve_main(settings.store.removeprefix("milvus:"), args.port)


COMMANDS = {"build": _build, "add": _add, "remove": _remove, "list": _list, "verify": _verify,
            "repair": _repair, "compact": _compact, "upgrade": _upgrade, "serve": _serve}


def main(argv: list[str] | None = None) -> int:
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if getattr(args, "index", None) is not None and getattr(args, "store", None):
            parser.error("give --index DIR (a local folder) or --store URI, not both")
        from indexer.settings import Settings

        settings = Settings.from_env().with_index(args.index, args.store)
        return COMMANDS[args.command](args, settings)
    except VerbatimError as exc:
        say(f"error: {exc}", err=True)
        return 3
    except KeyboardInterrupt:
        print("interrupted; the previous index is unchanged.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
