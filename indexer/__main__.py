"""Command line for building and maintaining the index.

    python -m indexer build [PATH ...] [--index DIR] [--if-changed]
    python -m indexer add PATH ... [--index DIR]
    python -m indexer remove DOC_ID ... [--index DIR]
    python -m indexer list [--index DIR] [--json]
    python -m indexer verify [--index DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from indexer.errors import VerbatimError


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
            "Check every index file against the manifest's sizes and checksums, and each "
            "article's source file against the indexed content. Exit 0 when the index is "
            "intact (changed or missing source files are reported as warnings), 3 when it "
            "is damaged.")
    return parser


def _warn_skipped(skipped, docs=()) -> None:  # type: ignore[no-untyped-def]
    for s in skipped:
        print(f"warning: skipped {s.path}: {s.reason}", file=sys.stderr)
    for d in docs:
        if d.note:
            print(f"note: {d.source}: {d.note}", file=sys.stderr)


def _is_current(settings, docs) -> bool:  # type: ignore[no-untyped-def]
    from indexer.build import same_vector_kind
    from indexer.embedding import backend_label
    from indexer.store import corpus_hash, read_manifest

    try:
        manifest = read_manifest(settings.index_dir)
    except VerbatimError:
        return False
    return (
        manifest.get("corpus", {}).get("hash") == corpus_hash(docs)
        and manifest.get("chunking") == asdict(settings.chunking)
        and manifest.get("model", {}).get("name") == settings.model_name
        and same_vector_kind(manifest.get("model", {}), backend_label(settings.backend, settings.model_path))
        and manifest.get("sources") == sorted(d.source for d in docs)
    )


def _embedder(settings):  # type: ignore[no-untyped-def]
    from indexer.embedding import load_embedder

    return load_embedder(settings.model_path, settings.model_name, settings.backend)


def _lazy_embedder(settings):  # type: ignore[no-untyped-def]
    from indexer.embedding import backend_label
    from indexer.store import read_manifest
    from indexer.update import LazyEmbedder

    try:
        model = read_manifest(settings.index_dir)["model"]
    except VerbatimError:
        return _embedder(settings)
    if model["name"] != settings.model_name:
        return _embedder(settings)  # another model: everything is re-embedded with it
    return LazyEmbedder(settings.model_name, model["dimension"], lambda: _embedder(settings),
                        backend=backend_label(settings.backend, settings.model_path))


def _build(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.build import build_index
    from indexer.documents import load_documents

    docs, skipped = load_documents(args.paths, settings.max_file_bytes)
    _warn_skipped(skipped, docs)
    if not docs:
        print(f"error: no readable articles in {' '.join(args.paths)} "
              "(expected .txt, .md, .html, .pdf or .docx files).", file=sys.stderr)
        return 2
    if args.if_changed and _is_current(settings, docs):
        print(f"Index at {settings.index_dir} is up to date ({len(docs)} articles).")
        return 0
    started = time.perf_counter()
    result = build_index(docs, settings, _embedder(settings), sources=sorted(d.source for d in docs),
                         show_progress=True)
    print(f"Indexed {result.documents} articles, {result.chunks} passages, "
          f"{result.sentences} sentences into {settings.index_dir} "
          f"in {time.perf_counter() - started:.1f} s.")
    return 0


def _add(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.documents import load_documents
    from indexer.store import CURRENT
    from indexer.update import add_documents

    docs, skipped = load_documents(args.paths, settings.max_file_bytes)
    if not docs and not (settings.index_dir / CURRENT).is_file():
        _warn_skipped(skipped, docs)
        print(f"error: no readable articles in {' '.join(map(str, args.paths))}, and no index at "
              f"{settings.index_dir} to keep: nothing to do. Give .txt, .md, .html, .pdf or "
              ".docx files or folders holding them.", file=sys.stderr)
        return 2
    report = add_documents(docs, settings, _lazy_embedder(settings), skipped=skipped,
                           show_progress=True)
    _warn_skipped(report.skipped, docs)
    print(f"Added {len(report.added)}, updated {len(report.updated)}, unchanged "
          f"{len(report.unchanged)}, skipped {len(report.skipped)}.")
    if report.result is not None:
        r = report.result
        print(f"Index now holds {r.documents} articles, {r.chunks} passages; embedded "
              f"{r.embedded_chunks} passages and {r.embedded_sentences} sentences.")
    return 0 if docs or not report.skipped else 2


def _remove(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.update import remove_documents

    report = remove_documents(args.doc_ids, settings, _lazy_embedder(settings))
    result = report.result
    print(f"Removed {', '.join(report.removed)}. Index now holds "
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
            print(json.dumps(item, ensure_ascii=False))
        else:
            print(f"{doc.doc_id}  {doc.date or '----------'}  {int(counts[row]):4d} passages  "
                  f"{doc.title[:70]}  ({doc.source})")
    if not args.json:
        print(f"{len(index.documents)} articles, {len(index.chunks)} passages.")
    return 0


def _verify(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from indexer.store import verify_index

    report = verify_index(settings.index_dir)
    for warning in report:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Index at {settings.index_dir} is intact.")
    return 0


COMMANDS = {"build": _build, "add": _add, "remove": _remove, "list": _list, "verify": _verify}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from indexer.settings import Settings

        settings = Settings.from_env().with_index(args.index)
        return COMMANDS[args.command](args, settings)
    except VerbatimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted; the previous index is unchanged.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
