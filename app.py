"""Verbatim's browser UI. Thin: reads widgets, calls ``retrieval`` and ``indexer``, renders.

Run with ``make run`` (or ``streamlit run app.py``). Article text is only ever rendered
escaped (``retrieval.highlight``), so markup inside an article shows as text. Whether a
passage answers, is a weak match, or mentions the question comes from one rule
(``retrieval.verdict``), the same the command line's ``answerable`` uses; the page says why.
"""

from __future__ import annotations

import html
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import altair as alt
import streamlit as st

from indexer.embedding import Embedder, load_embedder
from indexer.errors import IndexNotFoundError, QuestionError, VerbatimError
from indexer.settings import Settings
from indexer.stores import open_store
from indexer.stores.base import DocumentInfo, Store
from retrieval.citation import readable_date
from retrieval.compare import ArticleView, Comparison, compare
from retrieval.export import comparison_markdown, result_markdown, to_json_text
from retrieval.highlight import highlight_html
from retrieval.verdict import confidence_words
from retrieval.searcher import Searcher
from retrieval.types import Hit, Result

if TYPE_CHECKING:
    from indexer.update import UpdateReport
    from retrieval.generate import WrittenAnswer

VIEWS = ("Answers", "Compare", "Collection")
CSS = """<style>
.vb-passage { white-space: pre-wrap; line-height: 1.55; }
.vb-article { white-space: pre-wrap; line-height: 1.55; max-height: 28rem; overflow-y: auto; position: relative;
              border: 1px solid rgba(128,128,128,.3); border-radius: .4rem; padding: .6rem .8rem; }
.vb-cite { color: #555; font-size: .92rem; }
.vb-cite a { color: #1f5fbf; }
.vb-file { color: #777; font-size: .78rem; font-family: monospace; }
.vb-title { font-weight: 600; font-size: 1.1rem; }
.vb-why { color: #666; font-size: .85rem; font-style: italic; }
.vb-weak { color: #a05a00; font-size: .85rem; font-weight: 600; }
.vb-weak-hit .vb-passage { color: #555; }
.vb-none { color: #888; font-style: italic; }
.vb-not-mentioned .vb-title { color: #777; font-weight: 500; }
.vb-lead { border-left: 4px solid #2f6fdf; padding: .4rem .9rem; margin: .2rem 0 .6rem 0;
           background: rgba(47,111,223,.06); border-radius: .3rem; }
.vb-lead-label { text-transform: uppercase; letter-spacing: .06em; font-size: .75rem; color: #2f6fdf; font-weight: 700; }
.vb-lead-answer { font-size: 1.15rem; line-height: 1.5; margin: .25rem 0; }
.vb-same { color: #2f6fdf; font-size: .88rem; }
mark.answer { background: #ffe28a; color: inherit; padding: 0 .1rem; border-radius: .15rem; }
mark.passage { background: #e3efff; color: inherit; }
mark.heading { background: none; color: inherit; font-weight: 700; }
mark.closest { background: none; color: inherit; text-decoration: underline dotted #a05a00; }
mark.evidence { background: #c9f0d2; color: inherit; padding: 0 .1rem; border-radius: .15rem; }
.vb-written { border-left: 4px solid #2e8b57; padding: .3rem .9rem; margin: .2rem 0 .4rem 0;
              background: rgba(46,139,87,.05); border-radius: .3rem; }
.vb-written-label { text-transform: uppercase; letter-spacing: .06em; font-size: .75rem; color: #2e8b57; font-weight: 700; }
.vb-claim-ok { font-size: 1.02rem; }
.vb-claim-bad { color: #888; font-size: 1.02rem; }
.vb-claim-why { color: #a05a00; font-size: .85rem; font-style: italic; }
</style>"""
# Opens every "Show in the article" box scrolled to its highlighted passage, once, when it
# first becomes visible (expanders lay out their content only when opened). The script
# only reads classes the app sets; it never touches article text.
SCROLL_SCRIPT = """<script id="vb-scroll-script">
(() => {
  if (window.__vbScroll) { window.__vbScroll(); return; }
  const place = (box) => {
    if (box.dataset.vbPlaced || box.clientHeight === 0) return;
    const mark = box.querySelector('mark.answer, mark.closest, mark.passage');
    if (!mark) return;
    box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
    box.dataset.vbPlaced = '1';
  };
  const seen = new ResizeObserver((entries) => entries.forEach((e) => place(e.target)));
  const watch = () => document.querySelectorAll('.vb-article').forEach((box) => {
    if (!box.dataset.vbWatched) { box.dataset.vbWatched = '1'; seen.observe(box); }
    place(box);
  });
  window.__vbScroll = watch;
  new MutationObserver(watch).observe(document.body, {childList: true, subtree: true});
  watch();
})();
</script>"""
MIB = 1024 * 1024  # Streamlit's uploader counts in these "MB"


