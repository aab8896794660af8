"""Command line for questions.

    python -m retrieval ask QUESTION [QUESTION ...] [--top-k K] [--index DIR] [--json] [--generate]
    python -m retrieval compare QUESTION [--index DIR] [--json] [--generate]
"""

from __future__ import annotations

import _signal  # the C module, always loaded: installing the handler imports nothing
import os
import sys


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C at any moment, imports included: a message and exit code 130, at once (a
    KeyboardInterrupt can be swallowed, or turned into an ImportError inside a C
    extension; this cannot). Nothing here writes, so there is nothing to undo."""
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001 - interrupted in the middle of a write
        pass
    os.write(2, b"interrupted.\n")
    os._exit(130)


if __name__ == "__main__":
    _signal.signal(_signal.SIGINT, _interrupted)

import argparse  # noqa: E402
import textwrap  # noqa: E402

from indexer.errors import QuestionError, VerbatimError  # noqa: E402
from indexer.terminal import json_line, printable  # noqa: E402


STORE_HELP = ("where the index lives instead of the folder: milvus:PATH.db (milvus-lite) or http://HOST:PORT "
              "(a Milvus server or cluster; token and database from VERBATIM_MILVUS_TOKEN and "
              "VERBATIM_MILVUS_DB) (default: VERBATIM_STORE)")


GENERATE_HELP = ("also a short written answer from your own model (an OpenAI-compatible server at "
                 "VERBATIM_LLM_URL, model VERBATIM_LLM_MODEL), every sentence checked against the passage it "
                 "cites; not asked when the articles don't answer (JSON: \"generated\")")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m retrieval",
        description="Ask the indexed articles questions; get cited passages.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser(
        "ask", help="answer questions with cited passages",
        description="Answer each QUESTION with the most relevant passages (hybrid dense + "
        "BM25 search), each cited by source file and character span, with the sentence "
        "that best answers highlighted. With --json, print one JSON object per question, "
        "one per line (format in the README).",
    )
    ask.add_argument("questions", nargs="+", metavar="QUESTION")
    ask.add_argument("--top-k", type=int, default=None, metavar="K",
                     help="passages per question (default: VERBATIM_TOP_K or 5)")
    ask.add_argument("--index", metavar="DIR", default=None,
                     help="index folder (default: VERBATIM_INDEX_DIR or ./index)")
    ask.add_argument("--store", metavar="URI", default=None, help=STORE_HELP)
    ask.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    ask.add_argument("--generate", action="store_true", help=GENERATE_HELP)
    cmp = sub.add_parser(
        "compare", help="what each article says about one question",
        description="List every article in the index once: its best passage for QUESTION "
        "with the answering sentence, a relevance score, and whether it mentions the topic "
        "at all (the same rule as abstention). Articles that make nearly the same point share "
        "a group number. With --json, print one JSON object (format in the README).",
    )
    cmp.add_argument("question", metavar="QUESTION")
    cmp.add_argument("--index", metavar="DIR", default=None,
                     help="index folder (default: VERBATIM_INDEX_DIR or ./index)")
    cmp.add_argument("--store", metavar="URI", default=None, help=STORE_HELP)
    cmp.add_argument("--json", action="store_true", help="print JSON instead of text")
    cmp.add_argument("--generate", action="store_true",
                     help="also a one-sentence summary per mentioned article, written by your own model "
                     "(VERBATIM_LLM_URL) and checked against the passage it cites (JSON: \"summary\")")
    return parser


def _quote(text: str) -> str:
    """An answer sentence, wrapped and indented, safe for a terminal."""
    return textwrap.fill(f"» {printable(text)}", width=100, initial_indent="   ", subsequent_indent="     ")


def _print_human(result, out) -> None:  # type: ignore[no-untyped-def]
    print(f"Q: {printable(result.question)}", file=out)
    if not result.answerable:
        why = result.supports[0].reason if result.supports else "nothing comes close"
        print(f"The articles don't seem to answer this ({printable(why)}). The nearest passages "
              "(weak matches):", file=out)
    for hit in result.hits:
        weak = "" if result.answers(hit.rank) else "  (weak match)"
        print(f"\n{hit.rank}. {printable(hit.title)}{weak}", file=out)
        print(f"   {printable(hit.source)} [{hit.start}:{hit.end}]  score {hit.score:.4f}", file=out)
        print(_quote(hit.answer.text), file=out)
    print(file=out)


def _compare(args: argparse.Namespace) -> int:
    from indexer.settings import Settings
    from retrieval.compare import compare
    from retrieval.searcher import Searcher, check_question

    settings = Settings.from_env().with_index(args.index, args.store)
    _check_generation(args, settings)
    check_question(args.question, settings.max_question_chars)
    searcher = Searcher.load(settings)
    comparison = compare(searcher, args.question)
    summaries = {}
    if args.generate:
        from retrieval.generate import write_summary

        for view in comparison.articles:
            if view.mentioned and view.hit is not None:
                summaries[view.doc_id] = write_summary(searcher, comparison.question, view.hit)
                if summaries[view.doc_id].status == "failed":
                    break  # the server is down or refuses: the same for every article (the others get null)
    if args.json:
        out = comparison.to_json()
        if args.generate:
            for item in out["articles"]:
                item["summary"] = summaries[item["doc_id"]].to_json() if item["doc_id"] in summaries else None
        print(json_line(out))
        return 0
    print(f"Q: {printable(comparison.question)}\n")
    titles = {v.doc_id: v.title for v in comparison.articles}
    for view in comparison.articles:
        print(f"{'●' if view.mentioned else '○'} {printable(view.title)}  ({printable(view.source)})")
        why = view.support.reason if view.support else "no passage of it comes close to the question"
        if view.mentioned and view.hit is not None:
            print(f"   relevance {view.score:.2f}  [{view.hit.start}:{view.hit.end}]")
            print(_quote(view.hit.answer.text))
            if view.doc_id in summaries:
                _print_written(summaries[view.doc_id], sys.stdout, indent="   ", heading="Summary")
            if view.same_as:
                print(f"   says the same as: {printable('; '.join(titles[d] for d in view.same_as))}")
        else:
            print(f"   not mentioned: {printable(why)}")
    for note in comparison.conflicts:
        print(f"\nNote: {printable(note)}")
    return 0


def _check_generation(args: argparse.Namespace, settings) -> None:  # type: ignore[no-untyped-def]
    if args.generate and not settings.generation:
        raise QuestionError("--generate needs your own model server: set VERBATIM_LLM_URL to its OpenAI-compatible "
                            "base URL (for example http://127.0.0.1:11434/v1 for Ollama) and VERBATIM_LLM_MODEL "
                            "to the model's name.")


def _print_written(answer, out, indent: str = "", heading: str = "Written answer") -> None:  # type: ignore[no-untyped-def]
    print(f"{indent}{heading} by {printable(answer.model)}, each sentence checked against the passage it cites:",
          file=out)
    for s in answer.sentences:
        mark = "✓" if s.supported else "✗ not supported:"
        labels = "".join(f"[{n}]" for n in s.labels)
        line = f"{mark} {printable(s.text)} {labels}".rstrip()
        if not s.supported:
            line += f" — {printable(s.reason)}"
        print(textwrap.fill(line, width=100, initial_indent=indent + "  ", subsequent_indent=indent + "    "),
              file=out)
    if answer.note:
        print(textwrap.fill(f"Note: {printable(answer.note)}", width=100, initial_indent=indent + "  ",
                            subsequent_indent=indent + "    "), file=out)


def _ask(args: argparse.Namespace) -> int:
    from indexer.settings import Settings
    from retrieval.searcher import Searcher, check_question

    settings = Settings.from_env().with_index(args.index, args.store)
    _check_generation(args, settings)
    if args.top_k is not None and args.top_k < 1:
        print(f"error: --top-k must be at least 1; got {args.top_k}.", file=sys.stderr)
        return 2
    # Refuse bad questions before the (slow) model load.
    for question in args.questions:
        check_question(question, settings.max_question_chars)
    searcher = Searcher.load(settings)
    for question in args.questions:
        result = searcher.ask(question, args.top_k)
        written = None
        if args.generate:
            from retrieval.generate import write_answer  # only with --generate: nothing is contacted otherwise

            written = write_answer(searcher, result)
        if args.json:
            out = result.to_json()
            if written is not None:
                out["generated"] = written.to_json()
            print(json_line(out), flush=True)
        else:
            _print_human(result, sys.stdout)
            if written is not None:
                _print_written(written, sys.stdout)
                print(file=sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if getattr(args, "index", None) is not None and getattr(args, "store", None):
            parser.error("give --index DIR (a local folder) or --store URI, not both")
        return _compare(args) if args.command == "compare" else _ask(args)
    except QuestionError as exc:
        print(f"error: {printable(exc, multiline=True)}", file=sys.stderr)
        return 2
    except VerbatimError as exc:
        print(f"error: {printable(exc, multiline=True)}", file=sys.stderr)
        return 3
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
