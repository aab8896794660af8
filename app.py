"""Verbatim's browser UI. Thin: reads widgets, calls ``retrieval`` and ``indexer``, renders.

Run with ``make run`` (or ``streamlit run app.py``). Article text is only ever rendered
escaped (``retrieval.highlight``), so markup inside an article shows as text.
"""

from __future__ import annotations

import html
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import altair as alt
import numpy as np
import streamlit as st

from indexer.embedding import Embedder, load_embedder
from indexer.errors import IndexNotFoundError, QuestionError, VerbatimError
from indexer.settings import Settings
from indexer.store import IndexData, build_command, current_generation, load_index
from indexer.update import remove_documents, upload_articles
from retrieval.compare import Comparison, compare
from retrieval.export import comparison_markdown, result_markdown, to_json_text
from retrieval.highlight import highlight_html
from retrieval.searcher import Searcher
from retrieval.types import Hit, Result

VIEWS = ("Answers", "Compare", "Collection")
CSS = """<style>
.vb-passage { white-space: pre-wrap; line-height: 1.55; }
.vb-article { white-space: pre-wrap; line-height: 1.55; max-height: 28rem; overflow-y: auto;
              border: 1px solid rgba(128,128,128,.3); border-radius: .4rem; padding: .6rem .8rem; }
.vb-cite { color: #666; font-size: .85rem; font-family: monospace; }
.vb-title { font-weight: 600; font-size: 1.1rem; }
.vb-weak { color: #a05a00; font-size: .85rem; font-weight: 600; }
.vb-none { color: #888; font-style: italic; }
mark.answer { background: #ffe28a; color: inherit; padding: 0 .1rem; border-radius: .15rem; }
mark.passage { background: #e3efff; color: inherit; }
</style>"""


@st.cache_resource(show_spinner="Loading the model…")
def get_embedder(model_path: str, model_name: str, backend: str) -> Embedder:
    return load_embedder(Path(model_path) if model_path else None, model_name, backend)


@st.cache_resource(show_spinner="Loading the index…", max_entries=2)
def get_index(index_dir: str, generation: str) -> IndexData:
    # `generation` is part of the cache key: an updated index is picked up without a restart.
    return load_index(index_dir)


def get_searcher(settings: Settings) -> Searcher:
    generation = current_generation(settings.index_dir).name
    index = get_index(str(settings.index_dir), generation)
    # The configured model; Searcher refuses an index built with another one.
    embedder = get_embedder(str(settings.model_path or ""), settings.model_name, settings.backend)
    return Searcher(index, embedder, settings)


# ---------------------------------------------------------------- rendering helpers
def citation_html(hit: Hit) -> str:
    return html.escape(f"{hit.doc_id} · {hit.source} · characters {hit.start}–{hit.end}")


def render_hit(hit: Hit, article_text: str, weak: bool) -> None:
    badge = '<span class="vb-weak"> · weak match</span>' if weak else ""
    st.html(
        f'<div class="vb-title">{hit.rank}. {html.escape(hit.title)}{badge}</div>'
        f'<div class="vb-cite">{citation_html(hit)}</div>'
        f'<div class="vb-passage">'
        f'{highlight_html(hit.text, hit.start, [(hit.answer.start, hit.answer.end, "answer")])}</div>'
    )
    with st.expander("Show in the article"):
        marks = [(hit.start, hit.end, "passage"), (hit.answer.start, hit.answer.end, "answer")]
        st.html(f'<div class="vb-article">{highlight_html(article_text, 0, marks)}</div>')


def example_questions(index: IndexData, n: int = 3) -> list[str]:
    """Example questions drawn from the index: article titles phrased as questions."""
    titles = [d.title for d in index.documents if d.title]
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
    if not result.answerable:
        st.warning("The articles don't seem to answer this. The nearest passages are shown "
                   "below, marked as weak matches.")
    st.html(f"<p>{len(result.hits)} passages for: <b>{html.escape(result.question)}</b></p>")
    texts = {d.doc_id: d.text for d in searcher.index.documents}
    for hit in result.hits:
        with st.container(border=True):
            render_hit(hit, texts[hit.doc_id], weak=not searcher.supports(hit))
    c1, c2 = st.columns(2)
    c1.download_button("Download as Markdown", result_markdown(result), "answers.md", "text/markdown")
    c2.download_button("Download as JSON", to_json_text(result), "answers.json", "application/json")


def compare_chart(comparison: Comparison) -> alt.LayerChart | alt.Chart:
    rows = [{"article": v.title[:60], "relevance": round(v.score, 3),
             "status": "mentioned" if v.mentioned else "not mentioned"} for v in comparison.articles]
    bars = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("relevance:Q", scale=alt.Scale(domain=[0, 1]), title="relevance"),
        y=alt.Y("article:N", sort=None, title=None),
        color=alt.Color("status:N", scale=alt.Scale(domain=["mentioned", "not mentioned"],
                                                     range=["#2f6fdf", "#bbbbbb"])),
        tooltip=["article:N", "relevance:Q", "status:N"],
    )
    points = [{"article": v.title[:60], "position": round(p.relative, 3), "relevance": round(p.relevance, 3)}
              for v in comparison.articles for p in v.positions]
    strip = alt.Chart(alt.Data(values=points)).mark_circle().encode(
        x=alt.X("position:Q", scale=alt.Scale(domain=[0, 1]), title="position in the article (start → end)"),
        y=alt.Y("article:N", sort=[v.title[:60] for v in comparison.articles], title=None),
        size=alt.Size("relevance:Q", legend=None), opacity=alt.Opacity("relevance:Q", legend=None),
        tooltip=["article:N", "position:Q", "relevance:Q"],
    )
    return alt.vconcat(bars.properties(title="Relevance per article"),
                       strip.properties(title="Where the relevant passages are"))


