"""Exports of answers and comparisons: Markdown with numbered citations, and JSON."""

from __future__ import annotations

import json

from retrieval.compare import Comparison
from retrieval.types import Hit, Result


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.strip().splitlines())


def _citation(n: int, hit: Hit) -> str:
    return f"[{n}] {hit.title} — {hit.source}, characters {hit.start}–{hit.end} (document {hit.doc_id})"


def result_markdown(result: Result) -> str:
    """The answer list as Markdown: each passage's answering sentence quoted, numbered
    citations at the end."""
    lines = [f"# {result.question}", ""]
    if not result.answerable:
        lines += ["*The articles don't seem to answer this; the nearest passages follow.*", ""]
    for n, hit in enumerate(result.hits, 1):
        lines += [f"## {n}. {hit.title}", "", _quote(hit.answer.text) + f" [{n}]", "",
                  "Passage:", "", _quote(hit.text), ""]
    lines += ["## Citations", ""] + [_citation(n, h) for n, h in enumerate(result.hits, 1)]
    return "\n".join(lines) + "\n"


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as Markdown: one section per article, "not mentioned" where due."""
    lines = [f"# {comparison.question}", "", "What each article says.", ""]
    cited: list[Hit] = []
    for view in comparison.articles:
        lines.append(f"## {view.title}")
        meta = [view.source] + ([view.date] if view.date else [])
        if view.group is not None:
            meta.append(f"group {view.group}")
        lines += [f"*{' · '.join(meta)}*", ""]
        if view.mentioned and view.hit is not None:
            cited.append(view.hit)
            lines += [_quote(view.hit.answer.text) + f" [{len(cited)}]", ""]
        else:
            lines += ["Not mentioned.", ""]
    if comparison.conflicts:
        lines += ["## Numbers that differ", ""] + [f"- {c}" for c in comparison.conflicts] + [""]
    lines += ["## Citations", ""] + [_citation(n, h) for n, h in enumerate(cited, 1)]
    return "\n".join(lines) + "\n"


def to_json_text(obj: Result | Comparison) -> str:
    return json.dumps(obj.to_json(), ensure_ascii=False, indent=2) + "\n"
