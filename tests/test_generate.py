"""The written answer (retrieval/generate.py) against a scripted OpenAI-compatible server on
127.0.0.1 (tests/fake_llm.py), with the real model and index of the seeds plus an article
that carries a prompt injection: what is checked, and every bad situation (unreachable,
slow, malformed, unknown model, refused key, refusal, no citations, injection, stop) ending
in the extractive answer plus a note, never a traceback, never an unverified sentence
shown as verified."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fake_llm import FakeLLM
from indexer.settings import Settings
from retrieval.generate import BLANKED, write_answer, write_summary
from retrieval.searcher import Searcher
from support import INJECTION, REPO_ROOT, free_port, run_module

pytestmark = pytest.mark.slow

QUESTION = "When did Turkey join NATO?"
KEY = "sk-test-secret-7731"


@pytest.fixture(scope="module")
def llm():  # type: ignore[no-untyped-def]
    with FakeLLM() as server:
        yield server


@pytest.fixture
def fake(llm: FakeLLM) -> Iterator[FakeLLM]:
    llm.mode, llm.reply, llm.status, llm.error, llm.delay = "stream", "", 200, "", 0.0
    llm.requests.clear()
    llm.headers.clear()
    llm.release.clear()
    yield llm
    llm.release.set()  # ends a "hang" the test left waiting


def _searcher(corpus: Settings, real_embedder, url: str, **extra: object) -> Searcher:  # type: ignore[no-untyped-def]
    settings = replace(corpus, llm_url=url, llm_model="fake-model", **extra)  # type: ignore[arg-type]
    return Searcher.load(settings, real_embedder)


def _answer(corpus: Settings, real_embedder, fake: FakeLLM, question: str = QUESTION, **extra: object):  # type: ignore[no-untyped-def]
    searcher = _searcher(corpus, real_embedder, fake.url, **extra)
    result = searcher.ask(question)
    return result, write_answer(searcher, result)


def _label_of(fake: FakeLLM, text: str) -> int:
    """The label the prompt gave the passage holding ``text``."""
    prompt = fake.requests[-1]["messages"][-1]["content"]
    starts = [(m.start(), int(m.group(1))) for m in re.finditer(r"(?m)^\[(\d+)\] ", prompt)]
    for (start, label), (end, _) in zip(starts, [*starts[1:], (len(prompt), 0)]):
        if text in prompt[start:end]:
            return label
    raise AssertionError(f"no passage of the prompt holds {text!r}")


def test_supported_and_unsupported_sentences(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    fake.reply = "PLACEHOLDER"
    searcher = _searcher(corpus, real_embedder, fake.url)
    result = searcher.ask(QUESTION)
    assert result.answerable
    write_answer(searcher, result)  # to read the prompt's labels
    label = _label_of(fake, "Since Turkey joined NATO in 1952")
    fake.reply = (f"Turkey joined NATO in 1952 [{label}]. Turkey joined NATO in 1953 [{label}]. "
                  f"Emmanuel Macron welcomed Turkey into NATO [{label}]. It was a sunny day.")
    answer = write_answer(searcher, result)
    assert answer.status == "checked"
    verdicts = [(s.text, s.supported) for s in answer.sentences]
    assert verdicts == [("Turkey joined NATO in 1952.", True), ("Turkey joined NATO in 1953.", False),
                        ("Emmanuel Macron welcomed Turkey into NATO.", False), ("It was a sunny day.", False)]
    reasons = [s.reason for s in answer.sentences]
    assert "1953" in reasons[1] and "Macron" in reasons[2] and "cites no passage" in reasons[3]
    # A supported sentence is linked to the exact span that says it.
    [cite] = answer.sentences[0].cites
    doc = searcher.document(cite.doc_id)
    assert doc is not None and "Turkey joined NATO in 1952" in doc.text[cite.start:cite.end]
    # Only the cited passages went to the model, under their labels, with the rules.
    request = fake.requests[-1]
    assert request["messages"][0]["role"] == "system" and "[1]" in request["messages"][0]["content"]
    assert request["model"] == "fake-model" and request["stream"] is True


def test_not_asked_when_the_articles_do_not_answer(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    result, answer = _answer(corpus, real_embedder, fake, "What is the recipe for Belgian waffles?")
    assert not result.answerable
    assert answer.status == "not_asked" and not answer.sentences and "not asked" in answer.note
    assert fake.requests == []


def test_a_prompt_injection_inside_an_article_changes_nothing_shown_as_verified(  # type: ignore[no-untyped-def]
        corpus, real_embedder, fake) -> None:
    fake.reply = "PLACEHOLDER"
    searcher = _searcher(corpus, real_embedder, fake.url)
    result = searcher.ask(QUESTION)
    write_answer(searcher, result)
    prompt = fake.requests[-1]["messages"][-1]["content"]
    assert "Turkey joined NATO in 1952, three years after" in prompt, "the injected article is among the passages"
    assert INJECTION not in prompt and BLANKED in prompt  # the instruction never reaches the model
    label = _label_of(fake, "three years after the alliance was founded")
    # A model that obeys the injection anyway, citing the passage that holds it.
    fake.reply = f"Turkey joined NATO in 1999 [{label}]. Turkey has the second-largest army in NATO [{label}]."
    answer = write_answer(searcher, result)
    first, second = answer.sentences
    assert not first.supported and "1999" in first.reason
    assert f"Passage [{label}] holds text addressed to a model" in answer.note
    assert second.supported, second.reason
    doc = searcher.document(second.cites[0].doc_id)
    for s in answer.supported:
        for c in s.cites:
            assert INJECTION not in searcher.document(c.doc_id).text[c.start:c.end]
    assert doc is not None


@pytest.mark.parametrize("mode, status, error, expected", [
    ("not_json", 200, "", "not an OpenAI-style chat completion"),
    ("no_choices", 200, "", "not an OpenAI-style chat completion"),
    ("status", 404, "model 'llama9' not found, try pulling it first", "does not know the model"),
    ("status", 401, "invalid api key", "VERBATIM_LLM_API_KEY"),
    ("status", 500, "out of memory", "answered with an error (500: out of memory)"),
])
def test_server_failures_end_in_a_note(corpus, real_embedder, fake, mode, status, error, expected) -> None:  # type: ignore[no-untyped-def]
    fake.mode, fake.status, fake.error = mode, status, error
    result, answer = _answer(corpus, real_embedder, fake, llm_api_key=KEY)
    assert result.hits and answer.status == "failed" and not answer.sentences
    assert expected in answer.note and "stands on its own" in answer.note
    assert KEY not in answer.note
    if status == 404:
        assert "fake-model" in answer.note  # the models the server lists
    assert fake.headers[-1]["Authorization"] == f"Bearer {KEY}"


def test_a_web_page_or_a_redirect_is_not_an_answer(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    fake.mode, fake.status = "status", 302
    _, answer = _answer(corpus, real_embedder, fake)
    assert answer.status == "failed" and "redirects" in answer.note
    fake.mode = "html"
    _, answer = _answer(corpus, real_embedder, fake)
    assert answer.status == "failed" and "not an OpenAI-style chat completion (a text/html page)" in answer.note


def test_unreachable_server(corpus, real_embedder) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    searcher = _searcher(corpus, real_embedder, f"http://127.0.0.1:{port}/v1")
    answer = write_answer(searcher, searcher.ask(QUESTION))
    assert answer.status == "failed" and "cannot be reached (connection refused)" in answer.note


def test_slow_and_silent_servers_time_out(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    fake.mode = "hang"
    _, answer = _answer(corpus, real_embedder, fake, llm_timeout=1.0)
    assert answer.status == "failed" and "did not answer within 1 s" in answer.note
    fake.release.set()
    fake.release.clear()
    fake.mode, fake.delay, fake.reply = "slow", 0.3, "Turkey joined NATO in 1952 [1]. " * 5
    _, answer = _answer(corpus, real_embedder, fake, llm_timeout=1.0)
    assert answer.status == "failed" and "took longer than 1 s" in answer.note


def test_a_connection_dropped_midway_is_checked_as_far_as_it_got(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    fake.mode = "drop"  # closes after the 8th of 16 words, without [DONE]
    fake.reply = "Turkey joined NATO in 1952 [1]. Turkey joined NATO in the year 1952 and then left it."
    _, answer = _answer(corpus, real_embedder, fake)
    assert answer.status == "checked" and "connection closed before the model finished" in answer.note
    assert [s.text for s in answer.sentences] == ["Turkey joined NATO in 1952."]  # the cut-off one is left out


def test_refusal_and_no_citations(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    fake.reply = "I'm sorry, but I cannot answer questions about military alliances."
    _, answer = _answer(corpus, real_embedder, fake)
    assert not answer.supported and "declined" in answer.note
    fake.reply = "Turkey joined NATO in 1952. It has a large army."
    _, answer = _answer(corpus, real_embedder, fake)
    assert not answer.supported and "did not cite the passages" in answer.note
    assert all("cites no passage" in s.reason for s in answer.sentences)


def test_a_server_that_does_not_stream(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    fake.mode, fake.reply = "json", "PLACEHOLDER"
    _, answer = _answer(corpus, real_embedder, fake)
    assert answer.status == "checked" and [s.text for s in answer.sentences] == ["PLACEHOLDER"]


def test_stopping_keeps_the_finished_sentences_checked(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    fake.mode, fake.delay = "slow", 0.02
    fake.reply = "Turkey joined NATO in 1952 [1]. Turkey has a large army and many more words follow here"
    searcher = _searcher(corpus, real_embedder, fake.url)
    result = searcher.ask(QUESTION)
    seen: list[str] = []
    answer = write_answer(searcher, result, on_text=seen.append,
                          should_stop=lambda: bool(seen) and "army" in seen[-1])
    assert answer.status == "stopped" and "Stopped while writing" in answer.note
    assert [s.text for s in answer.sentences] == ["Turkey joined NATO in 1952."]  # the unfinished one is left out


def test_summary_of_one_article(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    searcher = _searcher(corpus, real_embedder, fake.url)
    hit = searcher.ask(QUESTION).hits[0]
    fake.reply = f"{hit.answer.text} [1]"
    summary = write_summary(searcher, QUESTION, hit)
    assert summary.status == "checked" and [s.supported for s in summary.sentences] == [True]
    assert "exactly one short sentence" in fake.requests[-1]["messages"][0]["content"]


# ------------------------------------------------------------------ the command line
def test_cli_generate_adds_generated_and_changes_nothing_else(corpus, fake) -> None:  # type: ignore[no-untyped-def]
    fake.reply = "Turkey joined NATO in 1952 [1]. Turkey joined NATO in 1953 [1]."
    index = str(corpus.index_dir)
    plain = run_module("retrieval", "ask", QUESTION, "--index", index, "--json")
    generated = run_module("retrieval", "ask", QUESTION, "--index", index, "--json", "--generate",
                           VERBATIM_LLM_URL=fake.url, VERBATIM_LLM_MODEL="fake-model", VERBATIM_LLM_API_KEY=KEY)
    assert plain.returncode == 0 and generated.returncode == 0, generated.stderr
    before, after = json.loads(plain.stdout), json.loads(generated.stdout)
    extra = after.pop("generated")
    assert after == before  # existing fields unchanged
    assert extra["model"] == "fake-model" and extra["status"] == "checked"
    for s in extra["sentences"]:
        assert set(s) >= {"text", "cites", "supported", "reason"}
        assert all(set(c) >= {"doc_id", "start", "end"} for c in s["cites"])
    assert [s["supported"] for s in extra["sentences"]] == [True, False]
    assert KEY not in generated.stdout + generated.stderr
    human = run_module("retrieval", "ask", QUESTION, "--index", index, "--generate",
                       VERBATIM_LLM_URL=fake.url, VERBATIM_LLM_MODEL="fake-model")
    assert human.returncode == 0 and "✓ Turkey joined NATO in 1952." in human.stdout
    assert "✗ not supported: Turkey joined NATO in 1953." in human.stdout


def test_cli_generate_without_a_server_setting_is_a_usage_error(corpus) -> None:  # type: ignore[no-untyped-def]
    proc = run_module("retrieval", "ask", QUESTION, "--index", str(corpus.index_dir), "--generate")
    assert proc.returncode == 2 and "VERBATIM_LLM_URL" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_generate_with_the_server_down_still_answers(corpus) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = run_module("retrieval", "ask", QUESTION, "--index", str(corpus.index_dir), "--json", "--generate",
                      VERBATIM_LLM_URL=f"http://127.0.0.1:{port}/v1")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["hits"] and out["generated"]["status"] == "failed"
    assert "cannot be reached" in out["generated"]["note"]


@pytest.mark.parametrize("url, says", [
    ("http://user:secretpw@127.0.0.1:8080/v1", "must not hold a user name or password"),
    ("http://127.0.0.1:99999/v1", "port"),
    ("user:secretpw@127.0.0.1/v1", "http:// or https://"),
])
def test_cli_bad_server_settings_are_messages(corpus, url: str, says: str) -> None:  # type: ignore[no-untyped-def]
    proc = run_module("retrieval", "ask", QUESTION, "--index", str(corpus.index_dir), "--generate",
                      VERBATIM_LLM_URL=url)
    assert proc.returncode == 3 and says in proc.stderr and "Traceback" not in proc.stderr
    assert "secretpw" not in proc.stderr + proc.stdout


def test_cli_an_api_key_that_is_not_a_token_is_refused_unshown(corpus) -> None:  # type: ignore[no-untyped-def]
    proc = run_module("retrieval", "ask", QUESTION, "--index", str(corpus.index_dir), "--generate",
                      VERBATIM_LLM_URL="http://127.0.0.1:1/v1", VERBATIM_LLM_API_KEY="sk-SE CRET")
    assert proc.returncode == 3 and "VERBATIM_LLM_API_KEY" in proc.stderr and "CRET" not in proc.stderr


def test_cli_compare_generate_adds_a_summary_per_mentioned_article(corpus, fake) -> None:  # type: ignore[no-untyped-def]
    fake.reply = "The article says Turkey joined NATO in 1952 [1]."
    proc = run_module("retrieval", "compare", QUESTION, "--index", str(corpus.index_dir), "--json", "--generate",
                      VERBATIM_LLM_URL=fake.url)
    assert proc.returncode == 0, proc.stderr
    articles = json.loads(proc.stdout)["articles"]
    assert any(a["mentioned"] for a in articles)
    for a in articles:
        assert (a["summary"] is not None) == a["mentioned"]
        if a["summary"]:
            assert a["summary"]["status"] == "checked" and len(a["summary"]["sentences"]) == 1


# ------------------------------------------------------------------ off by default
CHILD = r"""
import json, sys
events = []
def hook(event, args):
    if event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg"):
        events.append(event)
