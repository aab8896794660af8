"""Fit the learned verdicts from the labelled seed questions, and measure them by
leave-one-article-out cross-validation against the hand rule.

    python -m bench.train                 # cross-validate, fit on everything, write the model file
    python -m bench.train --check         # fit and compare with the shipped file (exit 1 if it differs)
                                          # (no cross-validation report; the cut-off is still chosen out of fold)
    python -m bench.train --no-cv         # only fit and write

The labelled questions: bench/data/seeds_questions.jsonl, _holdout.jsonl, _train.jsonl and
_train_extra.jsonl (421 questions over the five seed articles, 134 of them unanswerable). The blind set (_fresh.jsonl) is never read
here: it stays a check (``python -m bench.eval --suite seeds --fresh``).

Three logistic models (scikit-learn, standardised features; parameters written to
``retrieval/data/verdict_models.json`` and read at query time with numpy alone):

1. the sentence model: does this sentence of a candidate passage answer the question?
   One row per body sentence of the first 15 ranked passages (retrieval.features);
   positive when the sentence holds a gold answer's evidence.
2. the answered model: is the question answered at all? One row per question, built from
   the hits the searcher shows with the sentence model's choices; its inputs use the
   sentence model's out-of-fold probabilities (fitted without the question's article), so
   that it learns from probabilities like those it will see.
3. the mentioned model: does this article give the answer? One row per (question,
   article) for compare questions (gold: the articles that give the answer) and
   multi-article questions (the articles of their evidence). Unanswerable questions are
   left out: hundreds of easy negatives taught it to say "not mentioned" to real questions.

Cross-validation: for each seed article, every model is fitted on the questions that do not
involve it and measured on the questions about it (unanswerable questions are spread over
the folds by id), through the real :class:`retrieval.searcher.Searcher` with the fold's
models, against the hand rule on the same questions. The vectors are float32 (``onnx``,
equal to PyTorch), so the fit is the same on every machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from bench.eval import (  # noqa: E402
    DEFAULT_QUESTIONS, HOLDOUT_QUESTIONS, SEEDS_DIR, TRAIN_EXTRA_QUESTIONS, TRAIN_QUESTIONS, TYPES, Question, brier,
    cached_index, compare_accuracy, reliability,
    evaluate_seeds, evidence_offsets, load_questions, table,
)

C = 0.1  # L2 strength of every model (sklearn's C; 0.1 and 1.0 compared by cross-validation)
MAX_WRONGLY_FLAGGED = 0.05  # the answered cut-off is the highest that flags at most 1 answerable in 20
CUTS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
FOLDS = 5
POOL = (DEFAULT_QUESTIONS, HOLDOUT_QUESTIONS, TRAIN_QUESTIONS, TRAIN_EXTRA_QUESTIONS)
KINDS = (*TYPES, "unanswerable")


@dataclass
class Sample:
    """One question's candidates, features and labels."""

    question: Question
    group: int  # its fold
    docs: frozenset[int]  # document rows it involves
    ask_rows: np.ndarray  # sentence features of the ask candidates
    ask_gold: np.ndarray  # bool per row
    ask_passage_of: np.ndarray  # the candidate passage (0 = best ranked) of each row
    cmp: Any  # retrieval.features.SentenceCandidates over each article's best passages
    cmp_doc: np.ndarray  # the document row of each of cmp's passages
    mention_labels: dict[int, bool] | None  # per document row, when the labels say


def _gold_rows(q: Question, searcher: Any, sentence_ids: Sequence[str]) -> np.ndarray:
    """Which of these candidate sentences hold a gold evidence occurrence (bool per id)."""
    from indexer.stores.base import key_doc_id, parse_id

    spans: dict[str, list[tuple[int, int]]] = {}
    for doc_id, evidence in q.answers:
        doc = searcher.document(doc_id)
        if doc is not None:
            spans.setdefault(doc_id, []).extend((o, o + len(evidence)) for o in evidence_offsets(doc.text, evidence))
    out = np.zeros(len(sentence_ids), dtype=bool)
    for j, sid in enumerate(sentence_ids):
        key, _, start, end = parse_id(sid)
        out[j] = any(start <= a and b <= end for a, b in spans.get(key_doc_id(key), ()))
    return out


