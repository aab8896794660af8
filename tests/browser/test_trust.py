"""What a reader must be able to trust, checked in the real page (Chromium driving the app).

Headlines and subheadings are never highlighted as answers and are shown as headings; the
lead answer carries a citation that can be checked against the file; a weak hit looks weak;
"Show in the article" opens scrolled to the highlight; Compare states its cut-off, styles the
articles that do not mention the question, and draws no empty chart; the Collection's counts
follow uploads and removals at once, and every refused upload says why, once per file; an
unknown view says so.

Uploads and removals run on ``upload_server`` (conftest.py): a second app on its own index,
so that the shared index of the other browser tests never changes.

Streamlit reruns asynchronously: every wait is an auto-waiting locator, ``expect`` or
``wait_for_function`` with a generous timeout, never a sleep.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from browser_support import MARKUP_ARTICLE, MARKUP_FILE, WAIT_MS, AppServer

from indexer.chunking import BODY, article_spans, sentence_kinds, split_sentences
from indexer.documents import title_of
from indexer.settings import ChunkingParams, Settings
from support import REPO_ROOT

try:
    from playwright.sync_api import Page, expect
except ImportError:  # collected anyway: the `chromium` fixture then fails each test, saying why
    Page = object  # type: ignore[misc,assignment]
    expect = None  # type: ignore[assignment]

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NATO = "When did Turkey join NATO?"
SEED_QUESTIONS = (
    NATO,
    "Is Moscow using the S-400 against Turkey?",  # a headline, asked word for word
    "Why Is Turkey Selling Drones to Ukraine?",  # another
    "What do the articles say about Turkey's S-400 purchase?",
)
FAR_INTO = "What do the articles say about Turkey's S-400 purchase?"  # answers far into an article
BAKLAVA = "What is the recipe for baklava?"
COFFEE = "How do you brew Turkish coffee?"
S400_WHY = "Why did Turkey buy the S-400?"

# An article with a headline and two subheadings (short lines without a final period), each
# followed by body paragraphs; the question's words are those of the second subheading.
LIGHTHOUSE_FILE = "trust_lighthouse.txt"
LIGHTHOUSE_TITLE = "Harbour town reopens its old lighthouse as a museum"
LIGHTHOUSE_SUBHEADINGS = ("Restoring the Keeper's Cottage", "Opening Hours and Ticket Prices")
LIGHTHOUSE_QUESTION = "What are the museum's opening hours and ticket prices?"
LIGHTHOUSE = f"""{LIGHTHOUSE_TITLE}

PORTVALE – The lighthouse that guided fishing boats into Portvale harbour for more than a century \
reopened on Saturday as a museum. The town council bought the building in 2019 after the last keeper \
retired, and spent four years repairing its stone tower and iron lantern room. About two thousand \
people came to the opening, many of them children from the local schools.

{LIGHTHOUSE_SUBHEADINGS[0]}

Volunteers rebuilt the keeper's cottage next to the tower using old photographs and the keeper's own \
notebooks. They replaced the slate roof, restored the wooden floors and repainted the walls in the \
original pale green. The cottage now holds a small exhibition about the families who lived there and \
the storms they wrote about.

The restoration cost 1.2 million euros, most of it paid by a regional heritage fund. Local carpenters \
did much of the work, and the council says the money stayed in the town.

{LIGHTHOUSE_SUBHEADINGS[1]}

The museum is open from Tuesday to Sunday, from ten in the morning until five in the afternoon. \
Tickets cost eight euros for adults and three euros for children, and entry is free on the first \
Sunday of every month. Visitors can climb the 112 steps of the tower to the lantern room when the \
weather allows.
"""

# A second good article, for the add-and-remove round trip of the Collection.
ORCHARD_FILE = "trust_orchard.txt"
ORCHARD_TITLE = "Volunteers plant a community orchard on the old rail yard"
ORCHARD = f"""{ORCHARD_TITLE}