def compare_view(searcher: Searcher, question: str) -> None:
    try:
        comparison = compare(searcher, question)
    except QuestionError as exc:
        st.warning(str(exc))
        return
    mentioned = sum(v.mentioned for v in comparison.articles)
    st.html(f"<p>{mentioned} of {len(comparison.articles)} articles address: "
            f"<b>{html.escape(comparison.question)}</b></p>")
    if not mentioned:
        st.warning("None of the articles seems to address this question.")
    for note in comparison.conflicts:
        st.warning(note)
    st.altair_chart(compare_chart(comparison), width="stretch")
    for view in comparison.articles:
        with st.container(border=True):
            meta = " · ".join(x for x in (view.source, view.date) if x)
            group = f" · group {view.group}" if view.group is not None else ""
            head = (f'<div class="vb-title">{html.escape(view.title)}</div>'
                    f'<div class="vb-cite">{html.escape(meta + group)}</div>')
            if view.mentioned and view.hit is not None:
                hit = view.hit
                body = highlight_html(hit.text, hit.start, [(hit.answer.start, hit.answer.end, "answer")])
                st.html(f'{head}<div class="vb-cite">{citation_html(hit)}</div>'
                        f'<div class="vb-passage">{body}</div>')
            else:
                st.html(f'{head}<div class="vb-none">Not mentioned.</div>')
            terms = " · the question's key terms are in its quote" if (
                view.mentioned and view.hit is not None and view.hit.answer_coverage >= 0.5) else ""
            st.progress(min(max(view.score, 0.0), 1.0), text=f"relevance {view.score:.2f}{terms}")
    c1, c2 = st.columns(2)
    c1.download_button("Download comparison as Markdown", comparison_markdown(comparison),
                       "comparison.md", "text/markdown")
    c2.download_button("Download comparison as JSON", to_json_text(comparison),
                       "comparison.json", "application/json")


def collection_view(searcher: Searcher, settings: Settings) -> None:
    index = searcher.index
    st.subheader(f"{len(index.documents)} articles")
    uploads = st.file_uploader("Add articles (.txt, .md, .html, .pdf, .docx)", accept_multiple_files=True)
    if uploads and st.button("Add to the index", type="primary"):
        with st.spinner("Indexing…"):
            try:
                report = upload_articles([(u.name, u.getvalue()) for u in uploads], settings,
                                         searcher.embedder)
            except VerbatimError as exc:
                st.error(str(exc))
                return
        for skipped in report.skipped:
            st.warning(f"Skipped {skipped.path}: {skipped.reason}")
        st.success(f"Added {len(report.added)}, updated {len(report.updated)}, "
                   f"unchanged {len(report.unchanged)}.")
    counts = np.bincount(np.asarray(index.chunks)[:, 0], minlength=len(index.documents))
    for row, doc in enumerate(index.documents):
        c1, c2 = st.columns([6, 1])
        c1.html(f'<div class="vb-title">{html.escape(doc.title)}</div><div class="vb-cite">'
                f'{html.escape(" · ".join(x for x in (doc.doc_id, doc.date, doc.source) if x))} · '
                f'{int(counts[row])} passages</div>')
        if c2.button("Remove", key=f"remove-{doc.doc_id}"):
            try:
                remove_documents([doc.doc_id], settings, searcher.embedder)
            except VerbatimError as exc:
                st.error(str(exc))
                return
            st.rerun()


def main() -> None:
    st.set_page_config(page_title="Verbatim", page_icon="📰", layout="wide")
    st.html(CSS)
    try:
        settings = Settings.from_env()
        searcher = get_searcher(settings)
    except IndexNotFoundError:
        st.title("Verbatim")
        st.error(f"There is no index at `{Settings.from_env().index_dir}` yet. Build it from the "
                 f"seed articles with `{build_command(Settings.from_env().index_dir)}` (or run "
                 "`make run`), then reload this page.")
        st.stop()
    except VerbatimError as exc:
        st.title("Verbatim")
        st.error(str(exc))
        st.stop()

    manifest = searcher.index.manifest
    with st.sidebar:
        top_k = st.slider("Passages to show", 1, max(20, settings.top_k), settings.top_k)
        st.subheader("Index")
        st.markdown(
            f"- **Articles:** {manifest.corpus.documents}\n"
            f"- **Passages:** {manifest.corpus.chunks}\n"
            f"- **Model:** `{manifest.model.name}`\n"
            f"- **Built:** {manifest.built_at}"
        )

    st.title("Verbatim")
    st.caption("Ask the articles a question; every answer is a cited passage.")
    params = st.query_params
    if "question" not in st.session_state:
        st.session_state["question"] = params.get("q", "")
    default_view = params.get("view", "answers").capitalize()
    view = st.segmented_control("View", VIEWS, default=default_view if default_view in VIEWS else "Answers",
                                key="view", label_visibility="collapsed") or "Answers"
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
        st.info("Ask anything the articles might answer. **Answers** lists the best passages, "
                "each with its citation and the answering sentence highlighted; **Compare** shows "
                "what each article says. Try one of these:")
        for n, example in enumerate(example_questions(searcher.index)):
            st.button(example, on_click=set_question, args=(example,), key=f"example-{n}")
        return
    if view == "Compare":
        compare_view(searcher, question)
    else:
        answers_view(searcher, question, top_k)


main()
