"""Verbatim's browser UI. Thin: reads widgets, calls ``retrieval``, renders.

Run with ``make run`` (or ``streamlit run app.py``).
"""

from __future__ import annotations

import html
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import streamlit as st

from indexer.errors import IndexNotFoundError, QuestionError, VerbatimError
from indexer.settings import Settings
from indexer.store import build_command
from retrieval.highlight import highlight_html
from retrieval.searcher import Searcher
from retrieval.types import Hit

EXAMPLES = ("When did Turkey join NATO?", "Why is Turkey selling drones to Ukraine?",
            "What did the United States suggest Turkey do with its S-400?")

CSS = """<style>
.vb-passage { white-space: pre-wrap; line-height: 1.55; }
.vb-article { white-space: pre-wrap; line-height: 1.55; max-height: 28rem; overflow-y: auto;
              border: 1px solid rgba(128,128,128,.3); border-radius: .4rem; padding: .6rem .8rem; }
.vb-cite { color: #666; font-size: .85rem; font-family: monospace; }
.vb-title { font-weight: 600; font-size: 1.1rem; }
mark.answer { background: #ffe28a; color: inherit; padding: 0 .1rem; border-radius: .15rem; }
mark.passage { background: #e3efff; color: inherit; }
</style>"""


@st.cache_resource(show_spinner="Loading the index and the model…")
def get_searcher(index_dir: str) -> Searcher:
    return Searcher.load(Settings.from_env().with_index(index_dir))


def render_hit(hit: Hit, text: str) -> None:
    citation = f"{hit.doc_id} · {hit.source} · characters {hit.start}–{hit.end}"
    st.html(
        f'<div class="vb-title">{hit.rank}. {html.escape(hit.title)}</div>'
        f'<div class="vb-cite">{html.escape(citation)}</div>'
        f'<div class="vb-passage">{highlight_html(hit.text, hit.start, [(hit.answer.start, hit.answer.end, "answer")])}</div>'
    )
    with st.expander("Show in the article"):
        marks = [(hit.start, hit.end, "passage"), (hit.answer.start, hit.answer.end, "answer")]
        st.html(f'<div class="vb-article">{highlight_html(text, 0, marks)}</div>')


def main() -> None:
    st.set_page_config(page_title="Verbatim", page_icon="📰", layout="wide")
    st.html(CSS)
    try:
        settings = Settings.from_env()
    except VerbatimError as exc:
        st.error(str(exc))
        st.stop()
    st.title("Verbatim")
    st.caption("Ask the articles a question; every answer is a cited passage.")

    try:
        searcher = get_searcher(str(settings.index_dir))
    except IndexNotFoundError:
        st.error(f"There is no index at `{settings.index_dir}` yet. Build it from the seed "
                 f"articles with `{build_command(settings.index_dir)}` (or run `make run`), "
                 "then reload this page.")
        st.stop()
    except VerbatimError as exc:
        st.error(str(exc))
        st.stop()

    manifest = searcher.index.manifest
    with st.sidebar:
        top_k = st.slider("Passages to show", 1, 20, settings.top_k)
        st.subheader("Index")
        st.markdown(
            f"- **Articles:** {manifest['corpus']['documents']}\n"
            f"- **Passages:** {manifest['corpus']['chunks']}\n"
            f"- **Model:** `{manifest['model']['name']}`\n"
            f"- **Built:** {manifest['built_at']}"
        )

    with st.form("ask"):
        question = st.text_input("Question", placeholder=EXAMPLES[0], max_chars=None)
        submitted = st.form_submit_button("Ask")

    if not submitted and not question:
        st.info("Ask something the articles might answer, for example:\n\n"
                + "\n".join(f"- {q}" for q in EXAMPLES))
        return
    try:
        result = searcher.ask(question, top_k)
    except QuestionError as exc:
        st.warning(str(exc))
        return
    texts = {d.doc_id: d.text for d in searcher.index.documents}
    st.html(f"<p>{len(result.hits)} passages for: <b>{html.escape(result.question)}</b></p>")
    for hit in result.hits:
        with st.container(border=True):
            render_hit(hit, texts[hit.doc_id])


main()