BRANDMOOR – More than a hundred volunteers planted sixty apple, pear and plum trees on Sunday on \
the site of the town's old rail yard, which has stood empty since the last freight train left in \
1998. The town bought the land last year and gave it to a neighbourhood association.

The association says the first fruit should be ready in three years, and that anyone may pick it. \
Schools nearby will look after a row of trees each, and a beekeeper has put four hives at the edge \
of the orchard.
"""

# Every article the two apps may show, by document id (the file's stem), as the indexer reads it.
ARTICLES = {path.stem: path.read_bytes().decode("utf-8")
            for path in sorted((REPO_ROOT / "seeds").glob("*.txt"))}
ARTICLES[Path(MARKUP_FILE).stem] = MARKUP_ARTICLE
ARTICLES[Path(LIGHTHOUSE_FILE).stem] = LIGHTHOUSE
ARTICLES[Path(ORCHARD_FILE).stem] = ORCHARD


def indexed_headings(text: str) -> list[tuple[int, int, str]]:
    """The title and heading sentences the index records for an article (after the trailing
    boilerplate is cut): what the app shows as ``mark.heading``."""
    spans, _ = article_spans(text, ChunkingParams())
    kinds = sentence_kinds(text, spans, title_of(text))
    return [(s.start, s.end, s.slice(text)) for s, k in zip(spans, kinds) if k != BODY]


def never_answers() -> set[str]:
    """Every article title and every heading line (and heading sentence) of every article,
    boilerplate included: none of them may ever be highlighted as an answer."""
    out: set[str] = set()
    for text in ARTICLES.values():
        out.add(title_of(text))
        spans = split_sentences(text)
        for span, kind in zip(spans, sentence_kinds(text, spans, title_of(text))):
            if kind != BODY:
                line_start = text.rfind("\n", 0, span.start) + 1
                line_end = text.find("\n", span.end)
                out.add(span.slice(text).strip())
                out.add(text[line_start: len(text) if line_end < 0 else line_end].strip())
    return out


NEVER_ANSWERS = never_answers()
MENTION_CUT = Settings().mention_relevance  # the default Compare cut-off (0.55)
_FILE_LINE = re.compile(r"characters (\d+)–(\d+) · (\S+)$")

# Per hit: the passage and its article box, with the marks each holds.
_HITS_JS = """() => [...document.querySelectorAll('.vb-hit')].map((hit) => {
    const box = hit.closest('[data-testid="stVerticalBlock"]');
    const article = box ? box.querySelector('.vb-article') : null;
    const passage = hit.querySelector('.vb-passage');
    const marks = (root, css) => root ? [...root.querySelectorAll(css)].map((m) => m.textContent) : [];
    return {
        file: hit.querySelector('.vb-file').textContent,
        weak: hit.classList.contains('vb-weak-hit'),
        passage: passage.textContent,
        passageHeadings: marks(passage, 'mark.heading'),
        passageAnswers: marks(passage, 'mark.answer'),
        hasArticle: article !== null,
        articleHeadings: marks(article, 'mark.heading'),
        articleAnswers: marks(article, 'mark.answer'),
    };
})"""


# ---------------------------------------------------------------- helpers
def question_box(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_label("Question", exact=True)


def open_app(page: Page, server: AppServer, **params: str) -> None:
    """Open the app (with query params) and wait until the question box is there."""
    page.goto(server.url + "/" + (f"?{urlencode(params)}" if params else ""))
    expect(question_box(page)).to_be_visible(timeout=WAIT_MS)


def open_collection(page: Page, server: AppServer) -> int:
    """Open the Collection view; returns its "N articles" after checking the sidebar agrees."""
    page.goto(f"{server.url}/?view=collection")
    header = collection_header(page)
    expect(header).to_be_visible(timeout=WAIT_MS)
    settled(page)
    count = int(header.inner_text().split()[0])
    expect(sidebar_articles(page)).to_have_text(f"Articles: {count}")
    return count


def collection_header(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_role("heading", name=re.compile(r"^\d+ articles$"))


def sidebar_articles(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("stSidebar").locator("li", has_text="Articles:")


def settled(page: Page) -> None:
    """Wait until the script run is over and every lazily loaded element has rendered."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=WAIT_MS)