def size_text(limit: int) -> str:
    """A byte count in the uploader's unit: 20971520 -> "20 MB"."""
    return f"{limit // MIB} MB" if limit % MIB == 0 else f"{limit / MIB:.1f} MB"


@st.cache_resource(show_spinner="Loading the model…")
def get_embedder(model_path: str, model_name: str, backend: str) -> Embedder:
    return load_embedder(Path(model_path) if model_path else None, model_name, backend)


@st.cache_resource(show_spinner="Loading the index…", max_entries=2)
def get_store(settings_key: str, version: str, _settings: Settings) -> Store:
    # `version` is part of the cache key: an updated index is picked up without a restart.
    store = open_store(_settings)
    # Opened and checked here, once per version: the manifest and every segment. (A call:
    # Streamlit's "magic" would print a bare attribute expression such as `store.info`.)
    store.document_infos()
    return store


@st.cache_resource(max_entries=2)
def get_probe(settings_key: str, _settings: Settings) -> Store:
    # Asked only for version(): what the store holds now (one connection, kept).
    return open_store(_settings)


def get_searcher(settings: Settings) -> Searcher:
    version = get_probe(repr(settings), settings).version()
    store = get_store(repr(settings), version, settings)
    # The configured model; Searcher refuses an index built with another one.
    embedder = get_embedder(str(settings.model_path or ""), settings.model_name, settings.backend)
    return Searcher(store, embedder, settings)


# ---------------------------------------------------------------- rendering helpers
def local_time(iso: str) -> str:
    """An ISO timestamp as "1 December 2026, 07:01" in this machine's time zone."""
    try:
        moment = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return iso
    return f"{moment.day} {moment:%B %Y, %H:%M}"


def citation_html(hit: Hit, *, title: bool = True, sentence: bool = False) -> str:
    """The citation a reader checks: title (unless the card shows it already), outlet,
    date, paragraph, a link to the original; then, smaller, the exact file and character
    span (of the answer sentence when ``sentence``, else of the passage)."""
    c = hit.citation
    parts = [f"<i>{html.escape(hit.title)}</i>"] if title else []
    if c is not None:
        parts.append(html.escape(c.outlet))
        if c.date:
            parts.append(html.escape(readable_date(c.date) or c.date))
        parts.append(f"paragraph {c.paragraph}" if c.paragraph else "headline")
    link = (f' · <a href="{html.escape(c.url, quote=True)}" target="_blank" rel="noopener noreferrer">'
            "original article ↗</a>" if c is not None and c.url else "")
    start, end = (hit.answer.start, hit.answer.end) if sentence else (hit.start, hit.end)
    technical = f"{hit.source} · characters {start}–{end} · {hit.doc_id}"
    return (f'<div class="vb-cite">{", ".join(parts)}{link}</div>'
            f'<div class="vb-file">{html.escape(technical)}</div>')


def passage_html(hit: Hit, answers: bool) -> str:
    """The passage, escaped: its headings shown as headings, and the answer sentence
    highlighted only when it answers (a weak match's closest sentence is underlined)."""
    marks = [(s, e, "heading") for s, e in hit.headings]
    marks.append((hit.answer.start, hit.answer.end, "answer" if answers else "closest"))
    return f'<div class="vb-passage">{highlight_html(hit.text, hit.start, marks)}</div>'


