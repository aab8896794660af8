"""Exports of answers and comparisons: Markdown with numbered citations, and JSON."""

from __future__ import annotations

import json

from retrieval.citation import readable_date
from retrieval.compare import Comparison
from retrieval.types import Hit, Result


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.strip().splitlines())


def _citation(n: int, hit: Hit) -> str:
    c = hit.citation
    words = ""
    if c is not None:
        words = ", ".join(x for x in (c.outlet, readable_date(c.date), f"paragraph {c.paragraph}") if x) + "; "
        if c.url:
            words += f"<{c.url}>; "
    return f"[{n}] {hit.title} — {words}{hit.source}, characters {hit.start}–{hit.end} (document {hit.doc_id})"


def result_markdown(result: Result) -> str:
    """The answer list as Markdown: each passage's answering sentence quoted, numbered
    citations at the end."""
    lines = [f"# {result.question}", ""]
    if not result.answerable:
        lines += ["*The articles don't seem to answer this; the nearest passages follow, as weak matches.*", ""]
    elif result.lead is not None:
        lines += ["**Answer:** " + result.lead.answer.text.strip() + f" [{result.lead.rank}]", ""]
    for n, hit in enumerate(result.hits, 1):
        label = "" if result.answers(n) else " (weak match)"
        lines += [f"## {n}. {hit.title}{label}", "", _quote(hit.answer.text) + f" [{n}]", "",
                  "Passage:", "", _quote(hit.text), ""]
    lines += ["## Citations", ""] + [_citation(n, h) for n, h in enumerate(result.hits, 1)]
    return "\n".join(lines) + "\n"


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as Markdown: one section per article, "not mentioned" where due."""
    lines = [f"# {comparison.question}", "", "What each article says.", ""]
    cited: list[Hit] = []
    titles = {v.doc_id: v.title for v in comparison.articles}
    for view in comparison.articles:
        lines.append(f"## {view.title}")
        meta = [view.source] + ([view.date] if view.date else [])
        lines += [f"*{' · '.join(meta)}*", ""]
        if view.mentioned and view.hit is not None:
            cited.append(view.hit)
            lines += [_quote(view.hit.answer.text) + f" [{len(cited)}]", ""]
            if view.same_as:
                lines += [f"Says the same as: {'; '.join(titles[d] for d in view.same_as)}.", ""]
        else:
            why = view.support.reason if view.support else "no passage of it comes close to the question"
            lines += [f"Not mentioned ({why}).", ""]
    if comparison.conflicts:
        lines += ["## Numbers that differ", ""] + [f"- {c}" for c in comparison.conflicts] + [""]
    lines += ["## Citations", ""] + [_citation(n, h) for n, h in enumerate(cited, 1)]
    return "\n".join(lines) + "\n"


def to_json_text(obj: Result | Comparison) -> str:
    return json.dumps(obj.to_json(), ensure_ascii=False, indent=2) + "\n"