def answers_shown(page: Page) -> None:
    """Wait for the Answers view's passages of the current question."""
    expect(page.get_by_text(re.compile(r"^\d+ passages for:"))).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".vb-passage").first).to_be_visible(timeout=WAIT_MS)
    settled(page)


def upload(page: Page, files: list[tuple[str, bytes]]) -> None:
    """Choose the files in the uploader's real file input and press "Add to the index"."""
    chooser = page.get_by_test_id("stFileUploader").locator("input[type=file]")
    chooser.set_input_files([{"name": name, "mimeType": "text/plain", "buffer": data}
                             for name, data in files])
    expect(page.get_by_test_id("stFileChip")).to_have_count(len(files), timeout=WAIT_MS)
    page.get_by_role("button", name="Add to the index").click()


def card_of(mark):  # type: ignore[no-untyped-def]
    """The bordered container a hit's or article card's HTML sits in."""
    return mark.locator('xpath=ancestor::div[@data-testid="stVerticalBlock"][1]')


def check_headings(page: Page, question: str) -> tuple[int, list[str]]:
    """On the answers shown: no highlighted answer is a title or heading; the passage is the
    article's text at the cited characters; its (and its article's) headings are exactly the
    marked ones. Returns how many headings the passages marked, and the answers marked."""
    hits = page.evaluate(_HITS_JS)
    assert hits, f"no hits shown for {question!r}"
    marked, answers = 0, []
    for hit in hits:
        match = _FILE_LINE.search(hit["file"])
        assert match, hit["file"]
        start, end, doc_id = int(match[1]), int(match[2]), match[3]
        text = ARTICLES[doc_id]
        assert hit["passage"] == text[start:end], \
            f"{question!r}: the passage shown is not characters {start}–{end} of {doc_id}"
        expected = indexed_headings(text)
        inside = [t for s, e, t in expected if start <= s and e <= end]
        assert hit["passageHeadings"] == inside, (question, doc_id, hit["passageHeadings"], inside)
        assert hit["hasArticle"], f"{question!r}: no article box for {doc_id}"
        assert hit["articleHeadings"] == [t for _, _, t in expected], \
            (question, doc_id, hit["articleHeadings"])
        for answer in hit["passageAnswers"] + hit["articleAnswers"]:
            assert answer.strip() not in NEVER_ANSWERS, \
                f"{question!r}: a heading is highlighted as the answer: {answer!r}"
        marked += len(inside)
        answers += hit["passageAnswers"]
    lead = page.locator(".vb-lead-answer")
    if lead.count():
        said = lead.inner_text().strip().strip("“”").strip()
        assert said not in NEVER_ANSWERS, f"{question!r}: the lead answer is a heading: {said!r}"
    return marked, answers


# ---------------------------------------------------------------- 1. headings never answer
def test_headline_never_highlighted_as_an_answer_on_the_seeds(new_page, app_server: AppServer) -> None:  # type: ignore[no-untyped-def]
    marked = 0
    for question in SEED_QUESTIONS:
        page = new_page()
        open_app(page, app_server, q=question)
        answers_shown(page)
        n, answers = check_headings(page, question)
        marked += n
        assert answers, f"{question!r}: nothing highlighted as an answer"

    # The example questions of the empty page (headlines, or headlines made questions).
    page = new_page()
    open_app(page, app_server)
    expect(page.get_by_text("Try one of these")).to_be_visible(timeout=WAIT_MS)
    settled(page)
    count = page.get_by_test_id("stMain").get_by_test_id("stButton").get_by_role("button").count()
    assert count >= 1, "no example questions"
    for n in range(count):
        if n:
            page = new_page()
            open_app(page, app_server)
        example = page.get_by_test_id("stMain").get_by_test_id("stButton").get_by_role("button").nth(n)
        expect(example).to_be_visible(timeout=WAIT_MS)
        asked = example.inner_text().strip()
        example.click()
        answers_shown(page)
        expect(question_box(page)).to_have_value(asked)
        marked += check_headings(page, asked)[0]
    # Not vacuous: some passages held a headline or heading, and showed it as one.
    assert marked > 0, "no passage held a heading: the check proved nothing"