def render_hit(hit: Hit, article_text: str, headings: tuple[tuple[int, int], ...], answers: bool,
               why: str) -> None:
    badge = "" if answers else '<span class="vb-weak"> · weak match</span>'
    st.html(
        f'<div class="{"vb-hit" if answers else "vb-hit vb-weak-hit"}">'
        f'<div class="vb-title">{hit.rank}. {html.escape(hit.title)}{badge}</div>'
        f'{citation_html(hit, title=False)}{passage_html(hit, answers)}'
        f'<div class="vb-why">{"Answers" if answers else "Weak match"}: {html.escape(why)}.</div></div>'
    )
    with st.expander("Show in the article"):
        marks = [(hit.start, hit.end, "passage"), *((s, e, "heading") for s, e in headings),
                 (hit.answer.start, hit.answer.end, "answer" if answers else "closest")]
        st.html(f'<div class="vb-article">{highlight_html(article_text, 0, marks)}</div>')


def render_lead(result: Result, cut: float) -> None:
    """The lead answer: the best answer sentence and its citation in plain words; or,
    when unanswered, that the articles don't seem to answer, and why."""
    lead = result.lead
    confidence = ""
    if result.confidence is not None:
        confidence = f"{confidence_words(result.confidence, cut)} ({result.confidence:.0%})"
    if lead is None:
        why = (f"the models give {result.confidence:.0%} that they do" if result.confidence is not None
               else result.supports[0].reason if result.supports else "nothing in the articles comes close")
        st.warning(f"The articles don't seem to answer this{f' — {confidence}' if confidence else ''}: {why}. "
                   "The nearest passages are shown below, marked as weak matches.")
        return
    support = result.supports[lead.rank - 1]
    label = f"Answer · {confidence}" if confidence else "Answer"
    st.html(
        f'<div class="vb-lead"><div class="vb-lead-label">{html.escape(label)}</div>'
        f'<div class="vb-lead-answer">“{html.escape(lead.answer.text)}”</div>'
        f'{citation_html(lead, sentence=True)}<div class="vb-why">Why: {html.escape(support.reason)}.</div></div>'
    )


def example_questions(documents: list[DocumentInfo], n: int = 3) -> list[str]:
    """Example questions drawn from the index: article titles phrased as questions."""
    titles = [d.title for d in documents if d.title]
    asked = [t for t in titles if t.endswith("?")]
    others = [f"What do the articles say about “{t[:70]}”?" for t in titles if not t.endswith("?")]
    return (asked + others)[:n]


def set_question(question: str) -> None:
    st.session_state["question"] = question
    st.query_params["q"] = question


# ---------------------------------------------------------------- views
def answers_view(searcher: Searcher, question: str, top_k: int) -> None:
    try:
        result: Result = searcher.ask(question, top_k)
    except QuestionError as exc:
        st.warning(str(exc))
        return
    render_lead(result, searcher.models.answered_cut if searcher.models else 0.5)
    slot = st.container() if searcher.settings.generation else None  # filled after the passages are shown
    st.html(f"<p>{len(result.hits)} passages for: <b>{html.escape(result.question)}</b></p>")
    for hit, support in zip(result.hits, result.supports):
        doc = searcher.document(hit.doc_id)
        with st.container(border=True):
            why = support.reason if result.answerable or not support.supported else (
                "no passage among the first ones answers, so none counts as an answer")
            render_hit(hit, doc.text if doc else hit.text, searcher.article_headings(hit.doc_id),
                       result.answers(hit.rank), why)
    c1, c2 = st.columns(2)
    c1.download_button("Download as Markdown", result_markdown(result), "answers.md", "text/markdown")
    c2.download_button("Download as JSON", to_json_text(result), "answers.json", "application/json")
    if slot is not None:
        with slot:
            written_section(searcher, result, top_k)


# ---------------------------------------------------------------- the written answer (optional)
def _written_cache() -> dict[tuple[str, ...], "WrittenAnswer"]:
    return st.session_state.setdefault("written", {})