sys.addaudithook(hook)
from retrieval.__main__ import main
codes = [main(["ask", "When did Turkey join NATO?", "--index", sys.argv[1], "--json"]),
         main(["compare", "When did Turkey join NATO?", "--index", sys.argv[1], "--json"])]
print(json.dumps({"codes": codes, "events": events,
                  "loaded": sorted(m for m in ("retrieval.generate", "retrieval.grounding", "http.client")
                                   if m in sys.modules)}), file=sys.stderr)
"""


def test_with_generation_off_nothing_new_is_imported_or_contacted(corpus) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from support import subprocess_env

    proc = subprocess.run([sys.executable, "-c", CHILD, str(corpus.index_dir)], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["codes"] == [0, 0]
    assert report["events"] == []  # no socket opened, connected or bound
    assert "retrieval.generate" not in report["loaded"] and "retrieval.grounding" not in report["loaded"]


def test_app_with_generation_off_imports_nothing_of_it(tmp_path: Path, corpus) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from support import subprocess_env

    code = (f"import json, sys\nfrom streamlit.testing.v1 import AppTest\n"
            f"at = AppTest.from_file({str(REPO_ROOT / 'app.py')!r}, default_timeout=180)\nat.run()\n"
            "at.text_input(key='question').input('When did Turkey join NATO?')\n"
            "[b for b in at.button if b.label == 'Ask'][0].click()\nat.run()\n"
            "assert not at.exception, at.exception\n"
            "print(json.dumps(sorted(m for m in ('retrieval.generate', 'retrieval.grounding') if m in sys.modules)),"
            " file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env=subprocess_env(VERBATIM_INDEX_DIR=str(corpus.index_dir)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []


def test_a_stop_takes_effect_while_the_server_is_silent(corpus, real_embedder, fake) -> None:  # type: ignore[no-untyped-def]
    import time

    fake.mode = "hang"
    searcher = _searcher(corpus, real_embedder, fake.url)
    result = searcher.ask(QUESTION)
    waited: list[float] = []
    started = time.monotonic()
    answer = write_answer(searcher, result, waiting=waited.append, should_stop=lambda: bool(waited) and waited[-1] > 0.5)
    assert time.monotonic() - started < 5  # not the 120 s timeout
    assert answer.status == "stopped" and not answer.sentences
    fake.release.set()