def test_subheading_of_an_uploaded_article_is_a_heading_never_the_answer(
        page: Page, upload_server: AppServer, upload_dir: Path, shoot) -> None:  # type: ignore[no-untyped-def]
    open_collection(page, upload_server)
    upload(page, [(LIGHTHOUSE_FILE, LIGHTHOUSE.encode("utf-8"))])
    stem = Path(LIGHTHOUSE_FILE).stem
    expect(page.get_by_test_id("stAlertContentSuccess")).to_have_text(
        f"Added 1 article: “{LIGHTHOUSE_TITLE}” ({stem}).", timeout=WAIT_MS)
    assert (upload_dir / LIGHTHOUSE_FILE).read_text(encoding="utf-8") == LIGHTHOUSE
    assert [t for _, _, t in indexed_headings(LIGHTHOUSE)] == [LIGHTHOUSE_TITLE, *LIGHTHOUSE_SUBHEADINGS]

    page.goto(f"{upload_server.url}/?{urlencode({'q': LIGHTHOUSE_QUESTION})}")
    answers_shown(page)
    check_headings(page, LIGHTHOUSE_QUESTION)
    # The subheading the question echoes is shown in a passage, as a heading, and no
    # highlighted answer (nor the lead) is any heading of the article.
    subheading = page.locator(".vb-passage mark.heading", has_text=LIGHTHOUSE_SUBHEADINGS[1])
    expect(subheading.first).to_be_visible()
    expect(subheading.first).to_have_css("font-weight", "700")
    answers = [a.strip() for a in page.locator("mark.answer").all_text_contents()]
    assert answers, "nothing highlighted as an answer"
    for heading in (LIGHTHOUSE_TITLE, *LIGHTHOUSE_SUBHEADINGS):
        assert heading not in answers, f"the heading {heading!r} is highlighted as an answer"
    expect(page.locator("mark.answer mark.heading, mark.heading mark.answer")).to_have_count(0)
    lead = page.locator(".vb-lead-answer")
    expect(lead).to_have_count(1)
    assert lead.inner_text().strip().strip("“”") not in (LIGHTHOUSE_TITLE, *LIGHTHOUSE_SUBHEADINGS)
    expect(page.locator(".vb-lead .vb-cite")).to_contain_text(LIGHTHOUSE_TITLE)
    shoot(page, "answers")


# ---------------------------------------------------------------- 2. the lead answer
def test_lead_answer_and_its_citation_text(page: Page, app_server: AppServer) -> None:
    open_app(page, app_server, q=NATO)
    answers_shown(page)
    lead = page.locator(".vb-lead")
    expect(lead).to_have_count(1)
    expect(lead.locator(".vb-lead-label")).to_have_text(re.compile("answer", re.IGNORECASE))
    sentence = lead.locator(".vb-lead-answer").inner_text().strip().strip("“”")
    assert "1952" in sentence and "NATO" in sentence, sentence

    technical = lead.locator(".vb-file").inner_text().strip()
    match = re.fullmatch(r"(\S+) · characters (\d+)–(\d+) · (\S+)", technical)
    assert match, technical
    source, start, end, doc_id = match[1], int(match[2]), int(match[3]), match[4]
    assert source == f"seeds/{doc_id}.txt", source
    text = ARTICLES[doc_id]
    assert sentence in text[start:end], \
        f"the quoted sentence is not in characters {start}–{end} of {source}"

    title = title_of(text)
    cite = lead.locator(".vb-cite").inner_text().strip()
    match = re.fullmatch(rf"{re.escape(title)}, seeds, paragraph (\d+)", cite)
    assert match, cite
    # "paragraph N" is the Nth line of text (the headline and the headings are not
    # paragraphs), and it holds the sentence.
    heads = {t for _, _, t in indexed_headings(text)}
    paragraphs = [line for line in text.split("\n") if line.strip() and line.strip() not in heads]
    assert sentence in paragraphs[int(match[1]) - 1], (match[1], paragraphs[int(match[1]) - 1])
    expect(lead.locator(".vb-cite i")).to_have_text(title)  # the title, set apart

    # The file line is the smaller print.
    sizes = lead.evaluate("""(box) => ['.vb-cite', '.vb-file'].map(
        (css) => parseFloat(getComputedStyle(box.querySelector(css)).fontSize))""")
    assert sizes[1] < sizes[0], sizes


