"""The Streamlit app, headless (AppTest), with the real model (slow).

st.cache_resource keeps loaded indexes per directory across AppTest runs in this process, so
each test that needs a particular index uses its own directory.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from indexer.build import build_index, plan
from indexer.documents import load_documents
from indexer.settings import Settings
from indexer.stores.local import LocalStore
from indexer.update import add_documents, remove_documents
from support import REPO_ROOT, SYNTHETIC_ARTICLES, write_articles

pytestmark = pytest.mark.slow

APP = str(REPO_ROOT / "app.py")
MARKUP = "<script>alert(1)</script><b>bold</b>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;"


def _app(monkeypatch: pytest.MonkeyPatch, index_dir: Path) -> AppTest:
    monkeypatch.setenv("VERBATIM_INDEX_DIR", str(index_dir))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    return at


def _ask(at: AppTest, question: str) -> AppTest:
    at.text_input(key="question").input(question)
    (submit,) = [b for b in at.button if b.label == "Ask"]
    submit.click()
    return at.run()


def _html(at: AppTest) -> list[str]:
    return [element.value for element in at.html]


def _messages(elements) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.value for e in elements]


def _sidebar(at: AppTest) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown)


def _collection(at: AppTest) -> AppTest:
    at.segmented_control(key="view").set_value("Collection")
    return at.run()


def _cards(at: AppTest) -> list[str]:
    """The Collection view's article cards, in page order."""
    return [b for b in _html(at) if 'class="vb-file"' in b]


def _check_collection(at: AppTest, settings: Settings) -> list[str]:
    """The Collection view lists every stored article once, in order, with its title, date,
    passage count, file and id; returns the listed ids."""
    assert not at.exception, _messages(at.exception)
    store = LocalStore(settings.index_dir)
    infos = store.document_infos()
    assert f"{len(infos)} articles" in _messages(at.subheader)
    cards = _cards(at)
    assert len(cards) == len(infos)
    for info, card in zip(infos, cards):
        # The count shown is the number of passages the article is cut into.
        document = store.document(info.doc_id)
        assert document is not None and info.passages == len(plan(document, settings).passages) > 0
        assert f"{info.passages} passages" in card
        assert html.escape(info.title) in card and html.escape(info.source) in card and info.doc_id in card
    assert {b.key for b in at.button if (b.key or "").startswith("remove-")} == {f"remove-{d.doc_id}" for d in infos}
    return [d.doc_id for d in infos]


def test_initial_page_shows_the_empty_state(monkeypatch: pytest.MonkeyPatch, seeds_index: Settings) -> None:
    at = _app(monkeypatch, seeds_index.index_dir)
    assert not at.exception, _messages(at.exception)
    assert not at.error
    assert at.info, "an info box invites a question"
    assert at.text_input(key="question").value == ""
    assert not any('class="vb-passage"' in body for body in _html(at)), "no results before a question"


def test_question_shows_the_cited_answer(monkeypatch: pytest.MonkeyPatch, seeds_index: Settings) -> None:
    at = _ask(_app(monkeypatch, seeds_index.index_dir), "When did Turkey join NATO?")
    assert not at.exception, _messages(at.exception)
    bodies = _html(at)
    passages = [b for b in bodies if 'class="vb-passage"' in b]
    assert passages, "at least one passage is rendered"
    first = passages[0]
    assert '<mark class="answer">' in first and "1952" in first
    answer = first.split('<mark class="answer">', 1)[1].split("</mark>", 1)[0]
    assert "1952" in answer, "the highlighted sentence is the one that answers"
    assert any("004_6a67110f8947381e" in b and "seeds/004_6a67110f8947381e.txt" in b for b in bodies)


def test_missing_index_shows_the_build_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-index"
    empty.mkdir()
    at = _app(monkeypatch, empty)
    assert not at.exception, _messages(at.exception)
    errors = _messages(at.error)
    assert len(errors) == 1
    assert "python -m indexer build" in errors[0] and str(empty) in errors[0]


def test_article_markup_is_escaped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, real_embedder) -> None:  # type: ignore[no-untyped-def]
    folder = write_articles(tmp_path / "articles", {
        "museum.txt": (
            f"Museum exhibit shows {MARKUP} on a wall\n\n"
            "The computing museum opened an exhibit about web security on Friday. "
            f"Visitors saw the string {MARKUP} printed in large letters on the wall. "
            "The curator said the exhibit explains how websites get hacked.\n"
        ),
        "harvest.txt": (
            "Apple harvest starts early\n\nFarmers in the valley began picking apples in August. "
            "The warm summer made the fruit ripen two weeks early.\n"
        ),
    })
    docs, skipped = load_documents([folder])
    assert not skipped
    settings = Settings(index_dir=tmp_path / "index")
    build_index(docs, settings, real_embedder)

    at = _ask(_app(monkeypatch, settings.index_dir),
              "What string did visitors see printed on the wall of the computing museum?")
    assert not at.exception, _messages(at.exception)
    bodies = _html(at)
    rendered = "\n".join(bodies)
    assert ESCAPED in rendered, "the article's markup is shown as text"
    # The only script on the page is the app's own (it scrolls article boxes to their passage).
    assert rendered.lower().count("<script") == rendered.count('<script id="vb-scroll-script">')
    assert "<b>bold</b>" not in rendered
    # Title, passage and full article view all escape it.
    assert any('class="vb-title"' in b and ESCAPED in b for b in bodies)
    assert any('class="vb-article"' in b and ESCAPED in b for b in bodies)