def collect(searcher: Any, questions: Sequence[Question]) -> list[Sample]:
    """Features and labels of every question (the hand-rule searcher ranks; nothing learned)."""
    from retrieval.features import sentence_candidates
    from retrieval.searcher import LEARNED_DEPTH

    order = {d.doc_id: i for i, d in enumerate(searcher.store.document_infos())}  # document rows, by id
    out = []
    for q in questions:
        query = searcher.prepare(q.question)
        qvec = searcher.encode_question(query.text)
        ranked, passages, bm25 = searcher.rank_scored(query, qvec, max(searcher.settings.candidates, 400))
        first = [(passages[p], n) for n, (p, _) in enumerate(ranked[:LEARNED_DEPTH], 1)]
        by_doc: dict[str, list[tuple[Any, int]]] = {}
        for n, (p, _) in enumerate(ranked, 1):
            by_doc.setdefault(passages[p].doc_id, []).append((passages[p], n))
        selected = sorted((c for cs in by_doc.values() for c in cs[:3]), key=lambda c: c[1])
        sentence_bm25 = searcher.sentence_bm25(query, [p for p, _ in (*first, *selected)])
        ask = sentence_candidates(searcher, query, qvec, first, sentence_bm25, bm25)
        cmp = sentence_candidates(searcher, query, qvec, selected, sentence_bm25, bm25)
        docs = frozenset(order[d] for d in q.documents if d in order)
        labels = None
        if q.type in ("compare", "multi"):
            named = {order[d] for d in (q.mentions or q.documents) if d in order}
            labels = {d: d in named for d in range(len(order))}
        if docs:
            group = min(docs)
        else:
            group = int(hashlib.sha256(q.id.encode()).hexdigest(), 16) % FOLDS
        out.append(Sample(q, group % FOLDS, docs, ask.features, _gold_rows(q, searcher, ask.sentence_ids),
                          ask.passage_of, cmp, np.array([order[d] for d in cmp.doc_ids], dtype=np.int64), labels))
    return out


# --------------------------------------------------------------------------- fitting

def fit_linear(x: np.ndarray, y: np.ndarray, features: tuple[str, ...]) -> Any:
    """A standardised L2 logistic regression, as a :class:`retrieval.learned.LinearModel`."""
    from sklearn.linear_model import LogisticRegression

    from retrieval.learned import LinearModel

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    if len(set(y.tolist())) < 2:  # one class only: a constant model
        p = float(np.clip(y.mean() if len(y) else 0.5, 1e-3, 1 - 1e-3))
        return LinearModel(features, mean, scale, np.zeros(len(features)), float(np.log(p / (1 - p))))
    model = LogisticRegression(C=C, max_iter=5000).fit(z, y.astype(int))
    return LinearModel(features, np.round(mean, 6), np.round(scale, 6), np.round(model.coef_[0], 6),
                       round(float(model.intercept_[0]), 6))


def _sentence_model(samples: Sequence[Sample]) -> Any:
    from retrieval.features import SENTENCE_FEATURES

    x = np.vstack([s.ask_rows for s in samples])
    y = np.concatenate([s.ask_gold for s in samples])
    return fit_linear(x, y, SENTENCE_FEATURES)


def _question_rows(searcher: Any, sample: Sample, sentence_model: Any) -> np.ndarray:
    """The answered model's row for a question, as the searcher builds it (``Searcher.ask``)."""
    from retrieval.features import best_by_passage, question_features, sentence_candidates
    from retrieval.searcher import LEARNED_DEPTH

    q = sample.question
    query = searcher.prepare(q.question)
    qvec = searcher.encode_question(query.text)
    top_k = searcher.settings.top_k
    ranked, passages, bm25 = searcher.rank_scored(query, qvec, max(searcher.settings.candidates, top_k))
    depth = min(len(ranked), max(LEARNED_DEPTH, 3 * top_k))
    first = [(passages[p], n) for n, (p, _) in enumerate(ranked[:depth], 1)]
    sentence_bm25 = searcher.sentence_bm25(query, [p for p, _ in first])
    cands = sentence_candidates(searcher, query, qvec, first, sentence_bm25, bm25)
    probs = sentence_model.probability(cands.features)
    _, shown = searcher.distinct_hits(query, qvec, ranked, passages, top_k, sentence_bm25,
                                      best_by_passage(cands, probs))
    where = {p: i for i, p in enumerate(cands.passage_ids)}
    return question_features(cands, probs, [score for _, score in ranked[:depth]],
                             [where[p] for p in shown if p in where], len(set(query.terms)))


def _article_rows(sample: Sample, sentence_model: Any) -> tuple[np.ndarray, np.ndarray]:
    """The mentioned model's rows for a question's articles, and their labels."""
    from retrieval.features import ARTICLE_FEATURES, article_features

    if sample.mention_labels is None or not len(sample.cmp.sentence_ids):
        return np.zeros((0, len(ARTICLE_FEATURES))), np.zeros(0, bool)
    docs, rows = article_features(sample.cmp, sentence_model.probability(sample.cmp.features))
    row_of = dict(zip(sample.cmp.doc_ids, sample.cmp_doc.tolist()))
    return rows, np.array([sample.mention_labels.get(row_of[d], False) for d in docs], dtype=bool)