# ---------------------------------------------------------------- 3. weak hits look weak
@pytest.mark.parametrize("question", [
    BAKLAVA,
    COFFEE,  # answered under the hand rule (a drone sentence 0.37 similar); not by the learned verdict
])
def test_weak_hits_look_weak(page: Page, app_server: AppServer, question: str) -> None:
    open_app(page, app_server, q=question)
    answers_shown(page)
    warning = page.get_by_test_id("stAlertContentWarning")
    expect(warning).to_contain_text("The articles don't seem to answer this", timeout=5_000)
    expect(page.locator(".vb-lead")).to_have_count(0)
    hits = page.locator(".vb-hit")
    assert hits.count() >= 1
    for n in range(hits.count()):
        hit = hits.nth(n)
        expect(hit).to_have_class(re.compile(r"\bvb-weak-hit\b"))
        expect(hit.locator(".vb-title")).to_contain_text("weak match")
        expect(hit.locator(".vb-why")).to_contain_text("Weak match:")
        expect(hit.locator(".vb-passage mark.closest")).to_have_count(1)
    expect(page.locator("mark.answer")).to_have_count(0)
    expect(page.locator("mark.closest").first).to_be_visible()


# ---------------------------------------------------------------- 4. scrolled to the highlight
def test_article_expander_scrolled_to_the_highlight(page: Page, app_server: AppServer, shoot) -> None:  # type: ignore[no-untyped-def]
    open_app(page, app_server, q=FAR_INTO)
    answers_shown(page)
    # The answering hit whose passage starts furthest into its article.
    hits = page.evaluate(_HITS_JS)
    answering = [(int(_FILE_LINE.search(h["file"])[1]), n) for n, h in enumerate(hits) if h["passageAnswers"]]
    assert answering, hits
    start, n = max(answering)
    assert start > 2000, f"no answering passage far into its article: {answering}"

    card = card_of(page.locator(".vb-hit").nth(n))
    card.get_by_text("Show in the article").click()
    article = card.locator(".vb-article")
    expect(article).to_be_visible(timeout=WAIT_MS)
    mark = article.locator("mark.answer")
    expect(mark).to_have_count(1)
    page.wait_for_function("(box) => box.scrollTop > 0", arg=article.element_handle(), timeout=WAIT_MS)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert article.evaluate("(box) => box.scrollTop") > 0
    outer, inner = article.bounding_box(), mark.bounding_box()
    assert outer and inner, (outer, inner)
    inside = (outer["y"] <= inner["y"] and inner["y"] + inner["height"] <= outer["y"] + outer["height"]
              and outer["x"] <= inner["x"] and inner["x"] + inner["width"] <= outer["x"] + outer["width"])
    assert inside, f"the highlight {inner} is not inside the article box {outer}"
    shoot(page, "article-scrolled")