def written_section(searcher: Searcher, result: Result, top_k: int) -> None:
    """The model's written answer (VERBATIM_LLM_URL): written on request, streamed, stoppable,
    then shown sentence by sentence, each supported one opening onto its exact span and each
    unsupported one struck, with the reason. Not asked when the articles don't answer."""
    from retrieval.generate import MAX_SOURCES, checked_answer, model_label, sources_for, write_answer

    model = model_label(searcher.settings)
    if not result.answerable:
        st.caption(f"Written answer: the articles don't seem to answer this, so {model} was not asked.")
        return
    key = (result.question, str(top_k), searcher.store.version(), model)
    cache = _written_cache()
    partial = st.session_state.get("written_partial")
    if key not in cache and st.session_state.pop("stop_writing", False) and partial and partial[0] == key:
        # "Stop writing" was pressed: what was written by then, its finished sentences checked.
        cache[key] = checked_answer(searcher, partial[1], sources_for(searcher, result.hits[:MAX_SOURCES]), model,
                                    stopped=True)
    if key in cache:
        render_written(cache[key], searcher)
        if st.button("Write it again", key="rewrite"):
            cache.pop(key, None)
            st.rerun()
        return
    if not st.session_state.get("write_answers", True) and not st.button(f"Write an answer with {model}",
                                                                          key="write"):
        return
    box = st.container(border=True)
    box.html(f'<div class="vb-written-label">Written answer · {html.escape(model)} · writing…</div>')
    st.session_state["written_partial"] = (key, "")
    box.button("Stop writing", key="stop-writing", on_click=lambda: st.session_state.update(stop_writing=True))
    shown = box.empty()
    shown.caption("Waiting for the model… (its sentences are checked when it finishes)")

    def on_text(text: str) -> None:
        st.session_state["written_partial"] = (key, text)
        shown.markdown(f"{_plain(text)}  \n*… not yet checked*")

    tick = box.empty()

    def waiting(seconds: float) -> None:  # also where a press of "Stop writing" stops the script
        tick.caption(f"{seconds:.0f} s")

    answer = write_answer(searcher, result, on_text=on_text, waiting=waiting)
    cache[key] = answer
    st.session_state.pop("written_partial", None)
    st.rerun()


def _plain(text: str) -> str:
    """Model output shown as text, never as Markdown or HTML."""
    return "".join("\\" + c if c in "\\`*_{}[]<>()#+-.!|~$" else c for c in text)


def render_written(answer: "WrittenAnswer", searcher: Searcher) -> None:
    supported = len(answer.supported)
    total = len(answer.sentences)
    head = f"Written answer · {answer.model}"
    if answer.status == "failed":
        st.warning(f"No written answer: {_plain(answer.note or '')}")
        return
    counts = f" · {supported} of {total} sentences supported by the passage they cite" if total else ""
    st.html(f'<div class="vb-written"><div class="vb-written-label">{html.escape(head + counts)}</div>'
            '<div class="vb-why">Each sentence was checked against the exact passage it cites (its numbers, '
            'dates and names must be there, and its meaning close); open one to see its source. Struck '
            'sentences are not supported, and say why.</div></div>')
    labels = {s.label: s for s in answer.sources}
    for sentence in answer.sentences:
        tags = "".join(f"[{x}]" for x in sentence.labels)
        if sentence.supported:
            title = f"✓ {_plain(sentence.text)} {tags}"
        else:
            title = f"✗ ~~{_plain(sentence.text)}~~ {tags} — not supported"
        with st.expander(title, expanded=False):
            if not sentence.supported:
                st.html(f'<div class="vb-claim-why">Not supported: {html.escape(sentence.reason)}.</div>')
            else:
                st.html(f'<div class="vb-why">Supported: {html.escape(sentence.reason)}.</div>')
            for label in sentence.labels:
                source = labels.get(label)
                if source is None:
                    continue
                spans = [(c.start, c.end, "evidence" if sentence.supported else "closest") for c in sentence.cites
                         if c.label == label and (sentence.supported or (c.start, c.end) != (source.start, source.end))]
                where = ", ".join(f"characters {s}–{e}" for s, e, _ in spans) or f"characters {source.start}–{source.end}"
                st.html(f'<div class="vb-cite">[{label}] <i>{html.escape(source.title)}</i> · '
                        f'{html.escape(where)} · {html.escape(source.doc_id)}</div>'
                        f'<div class="vb-passage">{highlight_html(source.text, source.start, spans)}</div>')
    if answer.note:
        st.caption(_plain(answer.note))


def _label(title: str, width: int = 38) -> str:
    """A title wrapped onto lines of about ``width`` characters, joined by "|" (the chart
    splits labels there): full titles stay readable."""
    lines, line = [], ""
    for word in title.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "|".join([*lines, line][:4])