def fit_models(searcher: Any, samples: Sequence[Sample], info: dict[str, Any] | None = None,
               answered_cut: float = 0.5) -> Any:
    """All three models from ``samples``: the sentence model on all of them; the answered
    and mentioned models on rows built with out-of-fold sentence probabilities."""
    from retrieval.features import ARTICLE_FEATURES, QUESTION_FEATURES
    from retrieval.learned import VerdictModels

    sentence = _sentence_model(samples)
    q_rows, q_y, a_rows, a_y = [], [], [], []
    groups = sorted({s.group for s in samples})
    for g in groups:
        inner = _sentence_model([s for s in samples if s.group != g and not _involves(s, g)])
        for s in (s for s in samples if s.group == g):
            q_rows.append(_question_rows(searcher, s, inner))
            q_y.append(s.question.answerable)
            rows, labels = _article_rows(s, inner)
            a_rows.append(rows)
            a_y.append(labels)
    answered = fit_linear(np.vstack(q_rows), np.array(q_y, dtype=bool), QUESTION_FEATURES)
    mentioned = fit_linear(np.vstack(a_rows).reshape(-1, len(ARTICLE_FEATURES)), np.concatenate(a_y),
                           ARTICLE_FEATURES)
    return VerdictModels(sentence, answered, mentioned, answered_cut=answered_cut, info=info or {})


def _involves(sample: Sample, fold: int) -> bool:
    """Whether a question names the article of ``fold`` (fold k = the k-th document row)."""
    return fold in sample.docs


# --------------------------------------------------------------------------- measuring

