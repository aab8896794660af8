"""The real app in a real browser: `streamlit run app.py` driven by Playwright in Chromium.

What AppTest cannot see: that Enter in the form submits, that the segmented control switches
views, that a shared link (?q=...&view=...) reopens the same answer in a fresh browser, that
article markup is shown as text and never runs, that the page works from the keyboard alone,
and what the pages look like (full-page screenshots under tests/artifacts/, and the README's
screenshots docs/screenshots/answers.png and compare.png).

Streamlit reruns asynchronously: every wait is an auto-waiting locator or ``expect`` with a
generous timeout, never a sleep.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from browser_support import (
    ARTIFACTS, MARKUP_BOLD, MARKUP_IMG, MARKUP_SCRIPT, MARKUP_TITLE, SCREENSHOTS, VIEWPORT, WAIT_MS,
    AppServer,
    Watched,
)

try:
    from playwright.sync_api import Page, expect
except ImportError:  # collected anyway: the `chromium` fixture then fails each test, saying why
    Page = object  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NATO = "When did Turkey join NATO?"
MONTREUX = "What do the articles say about the Montreux Convention?"
MUSEUM = "What string did visitors see painted on the entrance wall of the Museum of Web Security?"
S400 = "Why did Turkey buy the S-400 missile system from Russia?"


# ---------------------------------------------------------------- helpers
def question_box(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_label("Question", exact=True)


def open_app(page: Page, server: AppServer, **params: str) -> None:
    """Open the app (with query params) and wait until the question box is there."""
    page.goto(server.url + "/" + (f"?{urlencode(params)}" if params else ""))
    expect(question_box(page)).to_be_visible(timeout=WAIT_MS)


def settled(page: Page) -> None:
    """Wait until the script run is over and every lazily loaded element has rendered."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=WAIT_MS)


def ask(page: Page, question: str) -> None:
    """Type the question into the box (key by key) and press Enter."""
    box = question_box(page)
    box.click()
    box.press_sequentially(question)
    box.press("Enter")