NOT_MENTIONED_SHOWN = 10  # cards of articles that do not mention it, before "more"
CHART_ROWS = 25  # articles in the relevance chart (the most relevant; the cards list every one)
ROW_PX = 46  # height of one article's row: room for a title of up to four lines


def _axis() -> alt.Axis:
    return alt.Axis(labelLimit=300, labelExpr="split(datum.label, '|')", labelOverlap=False,
                    labelFontSize=11, labelPadding=6)


def compare_chart(comparison: Comparison) -> alt.VConcatChart | alt.LayerChart:
    """Relevance per article with the cut-off drawn, and (for the articles that mention it)
    where their relevant passages lie."""
    cut = comparison.threshold
    shown = comparison.articles[:CHART_ROWS]
    # What the verdict compared with the cut-off: a probability (learned), else a similarity.
    measure = "probability that it gives the answer" if comparison.learned else "relevance of its closest sentence"
    rows = [{"article": _label(v.title), "title": v.title,
             "relevance": round(_measure(v, comparison), 3),
             "status": "mentioned" if v.mentioned else "not mentioned"} for v in shown]
    order = [r["article"] for r in rows]
    y = alt.Y("article:N", sort=order, title=None, axis=_axis())
    bars = alt.Chart(alt.Data(values=rows)).mark_bar(size=22).encode(
        x=alt.X("relevance:Q", scale=alt.Scale(domain=[0, 1]), title=measure),
        y=y,
        color=alt.Color("status:N", title=None, scale=alt.Scale(domain=["mentioned", "not mentioned"],
                                                                range=["#2f6fdf", "#d0d0d0"])),
        tooltip=[alt.Tooltip("title:N", title="article"), "relevance:Q", "status:N"],
    )
    rule = alt.Chart(alt.Data(values=[{"cut": cut, "label": f"cut-off {cut:.2f}"}])).mark_rule(
        color="#c0392b", strokeDash=[5, 3]).encode(x="cut:Q")
    tag = alt.Chart(alt.Data(values=[{"cut": cut, "label": f"cut-off {cut:.2f}"}])).mark_text(
        color="#c0392b", align="left", dx=4, dy=-6, baseline="bottom").encode(x="cut:Q", text="label:N", y=alt.value(0))
    more = len(comparison.articles) - len(shown)
    title = ("How likely each article gives the answer" if comparison.learned else "Relevance per article") + (
        f" (the {len(shown)} most relevant; {more} more below)" if more else "")
    relevance = alt.layer(bars, rule, tag).properties(title=title, width=520, height=ROW_PX * len(rows))
    mentioned = [v for v in shown if v.mentioned]
    points = [{"article": _label(v.title), "title": v.title, "position": round(p.relative, 3),
               "relevance": round(p.relevance, 3)} for v in mentioned for p in v.positions]
    if not points:
        return relevance
    strip = alt.Chart(alt.Data(values=points)).mark_circle().encode(
        x=alt.X("position:Q", scale=alt.Scale(domain=[0, 1]), title="position in the article (start → end)"),
        y=alt.Y("article:N", sort=[_label(v.title) for v in mentioned], title=None, axis=_axis()),
        size=alt.Size("relevance:Q", legend=None), opacity=alt.Opacity("relevance:Q", legend=None),
        tooltip=[alt.Tooltip("title:N", title="article"), "position:Q", "relevance:Q"],
    ).properties(title="Where the relevant passages are (articles that mention it)", width=520,
                 height=ROW_PX * len(mentioned))
    return alt.vconcat(relevance, strip)


def _measure(view: ArticleView, comparison: Comparison) -> float:
    if comparison.learned and view.support is not None and view.support.probability is not None:
        return view.support.probability
    return view.score