def by_kind(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per question kind: hit@1, hit@5, answer sentence right, flagged as unanswerable."""
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        group = [r for r in rows if r["type"] == kind]
        if not group:
            continue
        answerable = [r for r in group if r["answerable"]]
        out[kind] = {
            "n": len(group),
            "hit@1": _mean([r["rank"] == 1 for r in answerable]),
            "hit@5": _mean([r["rank"] is not None and r["rank"] <= 5 for r in answerable]),
            "answer@5": _mean([bool(r["answer_ok"]) for r in answerable]),
            "flagged": _mean([r["flagged"] for r in group]),
        }
    return out


def _mean(values: Sequence[Any]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def cross_validate(searcher_for: Any, rule_searcher: Any, samples: Sequence[Sample],
                   log: Any = print) -> dict[str, Any]:
    """Leave one article out: fit on the questions without it, measure on those about it,
    with the learned models (``searcher_for(models)``) and with the hand rule."""
    from bench.eval import Outcome, seeds_metrics

    # The cut-off is chosen from out-of-fold probabilities first, then every fold's searcher
    # decides with it.
    probs, outcomes = _out_of_fold_confidence(rule_searcher, samples)
    cut = choose_cut(trade_off(probs, outcomes))
    rows: dict[str, list[dict[str, Any]]] = {"rule": [], "learned": []}
    cmp = {"rule": [0, 0], "learned": [0, 0]}
    for g in sorted({s.group for s in samples}):
        test = [s for s in samples if s.group == g]
        train = [s for s in samples if s.group != g and not _involves(s, g)]
        models = fit_models(rule_searcher, train, answered_cut=cut)
        learned = searcher_for(models)
        for name, searcher in (("rule", rule_searcher), ("learned", learned)):
            m = evaluate_seeds(searcher, [s.question for s in test])
            rows[name] += m["per_question"]
            c = compare_accuracy(searcher, [s.question for s in test])
            cmp[name][0] += round((c["accuracy"] or 0) * c["pairs"])
            cmp[name][1] += c["pairs"]
        log(f"[train] fold {g}: {len(train)} questions fitted, {len(test)} measured")
    report: dict[str, Any] = {}
    for name in rows:
        outcomes_rows = [Outcome(**{k: v for k, v in r.items() if k in Outcome.__dataclass_fields__}) for r in rows[name]]
        report[name] = {**seeds_metrics(outcomes_rows), "by_kind": by_kind(rows[name]),
                        "compare_accuracy": cmp[name][0] / cmp[name][1] if cmp[name][1] else None,
                        "compare_pairs": cmp[name][1]}
        report[name].pop("missing_evidence", None)
    report["learned"]["brier"] = brier(probs, outcomes)
    report["learned"]["reliability"] = reliability(probs, outcomes)
    report["learned"]["cuts"] = trade_off(probs, outcomes)
    report["learned"]["answered_cut"] = cut
    return report


def _out_of_fold_confidence(searcher: Any, samples: Sequence[Sample]) -> tuple[list[float], list[bool]]:
    """Each question's answered probability from models fitted without its article."""
    probs, outcomes = [], []
    for g in sorted({s.group for s in samples}):
        models = fit_models(searcher, [s for s in samples if s.group != g and not _involves(s, g)])
        inner = models.sentence
        for s in (s for s in samples if s.group == g):
            probs.append(float(models.answered.probability(_question_rows(searcher, s, inner))[0]))
            outcomes.append(s.question.answerable)
    return probs, outcomes


def trade_off(probabilities: Sequence[float], outcomes: Sequence[bool]) -> list[dict[str, Any]]:
    """For cut-offs of the answered probability: the share of unanswerable questions
    flagged, and of answerable ones wrongly flagged."""
    p = np.asarray(probabilities)
    y = np.asarray(outcomes, dtype=bool)
    return [{"cut": cut, "unanswerable_flagged": float((p[~y] < cut).mean()) if (~y).any() else None,
             "answerable_flagged": float((p[y] < cut).mean()) if y.any() else None}
            for cut in CUTS]


def choose_cut(cuts: Sequence[dict[str, Any]]) -> float:
    """The highest cut-off whose cross-validated share of answerable questions wrongly
    flagged stays at most :data:`MAX_WRONGLY_FLAGGED`."""
    fine = [c["cut"] for c in cuts if (c["answerable_flagged"] or 0.0) <= MAX_WRONGLY_FLAGGED]
    return max(fine) if fine else min(CUTS)


def report_rows(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for name in ("rule", "learned"):
        m = report[name]
        ab = m["abstention"]
        out.append((name, "all", m["answerable"], _f(m["hit@1"]), _f(m["hit@5"]), _f(m["mrr@10"]),
                    _f(m["answer_sentence_acc"]), f"{ab['true_positives']}/{ab['unanswerable']}",
                    f"{ab['answerable_wrongly_flagged']}/{m['answerable']}", _f(m["compare_accuracy"])))
        for kind, k in m["by_kind"].items():
            out.append((name, kind, k["n"], _f(k["hit@1"]), _f(k["hit@5"]), "", _f(k["answer@5"]),
                        _f(k["flagged"]) if kind == "unanswerable" else "",
                        _f(k["flagged"]) if kind != "unanswerable" else "", ""))
    return out


def _f(x: Any) -> str:
    return "" if x is None else f"{x:.3f}"


def _passage_rows(sample: Sample, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Experiment: one row per candidate passage (its ranking features and its sentences'
    best), and whether it holds a gold answer."""
    from retrieval.features import SENTENCE_FEATURES

    f = sample.ask_rows
    col = SENTENCE_FEATURES.index
    rows, gold = [], []
    for i in np.unique(sample.ask_passage_of):
        m = np.flatnonzero(sample.ask_passage_of == i)
        rows.append([f[m[0], col("p_cos")], f[m[0], col("p_log_rank")], f[m[0], col("p_bm25")],
                     f[m, col("s_cos")].max(), probs[m].max(), f[m, col("term_cov")].max(),
                     f[m, col("idf_cov")].max(), f[m, col("typed_asked")].max(), f[m, col("s_bm25")].max()])
        gold.append(bool(sample.ask_gold[m].any()))
    return np.array(rows), np.array(gold)


def passage_experiment(samples: Sequence[Sample]) -> dict[str, float]:
    """Whether re-ranking the first 15 passages with a learned passage model beats the
    hybrid order, by leave-one-article-out (hit@1 over the answerable questions)."""
    base, learned, n = 0, 0, 0
    names = tuple(f"x{i}" for i in range(9))
    for g in sorted({s.group for s in samples}):
        train = [s for s in samples if s.group != g and not _involves(s, g)]
        sentence = _sentence_model(train)
        xs, ys = zip(*(_passage_rows(s, sentence.probability(s.ask_rows)) for s in train if s.question.answerable))
        model = fit_linear(np.vstack(xs), np.concatenate(ys), names)
        for s in (s for s in samples if s.group == g and s.question.answerable):
            x, y = _passage_rows(s, sentence.probability(s.ask_rows))
            if not len(y):
                continue
            n += 1
            base += bool(y[0])
            learned += bool(y[int(np.argmax(model.probability(x)))])
    return {"questions": n, "hybrid_hit@1": base / n, "reranked_hit@1": learned / n}


# --------------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validation; only fit and write")
    parser.add_argument("--check", action="store_true",
                        help="fit, and compare with the shipped model file instead of writing it (exit 1 if different)")
    parser.add_argument("--out", metavar="FILE", default=None, help="where to write the models (default: the shipped file)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the cross-validation report")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from indexer.documents import load_documents
    from indexer.embedding import load_embedder, resolve_backend
    from indexer.settings import Settings
    from retrieval.learned import MODELS_FILE, read_models
    from retrieval.searcher import Searcher

    base = Settings.from_env()
    backend = "onnx" if resolve_backend("onnx", base.model_path) == "onnx" and _fp32_export() else "torch"
    settings = replace(base, backend=backend, verdict="rule", place_aliases=True)
    embedder = load_embedder(settings.model_path, settings.model_name, backend)
    docs, _ = load_documents([SEEDS_DIR], settings.limits, settings.chunking)
    folder = cached_index("seeds", docs, settings, lambda: embedder, log=log)
    rule = Searcher.load(settings.with_index(folder), embedder)
    learned_settings = replace(settings, verdict="learned").with_index(folder)
    questions = [q for path in POOL for q in load_questions(path)]
    log(f"[train] {len(questions)} labelled questions ({', '.join(p.name for p in POOL)}); collecting features")
    samples = collect(rule, questions)
    report: dict[str, Any] = {}
    if not args.no_cv and not args.check:
        report = cross_validate(lambda m: Searcher(rule.store, embedder, learned_settings, models=m),
                                rule, samples, log)
        print(table(("verdict", "kind", "n", "hit@1", "hit@5", "MRR@10", "answer sentence",
                     "unanswerable flagged", "answerable wrongly flagged", "compare verdicts"),
                    report_rows(report)))
        print(f"\npassage re-ranking experiment (hit@1 within the first 15): {passage_experiment(samples)}")
        print(f"\nlearned 'answered' probability: Brier {report['learned']['brier']:.3f}; reliability:")
        print(table(("bin", "questions", "mean probability", "share answered"),
                    [(r["bin"], r["n"], f"{r['mean_probability']:.2f}", f"{r['answered']:.2f}")
                     for r in report["learned"]["reliability"]]))
        print("\ncut-off of the answered probability (flag below it):")
        print(table(("cut", "unanswerable flagged", "answerable wrongly flagged"),
                    [(c["cut"], _f(c["unanswerable_flagged"]), _f(c["answerable_flagged"]))
                     for c in report["learned"]["cuts"]]))
    if not report:  # the cut-off still comes from out-of-fold probabilities
        report = {"learned": {"answered_cut": choose_cut(trade_off(*_out_of_fold_confidence(rule, samples)))}}
    cut = report["learned"]["answered_cut"]
    info = {"questions": len(questions), "files": [p.name for p in POOL], "backend": backend, "C": C,
            "sentence_rows": int(sum(len(s.ask_rows) for s in samples)),
            "answered_cut_rule": f"highest of {list(CUTS)} wrongly flagging at most {MAX_WRONGLY_FLAGGED:.0%} "
                                 "of answerable questions out of fold"}
    models = fit_models(rule, samples, info, answered_cut=cut)
    text = json.dumps(models.to_json(), indent=1) + "\n"
    target = Path(args.out) if args.out else MODELS_FILE
    if args.check:
        if not target.is_file():
            print(f"{target}: missing; write it with: python -m bench.train")
            return 1
        difference = _difference(read_models(target).to_json(), json.loads(text))
        verdict = ("reproduced exactly" if difference == 0 else f"reproduced within {difference:.1e}"
                   if difference <= CHECK_TOLERANCE else f"DIFFERS from a fresh fit (by up to {difference:.3g})")
        print(f"{target}: {verdict}")
        return 0 if difference <= CHECK_TOLERANCE else 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    log(f"[train] wrote {target} in {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    return 0


# A fresh fit on another CPU may differ in the last digits (float32 sums are computed in
# another order); beyond this it is a different model.
CHECK_TOLERANCE = 1e-3


def _difference(a: Any, b: Any) -> float:
    """The largest difference between two JSON values of the same shape (inf if the shapes
    or any non-number differ)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return max((_difference(a[k], b[k]) for k in a), default=0.0) if a.keys() == b.keys() else float("inf")
    if isinstance(a, list) and isinstance(b, list):
        return max((_difference(x, y) for x, y in zip(a, b)), default=0.0) if len(a) == len(b) else float("inf")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b))
    return 0.0 if a == b else float("inf")


def _fp32_export() -> bool:
    from indexer.onnx_backend import default_onnx_dir, present_manifest

    return present_manifest(default_onnx_dir(False)) is not None


if __name__ == "__main__":
    sys.exit(main())
