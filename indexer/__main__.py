"""Command line: ``python -m indexer build [PATH ...] [--index DIR] [--if-changed]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from indexer.errors import VerbatimError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer",
        description="Build the Verbatim index from article files (.txt, .md, UTF-8).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser(
        "build", help="index articles from files and folders (full rebuild)",
        description="Read articles (.txt, .md, UTF-8; folders are searched recursively), "
        "chunk, embed and index them. The new index replaces the old one atomically; "
        "files that cannot be read are skipped with a warning.",
    )
    build.add_argument("paths", nargs="*", default=["seeds"], metavar="PATH",
                       help="article files or folders (default: seeds)")
    build.add_argument("--index", metavar="DIR", default=None,
                       help="index folder (default: VERBATIM_INDEX_DIR or ./index)")
    build.add_argument("--if-changed", action="store_true",
                       help="do nothing when the index already holds exactly these articles, "
                       "built with the current model and chunking settings")
    return parser


def _is_current(settings, docs) -> bool:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    from indexer.store import corpus_hash, read_manifest

    try:
        manifest = read_manifest(settings.index_dir)
    except VerbatimError:
        return False
    return (
        manifest.get("corpus", {}).get("hash") == corpus_hash(docs)
        and manifest.get("chunking") == asdict(settings.chunking)
        and manifest.get("model", {}).get("name") == settings.model_name
        and manifest.get("sources") == [str(d.source) for d in docs]
    )


def _build(args: argparse.Namespace) -> int:
    from indexer.build import build_index
    from indexer.documents import load_documents
    from indexer.embedding import load_embedder
    from indexer.settings import Settings

    settings = Settings.from_env().with_index(args.index)
    docs, skipped = load_documents(args.paths, settings.max_file_bytes)
    for s in skipped:
        print(f"warning: skipped {s.path}: {s.reason}", file=sys.stderr)
    if not docs:
        print(f"error: no readable articles in {' '.join(args.paths)} "
              "(expected .txt or .md files, UTF-8).", file=sys.stderr)
        return 2
    if args.if_changed and _is_current(settings, docs):
        print(f"Index at {settings.index_dir} is up to date ({len(docs)} articles).")
        return 0
    started = time.perf_counter()
    embedder = load_embedder(settings.model_path, settings.model_name)
    result = build_index(docs, settings, embedder, sources=[d.source for d in docs],
                         show_progress=True)
    print(f"Indexed {result.documents} articles, {result.chunks} passages, "
          f"{result.sentences} sentences into {settings.index_dir} "
          f"in {time.perf_counter() - started:.1f} s.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            return _build(args)
    except VerbatimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
