"""Synthetic corpora of a given number of passages, made from real text.

The sentences of the seed articles and, when ``../shared/bench/scifact/corpus.jsonl`` is
there, of the 5,183 SciFact abstracts (read at benchmark time, never copied into the repo:
their licence is non-commercial) are shuffled with a fixed seed into articles of 8 to 20
sentences; articles are added until chunking them (with the shipped chunking settings)
gives the requested number of passages. Every passage is real prose with a realistic
vocabulary and length, but the articles are not coherent, and at 100,000 passages each
sentence occurs in several articles (in different company): fine for measuring speed and
memory, meaningless for retrieval quality.

    python -m bench.synthetic 10000        # prints the corpus statistics
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from indexer.chunking import chunk_text, split_sentences
from indexer.settings import ChunkingParams
from indexer.types import Document

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SCIFACT_CORPUS = ROOT.parent / "shared" / "bench" / "scifact" / "corpus.jsonl"


def sentence_pool(seeds: Path = SEEDS, scifact: Path = SCIFACT_CORPUS) -> tuple[list[str], list[str]]:
    """The sentences to draw from, and the names of the sources they came from."""
    texts, sources = [], []
    for path in sorted(seeds.glob("*.txt")):
        texts.append(path.read_text(encoding="utf-8"))
    if texts:
        sources.append(f"{len(texts)} seed articles")
    if scifact.is_file():
        n = 0
        with scifact.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    texts.append(json.loads(line)["text"])
                    n += 1
        sources.append(f"{n} SciFact abstracts ({scifact})")
    pool = []
    for text in texts:
        for span in split_sentences(text):
            sentence = text[span.start:span.end].strip()
            if len(sentence.split()) >= 4:
                pool.append(" ".join(sentence.split()))
    if not pool:
        raise SystemExit(f"no text to make a synthetic corpus from (looked in {seeds} and {scifact})")
    return pool, sources


def synthetic_corpus(passages: int, chunking: ChunkingParams | None = None, *, seed: int = 7,
                     pool: Sequence[str]) -> list[Document]:
    """Articles that chunk into at least ``passages`` passages (see the module docstring),
    from the sentences in ``pool`` (:func:`sentence_pool`)."""
    chunking = chunking or ChunkingParams()
    rng = random.Random(seed)
    docs: list[Document] = []
    total = 0
    while total < passages:
        sentences = [pool[rng.randrange(len(pool))] for _ in range(rng.randint(8, 20))]
        title = " ".join(sentences[0].split()[:8]).rstrip(".,;:")
        text = " ".join(sentences)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        doc_id = f"syn{len(docs):07d}_{digest[:8]}"
        total += len(chunk_text(text, chunking, doc_id))
        docs.append(Document(doc_id=doc_id, title=title, source=f"synthetic:{doc_id}", text=text,
                             sha256=digest))
    return docs


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 10_000
    pool, sources = sentence_pool()
    docs = synthetic_corpus(n, pool=pool)
    words = sum(len(d.text.split()) for d in docs)
    print(f"{len(docs)} articles, {words:,} words, >= {n:,} passages, from {len(pool):,} sentences of "
          + "; ".join(sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())