# ---------------------------------------------------------------- 5. Compare
def test_compare_cut_off_not_mentioned_and_no_console_errors(page: Page, app_server: AppServer, shoot) -> None:  # type: ignore[no-untyped-def]
    console: list[tuple[str, str]] = []
    page.on("console", lambda message: console.append((message.type, message.text)))
    total = len(app_server.index.titles)

    open_app(page, app_server, view="compare", q=S400_WHY)
    expect(page.get_by_text(re.compile(rf"^\d+ of {total} articles address:"))).to_be_visible(timeout=WAIT_MS)
    settled(page)
    caption = page.get_by_test_id("stCaptionContainer").filter(has_text="counts as mentioning")
    # The app decides with the learned models (the default): the cut-off is a probability.
    expect(caption).to_contain_text("the models give at least 50% that its closest sentence gives the answer")
    expect(caption).to_contain_text("the red line in the chart")
    cut = "50%"
    chart = page.get_by_test_id("stVegaLiteChart")
    expect(chart).to_have_count(1)
    expect(chart.locator("canvas, svg").first).to_be_visible()

    quiet = page.locator(".vb-not-mentioned")
    mentioned = page.locator(".vb-mentioned")
    assert quiet.count() >= 1 and mentioned.count() >= 1, (quiet.count(), mentioned.count())
    for n in range(quiet.count()):
        card = quiet.nth(n)
        expect(card.locator(".vb-none")).to_have_text(re.compile(r"^Not mentioned: \S.{10,}\.$"))
        expect(card_of(card).get_by_test_id("stProgress")).to_have_count(0)
    for n in range(mentioned.count()):  # the progress bar is there where it belongs
        bar = card_of(mentioned.nth(n)).get_by_test_id("stProgress")
        expect(bar).to_have_count(1)
        # ... and states the caption's cut-off, which its probability reaches.
        said = re.search(r"gives the answer (\d+)% \(cut-off (\d+%)\)", bar.inner_text())
        assert said and said[2] == cut and int(said[1]) >= 50, (bar.inner_text(), cut)
    shoot(page, "compare")

    open_app(page, app_server, view="compare", q=COFFEE)
    expect(page.get_by_text(f"0 of {total} articles address:")).to_be_visible(timeout=WAIT_MS)
    settled(page)
    expect(page.get_by_text("there is nothing to chart")).to_be_visible()
    # Streamlit 1.67 renders st.altair_chart as stVegaLiteChart; older ones used stArrowVegaLiteChart.
    charts = page.locator('[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"]')
    expect(charts).to_have_count(0)
    expect(page.locator(".vb-not-mentioned")).to_have_count(total)
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    caption = page.get_by_test_id("stCaptionContainer").filter(has_text="counts as mentioning")
    expect(caption).not_to_contain_text("red line")
    shoot(page, "compare-nothing")

    errors = [text for kind, text in console if kind == "error"]
    extent = [text for kind, text in console if "Infinite extent" in text]
    assert not errors, f"console errors: {errors}"
    assert not extent, f"console warnings about an empty chart: {extent}"


# ---------------------------------------------------------------- 6. Collection counts
def test_collection_counts_after_upload_and_removal(page: Page, upload_server: AppServer, upload_dir: Path,
                                                    shoot) -> None:  # type: ignore[no-untyped-def]
    before = open_collection(page, upload_server)
    stem = Path(ORCHARD_FILE).stem
    expect(page.locator(".vb-title", has_text=ORCHARD_TITLE)).to_have_count(0)

    upload(page, [(ORCHARD_FILE, ORCHARD.encode("utf-8"))])
    expect(page.get_by_test_id("stAlertContentSuccess")).to_have_text(
        f"Added 1 article: “{ORCHARD_TITLE}” ({stem}).", timeout=WAIT_MS)
    expect(collection_header(page)).to_have_text(f"{before + 1} articles")
    expect(sidebar_articles(page)).to_have_text(f"Articles: {before + 1}")
    expect(page.locator(".vb-title", has_text=ORCHARD_TITLE)).to_have_count(1)
    settled(page)
    expect(page.get_by_test_id("stFileChip")).to_have_count(0)  # the uploader starts empty
    expect(page.get_by_role("button", name="Add to the index")).to_have_count(0)
    assert (upload_dir / ORCHARD_FILE).is_file()
    shoot(page, "added")

    title = page.locator(".vb-title", has_text=ORCHARD_TITLE)
    row = page.get_by_test_id("stHorizontalBlock").filter(has=title)
    row.get_by_role("button", name="Remove").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=WAIT_MS)
    expect(dialog).to_contain_text("Remove this article?")
    expect(dialog).to_contain_text(f"“{ORCHARD_TITLE}” ({stem})")
    shoot(page, "confirm")
    dialog.get_by_role("button", name="Remove", exact=True).click()

    removed = page.get_by_test_id("stAlertContentSuccess")
    expect(removed).to_have_text(f"Removed “{ORCHARD_TITLE}” ({stem}).", timeout=WAIT_MS)
    expect(dialog).to_have_count(0, timeout=WAIT_MS)
    expect(collection_header(page)).to_have_text(f"{before} articles")
    expect(sidebar_articles(page)).to_have_text(f"Articles: {before}")
    expect(page.locator(".vb-title", has_text=ORCHARD_TITLE)).to_have_count(0)
    assert (upload_dir / ORCHARD_FILE).is_file(), "the dialog said the file is not deleted"
    shoot(page, "removed")