def _article_card(view: ArticleView, titles: dict[str, str], comparison: Comparison) -> None:
    support = view.support
    why = support.reason if support else "no passage of it comes close to the question"
    if view.mentioned and view.hit is not None:
        hit = view.hit
        same = (f'<div class="vb-same">Says the same as: {html.escape("; ".join(titles[d] for d in view.same_as))}</div>'
                if view.same_as else "")
        st.html(f'<div class="vb-mentioned"><div class="vb-title">{html.escape(view.title)}</div>'
                f'{citation_html(hit, title=False)}{same}{passage_html(hit, True)}'
                f'<div class="vb-why">Mentioned: {html.escape(why)}.</div></div>')
        value = _measure(view, comparison)
        what = "gives the answer" if comparison.learned else "relevance"
        st.progress(min(max(value, 0.0), 1.0),
                    text=f"{what} {value:.0%} (cut-off {comparison.threshold:.0%})" if comparison.learned
                    else f"{what} {value:.2f} (cut-off {support.threshold:.2f})" if support else f"{what} {value:.2f}")
    else:
        meta = " · ".join(x for x in (readable_date(view.date), view.source) if x)
        st.html(f'<div class="vb-not-mentioned"><div class="vb-title">{html.escape(view.title)}</div>'
                f'<div class="vb-file">{html.escape(meta)}</div>'
                f'<div class="vb-none">Not mentioned: {html.escape(why)}.</div></div>')


def compare_view(searcher: Searcher, question: str) -> None:
    try:
        comparison = compare(searcher, question)
    except QuestionError as exc:
        st.warning(str(exc))
        return
    mentioned = sum(v.mentioned for v in comparison.articles)
    st.html(f"<p>{mentioned} of {len(comparison.articles)} articles address: "
            f"<b>{html.escape(comparison.question)}</b></p>")
    line = " (the red line in the chart)" if mentioned else ""
    if comparison.learned:
        st.caption(f"An article counts as mentioning it when the models give at least "
                   f"{comparison.threshold:.0%} that its closest sentence gives the answer{line}; they weigh "
                   "its similarity to the question, the question's terms and names it holds, and whether "
                   "it gives the kind of answer asked for. Headings never count.")
    else:
        st.caption(f"An article counts as mentioning it when its closest sentence gives the kind of "
                   f"answer asked for and is at least {comparison.threshold:.2f} similar to the question"
                   f"{line}, or at least {searcher.settings.min_relevance:.2f} when it also holds half of "
                   "the question's key terms; headings never count.")
    if not mentioned:
        st.info("None of the articles seems to address this question, so there is nothing to chart. "
                "Each article is listed below with why it does not count.")
    for note in comparison.conflicts:
        st.warning(note)
    if mentioned:
        st.altair_chart(compare_chart(comparison), width="content")
    titles = {v.doc_id: v.title for v in comparison.articles}
    quiet = [v for v in comparison.articles if not v.mentioned]
    summaries = article_summaries(searcher, comparison) if mentioned and searcher.settings.generation else {}
    for view in [v for v in comparison.articles if v.mentioned] + quiet[:NOT_MENTIONED_SHOWN]:
        with st.container(border=True):
            _article_card(view, titles, comparison)
            if view.doc_id in summaries:
                render_summary(summaries[view.doc_id])
    if len(quiet) > NOT_MENTIONED_SHOWN:
        with st.expander(f"{len(quiet) - NOT_MENTIONED_SHOWN} more articles that do not mention it"):
            for view in quiet[NOT_MENTIONED_SHOWN:]:
                _article_card(view, titles, comparison)
    c1, c2 = st.columns(2)
    c1.download_button("Download comparison as Markdown", comparison_markdown(comparison),
                       "comparison.md", "text/markdown")
    c2.download_button("Download comparison as JSON", to_json_text(comparison),
                       "comparison.json", "application/json")


def article_summaries(searcher: Searcher, comparison: Comparison) -> dict[str, "WrittenAnswer"]:
    """One checked sentence per mentioned article by the user's model, on request (kept
    for the question and index version)."""
    from retrieval.generate import model_label, write_summary

    model = model_label(searcher.settings)
    key = ("summaries", comparison.question, searcher.store.version(), model)
    cache = st.session_state.setdefault("summaries", {})
    if key not in cache:
        views = [v for v in comparison.articles if v.mentioned and v.hit is not None]
        if not st.button(f"Summarise each article in one sentence with {model}", key="summarise"):
            return {}
        done: dict[str, "WrittenAnswer"] = {}
        progress = st.progress(0.0, text="Writing the summaries…")
        for n, view in enumerate(views, 1):
            done[view.doc_id] = write_summary(  # type: ignore[arg-type]
                searcher, comparison.question, view.hit,
                waiting=lambda sec, n=n: progress.progress((n - 1) / len(views), text=f"Writing summary {n} of "
                                                           f"{len(views)}… {sec:.0f} s"))
            progress.progress(n / len(views), text=f"Written {n} of {len(views)} summaries (each checked)")
            if done[view.doc_id].status == "failed":
                break  # the server is down or refuses: the same for every article
        cache[key] = done
        progress.empty()
    failed = next((a for a in cache[key].values() if a.status == "failed"), None)
    if failed is not None:
        st.warning(f"No summaries: {_plain(failed.note or '')}")
        if st.button("Try the summaries again", key="resummarise"):
            cache.pop(key, None)
            st.rerun()
        return {}
    return cache[key]


