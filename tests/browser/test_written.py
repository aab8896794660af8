"""The written answer in the real page, from a scripted model server (tests/fake_llm.py): it
streams in, unchecked, with a Stop button; then each sentence is shown checked, a supported one
opening onto its exact span highlighted in its passage, an unsupported one struck with its
reason; Stop keeps the finished sentences, checked."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from browser_support import WAIT_MS, AppServer

try:
    from playwright.sync_api import expect
except ImportError:  # collected anyway: the `chromium` fixture then fails each test, saying why
    expect = None  # type: ignore[assignment]

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NATO = "When did Turkey join NATO?"
SAYS = "Since Turkey joined NATO in 1952"


@pytest.fixture
def written_page(chromium, written_server: AppServer, watched):  # type: ignore[no-untyped-def]
    from browser_support import VIEWPORT

    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    yield page
    context.close()
    assert not watched.errors, watched.errors


def _open(page, server: AppServer, question: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.url}/?{urlencode({'q': question})}")


def test_streams_then_shows_each_sentence_checked(written_page, written_server, fake_llm, shoot) -> None:  # type: ignore[no-untyped-def]
    fake_llm.mode, fake_llm.delay = "slow", 0.12
    fake_llm.reply = "Turkey joined NATO in 1952 [1]. Turkey joined NATO in 1953 [1]."
    page = written_page
    _open(page, written_server, NATO)
    expect(page.get_by_role("button", name="Stop writing")).to_be_visible()
    expect(page.get_by_text("not yet checked")).to_be_visible()
    supported = page.locator("summary", has_text="✓ Turkey joined NATO in 1952.")
    expect(supported).to_be_visible(timeout=WAIT_MS)
    struck = page.locator("summary", has_text="Turkey joined NATO in 1953.")
    expect(struck).to_contain_text("not supported")
    assert struck.locator("del, s").count() == 1  # struck through
    supported.click()
    evidence = page.locator("mark.evidence").first
    expect(evidence).to_be_visible()
    expect(evidence).to_contain_text(SAYS)
    expect(page.locator(".vb-cite", has_text="characters 3488–3609").first).to_be_visible()
    struck.click()
    expect(page.get_by_text("Not supported: the cited passage [1] does not give 1953")).to_be_visible()
    shoot(page, "checked")


def test_stop_keeps_the_finished_sentences_checked(written_page, written_server, fake_llm) -> None:  # type: ignore[no-untyped-def]
    fake_llm.mode, fake_llm.delay = "slow", 0.4
    fake_llm.reply = "Turkey joined NATO in 1952 [1]. It " + " ".join(["then"] * 60) + "."
    page = written_page
    _open(page, written_server, NATO + " ")
    expect(page.get_by_text("Turkey joined NATO in 1952 [1]. It then")).to_be_visible()
    page.get_by_role("button", name="Stop writing").click()
    expect(page.get_by_text("Stopped while writing")).to_be_visible()
    expect(page.locator("summary", has_text="✓ Turkey joined NATO in 1952.")).to_be_visible()
    expect(page.get_by_role("button", name="Stop writing")).to_have_count(0)