def test_blank_question_warns(monkeypatch: pytest.MonkeyPatch, seeds_index: Settings) -> None:
    at = _ask(_app(monkeypatch, seeds_index.index_dir), "   ")
    assert not at.exception, _messages(at.exception)
    assert any("empty" in w.lower() for w in _messages(at.warning))
    assert not any('class="vb-passage"' in body for body in _html(at))


def test_empty_submission_is_harmless(monkeypatch: pytest.MonkeyPatch, seeds_index: Settings) -> None:
    # Submitting an empty box cannot be told apart from the first visit: the app shows the
    # empty state again (a warning only for a question of blanks, above).
    at = _app(monkeypatch, seeds_index.index_dir)
    (submit,) = [b for b in at.button if b.label == "Ask"]
    submit.click()
    at.run()
    assert not at.exception, _messages(at.exception)
    assert not at.error
    assert at.info, "the empty state is shown again"
    assert not any('class="vb-passage"' in body for body in _html(at))


def test_collection_lists_every_article_with_its_passage_count(monkeypatch: pytest.MonkeyPatch,
                                                               seeds_index: Settings) -> None:
    at = _collection(_app(monkeypatch, seeds_index.index_dir))
    listed = _check_collection(at, seeds_index)
    assert listed == sorted(p.stem for p in (REPO_ROOT / "seeds").glob("*.txt"))
    info = LocalStore(seeds_index.index_dir).info
    assert f"**Articles:** {info.documents}" in _sidebar(at) and f"**Passages:** {info.passages}" in _sidebar(at)


def test_an_index_updated_between_runs_is_picked_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    real_embedder) -> None:  # type: ignore[no-untyped-def]
    """Articles added or removed outside the app (the command line) show at the next run,
    without a restart: the app keeps one open store per ``store.version()``."""
    articles = {k: v for k, v in SYNTHETIC_ARTICLES.items() if k != "volcano.txt"}
    docs, skipped = load_documents([write_articles(tmp_path / "articles", articles)])
    assert not skipped
    settings = Settings(index_dir=tmp_path / "index")
    build_index(docs, settings, real_embedder)
    first = LocalStore(settings.index_dir).version()

    at = _ask(_app(monkeypatch, settings.index_dir), "Which town did the lava flow toward in Iceland?")
    assert not at.exception, _messages(at.exception)
    assert "**Articles:** 2" in _sidebar(at)
    assert not any("volcano" in b for b in _html(at)), "no volcano article yet"

    volcano, skipped = load_documents([write_articles(tmp_path / "more", {"volcano.txt": SYNTHETIC_ARTICLES["volcano.txt"]})])
    assert not skipped
    report = add_documents(volcano, settings, real_embedder)
    assert report.added == ("volcano",)
    second = LocalStore(settings.index_dir).version()
    assert second != first

    at.run()  # the same session asks its question again
    assert not at.exception, _messages(at.exception)
    assert "**Articles:** 3" in _sidebar(at)
    passages = [b for b in _html(at) if 'class="vb-passage"' in b]
    assert passages and "Grindavik" in passages[0].split('<mark class="answer">', 1)[1].split("</mark>", 1)[0]
    assert any(str(tmp_path / "more" / "volcano.txt") in b for b in _html(at))

    at = _collection(at)
    assert _check_collection(at, settings) == ["chess", "penguins", "volcano"]

    remove_documents(["chess"], settings)
    assert LocalStore(settings.index_dir).version() not in (first, second)
    at.run()
    assert _check_collection(at, settings) == ["penguins", "volcano"]
    assert "**Articles:** 2" in _sidebar(at)


def test_a_damaged_segment_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        real_embedder) -> None:  # type: ignore[no-untyped-def]
    """The manifest reads fine but a segment's file is damaged: the page says what to run
    (repair or rebuild) instead of failing later, in a view, with a traceback."""
    folder = write_articles(tmp_path / "articles", SYNTHETIC_ARTICLES)
    docs, _ = load_documents([folder])
    settings = Settings(index_dir=tmp_path / "index")
    build_index(docs, settings, real_embedder)
    (segment,) = [p for p in settings.index_dir.iterdir() if p.name.startswith("seg-")]
    (segment / "documents.jsonl").write_text("damaged\n", encoding="utf-8")
    at = _app(monkeypatch, settings.index_dir)
    assert not at.exception, _messages(at.exception)
    (error,) = _messages(at.error)
    assert "python -m indexer" in error and str(settings.index_dir) in error, error


def test_no_bare_expression_for_streamlit_magic_to_print() -> None:
    """Streamlit's "magic" writes every bare expression statement of app.py to the page
    (function calls excepted): a stray `store.info` once printed the manifest above the title."""
    import ast

    tree = ast.parse((REPO_ROOT / "app.py").read_text(encoding="utf-8"))
    bare = [f"line {node.lineno}: {ast.unparse(node.value)}" for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call)
            and not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))]
    assert bare == []