# ---------------------------------------------------------------- 7. refused uploads
def test_upload_messages_for_binary_empty_and_oversized_files(page: Page, upload_server: AppServer,
                                                              upload_dir: Path, shoot) -> None:  # type: ignore[no-untyped-def]
    before = open_collection(page, upload_server)
    label = page.get_by_test_id("stFileUploader").get_by_test_id("stWidgetLabel")
    expect(label).to_contain_text("up to 1.5 MB each")

    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
           + bytes(range(256)) * 8)
    line = b"The council met again on Tuesday and talked about the harbour for a long time.\n"
    big = (line * (2 * 1024 * 1024 // len(line) + 1))[: int(1.8 * 1024 * 1024)]
    assert 1_572_864 < len(big) < 2 * 1024 * 1024
    files = {"binary_renamed.txt": png, "empty.txt": b"", "big_article.txt": big}
    upload(page, list(files.items()))

    warnings = page.get_by_test_id("stAlertContentWarning")
    expect(warnings).to_have_count(len(files), timeout=WAIT_MS)
    settled(page)
    texts = warnings.all_inner_texts()
    for name in files:
        mine = [t for t in texts if name in t]
        assert len(mine) == 1, (name, texts)
        assert mine[0].count(name) == 1, f"{name} named more than once: {mine[0]!r}"
        assert str(upload_dir) not in mine[0] and "uploads/" not in mine[0], \
            f"the saved path is in the message: {mine[0]!r}"
    by_name = {name: next(t for t in texts if name in t) for name in files}
    assert "not a text file" in by_name["binary_renamed.txt"], by_name
    assert "utf-8" not in by_name["binary_renamed.txt"].lower(), by_name
    assert "has no text" in by_name["empty.txt"], by_name
    assert "over the limit" in by_name["big_article.txt"], by_name
    assert "VERBATIM_MAX_FILE_BYTES" in by_name["big_article.txt"], by_name
    expect(page.get_by_test_id("stAlertContentSuccess")).to_have_count(0)
    expect(collection_header(page)).to_have_text(f"{before} articles")
    expect(sidebar_articles(page)).to_have_text(f"Articles: {before}")
    expect(page.get_by_test_id("stFileChip")).to_have_count(0)
    for name in files:
        assert not (upload_dir / name).exists(), f"{name} was saved though it was not added"
    shoot(page, "refused")


# ---------------------------------------------------------------- 8. an unknown view
def test_unknown_view_says_so_and_shows_answers(page: Page, app_server: AppServer) -> None:
    warning = page.get_by_test_id("stAlertContentWarning")
    open_app(page, app_server, view="Charts")
    expect(warning).to_contain_text("There is no view called “Charts”", timeout=WAIT_MS)
    expect(page.get_by_role("radio", name="Answers", exact=True)).to_be_checked()
    expect(page.get_by_text("Try one of these")).to_be_visible(timeout=WAIT_MS)

    open_app(page, app_server, view="Charts", q=NATO)
    expect(warning).to_contain_text("There is no view called “Charts”", timeout=WAIT_MS)
    expect(page.locator("mark.answer", has_text="1952").first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("radio", name="Answers", exact=True)).to_be_checked()