def expect_nato_answer(page: Page) -> None:
    """The cited answer to NATO: passages, 1952 highlighted, a citation with character offsets."""
    expect(page.locator("mark.answer", has_text="1952").first).to_be_visible(timeout=WAIT_MS)
    settled(page)
    expect(page.locator(".vb-passage").first).to_be_visible()
    expect(page.locator(".vb-file", has_text=re.compile(r"characters \d+–\d+")).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d+ passages for:"))).to_be_visible()


def expect_compare(page: Page, server: AppServer, question: str) -> None:
    """One container per indexed article, each title exactly once, some "Not mentioned."."""
    summary = page.get_by_text(re.compile(rf"^\d+ of {len(server.index.titles)} articles address:"))
    expect(summary).to_be_visible(timeout=WAIT_MS)
    settled(page)  # no stale element of an earlier run is left to count
    expect(summary).to_contain_text(question)
    titles = page.locator(".vb-title")
    expect(titles).to_have_count(len(server.index.titles))
    shown = titles.all_inner_texts()
    for title in server.index.titles:
        assert shown.count(title) == 1, f"{title!r} shown {shown.count(title)} times in {shown}"
    expect(page.locator(".vb-none", has_text="Not mentioned: ").first).to_be_visible()


def readme_screenshot(page: Page, name: str) -> None:
    """The README's screenshot: the 1280x900 viewport, after everything has rendered."""
    settled(page)
    page.evaluate("""() => {
        document.activeElement?.blur();  // no focus ring or "Press Enter" hint in the picture
        document.querySelector('[data-testid="stMain"]')?.scrollTo(0, 0);
    }""")
    page.mouse.move(VIEWPORT["width"] - 10, VIEWPORT["height"] - 10)  # hovers nothing
    # The README's pictures are committed: refresh them only on request, so that a test
    # run leaves the work tree clean (VERBATIM_README_SCREENSHOTS=1 make test).
    if os.environ.get("VERBATIM_README_SCREENSHOTS") == "1":
        path = SCREENSHOTS / f"{name}.png"
    else:
        path = ARTIFACTS / f"readme-{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=False)


# ---------------------------------------------------------------- tests
def test_question_typed_and_entered_shows_cited_answer(page: Page, app_server: AppServer, shoot,
                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    open_app(page, app_server)
    ask(page, NATO)
    expect_nato_answer(page)
    expect(page).to_have_url(re.compile(r"[?&]q=When\+did\+Turkey\+join\+NATO%3F"))
    readme_screenshot(page, "answers")
    shoot(page, "answers")

    # The first passage's "Show in the article" expander shows the whole article, passage and
    # answer marked.
    page.get_by_text("Show in the article").first.click()
    article = page.locator(".vb-article").first
    expect(article).to_be_visible()
    expect(article.locator("mark.answer", has_text="1952")).to_be_visible()
    expect(article.locator("mark.passage").first).to_be_visible()
    shoot(page, "article-expanded")

    # The Markdown download carries the question, the answer and numbered citations.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as Markdown").click()
    download = download_info.value
    assert download.suggested_filename == "answers.md"
    saved = tmp_path / "answers.md"
    download.save_as(saved)
    markdown = saved.read_text(encoding="utf-8")
    assert markdown.startswith(f"# {NATO}") and "1952" in markdown and "## Citations" in markdown


def test_compare_lists_every_article_once(page: Page, app_server: AppServer, shoot) -> None:  # type: ignore[no-untyped-def]
    open_app(page, app_server)
    page.get_by_role("radio", name="Compare", exact=True).click()
    expect(page.get_by_role("radio", name="Compare", exact=True)).to_be_checked(timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Compare", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(page).to_have_url(re.compile(r"[?&]view=compare"))
    ask(page, MONTREUX)
    expect_compare(page, app_server, MONTREUX)
    expect(page).to_have_url(re.compile(r"[?&]q=What\+do\+the\+articles"))
    readme_screenshot(page, "compare")
    shoot(page, "compare")


def test_shared_link_reopens_the_answer(new_page, app_server: AppServer, shoot) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    page.goto(f"{app_server.url}/?q=When+did+Turkey+join+NATO%3F&view=answers")
    expect_nato_answer(page)
    expect(question_box(page)).to_have_value(NATO)
    expect(page.get_by_role("radio", name="Answers", exact=True)).to_be_checked()
    shoot(page, "answers")

    page = new_page()  # another fresh context: nothing carried over but the link
    open_app(page, app_server, view="compare", q=MONTREUX)
    expect(page.get_by_role("radio", name="Compare", exact=True)).to_be_checked()
    expect(question_box(page)).to_have_value(MONTREUX)
    expect_compare(page, app_server, MONTREUX)
    shoot(page, "compare")


def test_article_markup_renders_as_text(page: Page, app_server: AppServer, watched: Watched, shoot) -> None:  # type: ignore[no-untyped-def]
    open_app(page, app_server)
    ask(page, MUSEUM)
    first_title = page.locator(".vb-title").first
    expect(first_title).to_contain_text(MARKUP_TITLE, timeout=WAIT_MS)
    settled(page)
    # The literal markup is visible text, in the passage as in the title.
    expect(page.locator(".vb-passage", has_text=MARKUP_SCRIPT).first).to_be_visible()
    expect(page.get_by_text(MARKUP_SCRIPT).first).to_be_visible()
    page.get_by_text("Show in the article").first.click()
    article = page.locator(".vb-article").first
    expect(article).to_contain_text(MARKUP_SCRIPT)
    expect(article).to_contain_text(MARKUP_BOLD)
    expect(article).to_contain_text(MARKUP_IMG)
    shoot(page, "answers")

    # ... and in Compare, where the title and passage are rendered by another code path.
    page.get_by_role("radio", name="Compare", exact=True).click()
    expect(page.get_by_text(re.compile(r"^\d+ of \d+ articles address:"))).to_be_visible(timeout=WAIT_MS)
    settled(page)
    expect(page.locator(".vb-title", has_text=MARKUP_TITLE)).to_have_count(1)
    expect(page.locator(".vb-passage", has_text=MARKUP_SCRIPT).first).to_be_visible()
    shoot(page, "compare")

    # None of it became markup: no such script, image or bold element anywhere in the DOM.
    found = page.evaluate("""() => ({
        scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('xss')).length,
        images: document.querySelectorAll('img[src="x"], img[onerror]').length,
        handlers: document.querySelectorAll('[onerror]').length,
        bold: [...document.querySelectorAll('b')].filter(b => b.textContent === 'bold').length,
    })""")
    assert found == {"scripts": 0, "images": 0, "handlers": 0, "bold": 0}, found
    assert watched.dialogs == [], watched.dialogs


def test_keyboard_only(page: Page, app_server: AppServer, shoot) -> None:  # type: ignore[no-untyped-def]
    open_app(page, app_server)
    settled(page)
    box = question_box(page)
    for _ in range(40):
        page.keyboard.press("Tab")
        if box.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("40 Tab presses never reached the question box")
    page.keyboard.type(S400)
    page.keyboard.press("Enter")
    expect(page.locator(".vb-passage").first).to_be_visible(timeout=WAIT_MS)
    settled(page)
    expect(page.locator("mark.answer").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^\d+ passages for:"))).to_contain_text(S400)
    shoot(page, "answers")


def test_empty_state_examples_are_clickable(page: Page, app_server: AppServer, shoot) -> None:  # type: ignore[no-untyped-def]
    open_app(page, app_server)
    expect(page.get_by_text("Try one of these")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".vb-passage")).to_have_count(0)
    examples = page.get_by_test_id("stMain").get_by_test_id("stButton").get_by_role("button")
    expect(examples.first).to_be_visible()
    assert examples.count() >= 1
    settled(page)
    shoot(page, "empty")

    example = examples.first.inner_text().strip()
    examples.first.click()
    expect(page.locator(".vb-passage").first).to_be_visible(timeout=WAIT_MS)
    settled(page)
    expect(question_box(page)).to_have_value(example)
    expect(page.get_by_text(re.compile(r"^\d+ passages for:"))).to_contain_text(example)
    expect(page.get_by_text("Try one of these")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"[?&]q="))
    shoot(page, "answers")