def render_summary(answer: "WrittenAnswer") -> None:
    """An article's one-line summary: shown when the passage supports it, else struck with the reason."""
    for s in answer.sentences:
        if s.supported:
            st.html(f'<div class="vb-claim-ok"><span class="vb-written-label">Summary · {html.escape(answer.model)}'
                    f' · checked</span><br>{html.escape(s.text)}</div>')
        else:
            st.html(f'<div class="vb-claim-bad"><span class="vb-written-label">Summary · {html.escape(answer.model)}'
                    f'</span><br><s>{html.escape(s.text)}</s> <span class="vb-claim-why">not supported: '
                    f'{html.escape(s.reason)}</span></div>')
    if not answer.sentences and answer.note:
        st.caption(f"Summary: {_plain(answer.note)}")


def _report_messages(report: "UpdateReport") -> list[tuple[str, str]]:
    """One message per file: what was added or updated, and each skip with its reason."""
    out = [("warning", f"Not added: {s.path} — {s.reason}.") for s in report.skipped]
    for verb, ids in (("Added", report.added), ("Updated", report.updated)):
        if ids:
            named = ", ".join(f"“{report.titles.get(i, i)}” ({i})" for i in ids)
            out.append(("success", f"{verb} {len(ids)} article{'s' if len(ids) > 1 else ''}: {named}."))
    if report.unchanged:
        out.append(("info", f"Already indexed, unchanged: {', '.join(report.unchanged)}."))
    return out


@st.dialog("Remove this article?")
def confirm_removal(doc_id: str, title: str, settings: Settings, embedder: Embedder) -> None:
    st.write(f"“{title}” ({doc_id}) will be removed from the index. Its file is not deleted, "
             "so you can add it again later.")
    c1, c2 = st.columns(2)
    if c1.button("Remove", type="primary", key="confirm-remove"):
        try:
            from indexer.update import remove_documents  # build time: loaded when first needed

            remove_documents([doc_id], settings, embedder)
            st.session_state["collection_messages"] = [("success", f"Removed “{title}” ({doc_id}).")]
        except VerbatimError as exc:
            st.session_state["collection_messages"] = [("error", str(exc))]
        st.rerun()
    if c2.button("Cancel", key="cancel-remove"):
        st.rerun()


def collection_view(searcher: Searcher, settings: Settings) -> None:
    documents = searcher.store.document_infos()
    for kind, message in st.session_state.pop("collection_messages", []):
        getattr(st, kind)(message)
    st.subheader(f"{len(documents)} articles")
    limit = settings.limits.max_file_bytes
    uploads = st.file_uploader(
        f"Add articles (.txt, .md, .html, .pdf, .docx; up to {size_text(limit)} each)",
        accept_multiple_files=True, key=f"uploads-{st.session_state.get('upload_round', 0)}",
        max_upload_size=max(1, math.ceil(limit / MIB)))
    if uploads and st.button("Add to the index", type="primary"):
        with st.spinner("Indexing…"):
            try:
                from indexer.update import upload_articles  # build time: loaded when first needed

                report = upload_articles([(u.name, u.getvalue()) for u in uploads], settings,
                                         searcher.embedder)
                messages = _report_messages(report)
            except VerbatimError as exc:
                messages = [("error", str(exc))]
        # Show the new state at once: the page and the sidebar count again, and the
        # uploader starts empty (a new key).
        st.session_state["collection_messages"] = messages
        st.session_state["upload_round"] = st.session_state.get("upload_round", 0) + 1
        st.rerun()
    for doc in documents:
        c1, c2 = st.columns([6, 1])
        meta = " · ".join(x for x in (readable_date(doc.date), f"{doc.passages} passages") if x)
        c1.html(f'<div class="vb-title">{html.escape(doc.title)}</div>'
                f'<div class="vb-cite">{html.escape(meta)}</div>'
                f'<div class="vb-file">{html.escape(doc.source)} · {html.escape(doc.doc_id)}</div>')
        if c2.button("Remove", key=f"remove-{doc.doc_id}"):
            confirm_removal(doc.doc_id, doc.title, settings, searcher.embedder)


