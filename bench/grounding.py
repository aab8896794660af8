"""How well the written-answer check (retrieval/grounding.py) tells supported sentences
from unsupported ones, on hand-labelled (sentence, cited passage) pairs.

    python -m bench.grounding                 # the development pairs (tune on these only)
    python -m bench.grounding --set holdout   # the held-out pairs (never tune on them)
    python -m bench.grounding --set all --json bench/results/grounding.json --verbose

Each pair (``bench/data/grounding/*.jsonl``) is a sentence a model might write, the exact
passage(s) of the seed articles it cites (quotes located in ``seeds/``, split into
sentences as the indexer splits them, embedded with the packaged model), and whether the
passage truly supports it, with its kind ("paraphrase", "wrong_number", ...). Reported:
precision (of the sentences the check shows as supported, the share truly supported),
recall (of the truly supported, the share shown as supported), and per kind the share
judged right. Targets (issue 15): precision >= 0.97, recall >= 0.85.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "grounding"
SETS = {"dev": [DATA / "dev.jsonl", DATA / "dev2.jsonl"], "holdout": [DATA / "holdout.jsonl"]}
SETS["all"] = SETS["dev"] + SETS["holdout"]


def load_pairs(paths: list[Path]) -> list[dict[str, Any]]:
    pairs = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                pair = json.loads(line)
                pair["set"] = path.stem
                pairs.append(pair)
    return pairs


def sources_of(pair: dict[str, Any], embed: Any) -> dict[int, Any]:
    """The pair's cited quotes as labelled sources (label 1, 2, ... in order)."""
    from indexer.chunking import split_sentences
    from retrieval.grounding import EvidenceSentence, Source

    out = {}
    for label, cited in enumerate(pair["cited"], 1):
        text = (ROOT / "seeds" / cited["file"]).read_bytes().decode("utf-8")
        quote = cited["quote"]
        at = text.find(quote)
        if at < 0:
            raise SystemExit(f"{pair['id']}: the quote is not in seeds/{cited['file']}")
        spans = split_sentences(quote)
        texts = [quote[s.start:s.end] for s in spans]
        vectors = embed(texts)
        sentences = tuple(EvidenceSentence(at + s.start, at + s.end, t, v)
                          for s, t, v in zip(spans, texts, vectors))
        doc_id = Path(cited["file"]).stem
        out[label] = Source(label, doc_id, text.splitlines()[0], at, at + len(quote), quote, sentences)
    return out


def evaluate(pairs: list[dict[str, Any]], embed: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from retrieval.grounding import Claim, check

    rows = []
    for pair in pairs:
        sources = sources_of(pair, embed)
        [verdict] = check([Claim(pair["sentence"], tuple(sources))], sources, embed)
        rows.append({"id": pair["id"], "set": pair["set"], "kind": pair["kind"], "truth": pair["supported"],
                     "shown": verdict.supported, "reason": verdict.reason, "sentence": pair["sentence"],
                     "similarity": round(verdict.similarity, 4), "coverage": round(verdict.coverage, 4)})
    shown = [r for r in rows if r["shown"]]
    true = [r for r in rows if r["truth"]]
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r["shown"] == r["truth"])
    summary = {
        "pairs": len(rows), "supported": len(true), "unsupported": len(rows) - len(true),
        "precision": sum(r["truth"] for r in shown) / len(shown) if shown else 1.0,
        "recall": sum(r["shown"] for r in true) / len(true) if true else 1.0,
        "false_supported": sum(not r["truth"] for r in shown),
        "by_kind": {k: {"n": len(v), "right": sum(v) / len(v)} for k, v in sorted(by_kind.items())},
    }
    return summary, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grounding", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=sorted(SETS), default="dev",
                        help="dev (tune on it), holdout (never tune on it) or all (default: dev)")
    parser.add_argument("--json", metavar="PATH", help="also write the summary and every pair's verdict here")
    parser.add_argument("--verbose", action="store_true", help="print each pair judged wrong")
    args = parser.parse_args(argv)

    from indexer.embedding import load_embedder
    from indexer.settings import Settings

    settings = Settings.from_env()
    embedder = load_embedder(settings.model_path, settings.model_name, settings.backend)
    paths = [p for p in SETS[args.set] if p.exists()]
    if not paths:
        print(f"error: no labelled pairs for --set {args.set} in {DATA}", file=sys.stderr)
        return 2
    summaries = {}
    every = []
    for path in paths:
        summary, rows = evaluate(load_pairs([path]), embedder.encode)
        summaries[path.stem] = summary
        every += rows
        print(f"{path.stem}: {summary['pairs']} pairs ({summary['supported']} supported): precision "
              f"{summary['precision']:.3f} ({summary['false_supported']} unsupported shown as supported), "
              f"recall {summary['recall']:.3f}")
        for kind, k in summary["by_kind"].items():
            print(f"  {kind:<14} {k['n']:>3} pairs, judged right {k['right']:.2f}")
        if args.verbose:
            for r in rows:
                if r["shown"] != r["truth"]:
                    what = "SHOWN SUPPORTED" if r["shown"] else "rejected"
                    print(f"    {r['id']} [{r['kind']}] {what}: {r['sentence']}\n        {r['reason']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summaries": summaries, "pairs": every}, indent=1,
                                              ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
