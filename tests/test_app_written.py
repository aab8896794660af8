"""The app's written answer and Compare summaries, headless (AppTest), from a scripted model
server (tests/fake_llm.py) over the seeds plus the injected article (conftest ``corpus``)."""

from __future__ import annotations


import pytest
from streamlit.testing.v1 import AppTest

from fake_llm import FakeLLM
from support import REPO_ROOT, free_port

pytestmark = pytest.mark.slow

APP = str(REPO_ROOT / "app.py")
NATO = "When did Turkey join NATO?"


@pytest.fixture(scope="module")
def llm():  # type: ignore[no-untyped-def]
    with FakeLLM() as server:
        yield server


def _app(monkeypatch: pytest.MonkeyPatch, corpus, url: str, view: str = "answers") -> AppTest:  # type: ignore[no-untyped-def]
    for name in ("VERBATIM_STORE", "VERBATIM_LLM_API_KEY", "VERBATIM_LLM_TIMEOUT", "VERBATIM_LLM_MAX_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VERBATIM_INDEX_DIR", str(corpus.index_dir))
    monkeypatch.setenv("VERBATIM_LLM_URL", url)
    monkeypatch.setenv("VERBATIM_LLM_MODEL", "fake-model")
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["view"] = view
    return at


def _ask(at: AppTest, question: str, button: str = "Ask") -> AppTest:
    at.run()
    at.text_input(key="question").input(question)
    [b for b in at.button if b.label == button][0].click()
    return at.run()


def test_the_written_answer_is_shown_sentence_by_sentence(monkeypatch, corpus, llm) -> None:  # type: ignore[no-untyped-def]
    llm.mode, llm.reply = "stream", "Turkey joined NATO in 1952 [1]. It joined in 1953 [1]. <b>Hi</b> [1]."
    at = _ask(_app(monkeypatch, corpus, llm.url), NATO)
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert any(label.startswith("✓ Turkey joined NATO in 1952") for label in labels), labels
    assert any(label.startswith("✗ ~~It joined in 1953") and "not supported" in label for label in labels), labels
    assert not any("<b>" in label for label in labels)  # model output is shown as text, never as markup
    assert any("\\<b\\>Hi\\</b\\>" in label for label in labels), labels
    written = [h.proto.body for h in at.get("html") if "Written answer" in h.proto.body]
    assert written and "1 of 2 sentences supported" in written[0]
    requests = len(llm.requests)
    at.run()  # a rerun shows the kept answer: the model is not asked again
    assert len(llm.requests) == requests


def test_not_asked_when_the_articles_do_not_answer(monkeypatch, corpus, llm) -> None:  # type: ignore[no-untyped-def]
    llm.requests.clear()
    at = _ask(_app(monkeypatch, corpus, llm.url), "What is the recipe for Belgian waffles?")
    assert not at.exception
    assert any("was not asked" in c.value for c in at.caption)
    assert llm.requests == []


def test_a_server_that_is_down_is_a_warning_not_a_traceback(monkeypatch, corpus) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    at = _ask(_app(monkeypatch, corpus, f"http://127.0.0.1:{port}/v1"), NATO)
    assert not at.exception
    assert any("cannot be reached" in w.value and "stands on its own" in w.value for w in at.warning)
    assert at.expander  # the passages are still there ("Show in the article")


def test_with_the_toggle_off_a_button_asks_for_it(monkeypatch, corpus, llm) -> None:  # type: ignore[no-untyped-def]
    llm.requests.clear()
    llm.mode, llm.reply = "stream", "Turkey joined NATO in 1952 [1]."
    at = _app(monkeypatch, corpus, llm.url)
    at.run()
    at.toggle(key="write_answers").set_value(False)
    at = _ask(at, NATO)
    assert llm.requests == []
    [write] = [b for b in at.button if b.label == "Write an answer with fake-model"]
    write.click()
    at.run()
    assert len(llm.requests) == 1
    assert any(e.label.startswith("✓ Turkey joined NATO in 1952") for e in at.expander)


def test_compare_summaries_are_checked(monkeypatch, corpus, llm) -> None:  # type: ignore[no-untyped-def]
    llm.mode, llm.reply = "stream", "Turkey joined NATO in 1952 [1]."
    at = _ask(_app(monkeypatch, corpus, llm.url, "compare"), NATO, "Compare")
    assert not at.exception
    [summarise] = [b for b in at.button if b.label.startswith("Summarise each article")]
    summarise.click()
    at.run()
    assert not at.exception
    summaries = [h.proto.body for h in at.get("html") if "Summary · fake-model" in h.proto.body]
    assert summaries, "no summary shown"
    assert all("Turkey joined NATO in 1952." in b for b in summaries)
    assert all(("· checked" in b) != ("not supported" in b) for b in summaries)  # each shows its verdict
    assert llm.requests and "exactly one short sentence" in llm.requests[-1]["messages"][0]["content"]