def main() -> None:
    st.set_page_config(page_title="Verbatim", page_icon="📰", layout="wide")
    st.html(CSS)
    try:
        settings = Settings.from_env()
        searcher = get_searcher(settings)
    except IndexNotFoundError as exc:
        st.title("Verbatim")
        hint = "" if settings.store else " (`make run` builds it from the seed articles.)"
        st.error(f"{exc}{hint} Then reload this page.")
        st.stop()
    except VerbatimError as exc:
        st.title("Verbatim")
        st.error(f"{exc} Then reload this page.")
        st.stop()
    try:
        page(searcher, settings)
    except VerbatimError as exc:  # the index was damaged, or its server went away, while in use
        st.error(f"{exc} Then reload this page.")


def page(searcher: Searcher, settings: Settings) -> None:
    """The sidebar and the chosen view."""

    info = searcher.store.info
    with st.sidebar:
        top_k = st.slider("Passages to show", 1, max(20, settings.top_k), settings.top_k)
        if settings.generation:
            from retrieval.generate import model_label

            st.toggle(f"Written answer by {model_label(settings)}", value=True, key="write_answers",
                      help="Your own model (VERBATIM_LLM_URL) writes a short answer from the cited passages; "
                           "every sentence is checked against the passage it cites. Off: a button asks for one.")
        st.subheader("Index")
        where = "" if info.kind == "local" else f"- **Store:** Milvus at `{info.location}`\n"
        st.markdown(
            f"- **Articles:** {info.documents}\n"
            f"- **Passages:** {info.passages}\n"
            f"- **Model:** `{info.model.name}`\n"
            f"- **Updated:** {local_time(info.built_at)}\n" + where
        )

    st.title("Verbatim")
    st.caption("Ask the articles a question; every answer is a cited passage.")
    params = st.query_params
    if "question" not in st.session_state:
        st.session_state["question"] = params.get("q", "")
    asked_view = params.get("view", "answers")
    default_view = asked_view.capitalize() if asked_view.capitalize() in VIEWS else "Answers"
    view = st.segmented_control("View", VIEWS, default=default_view, key="view",
                                label_visibility="collapsed") or "Answers"
    if asked_view.capitalize() not in VIEWS and view == "Answers":
        st.warning(f"There is no view called “{asked_view}”; showing Answers. The views are "
                   f"{', '.join(v.lower() for v in VIEWS)}.")
    if view.lower() != params.get("view", "answers"):
        st.query_params["view"] = view.lower()

    if view == "Collection":
        collection_view(searcher, settings)
        return

    with st.form("ask", border=False):
        st.text_input("Question", key="question",
                      placeholder="Ask a question about the articles and press Enter")
        st.form_submit_button("Ask" if view == "Answers" else "Compare")
    question = st.session_state["question"]
    if question != params.get("q", ""):
        if question:
            st.query_params["q"] = question
        elif "q" in st.query_params:
            del st.query_params["q"]

    if not question.strip():
        if question:
            st.warning("The question is empty. Type a question about the articles.")
        st.info("Ask anything the articles might answer. **Answers** leads with the best answer "
                "and lists the passages, each with its citation and the answering sentence "
                "highlighted; **Compare** shows what each article says. Try one of these:")
        for n, example in enumerate(example_questions(searcher.store.document_infos())):
            st.button(example, on_click=set_question, args=(example,), key=f"example-{n}")
        return
    if view == "Compare":
        compare_view(searcher, question)
    else:
        answers_view(searcher, question, top_k)
        st.html(SCROLL_SCRIPT, unsafe_allow_javascript=True)


main()
