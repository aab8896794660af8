"""Fixtures for the real-browser tests: an index with a markup article, the running app, Chromium.

Everything is session-scoped except ``page``: the index is built once with the real model
(``python -m indexer build``), ``streamlit run app.py`` is started once on a free localhost
port, and Debian's Chromium is launched once through Playwright (never a browser Playwright
downloads). Each test gets a fresh browser context, so no cookies or session state leak
between tests.

A missing Chromium or Playwright is a test *failure*, not a skip: CI must not hide it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser_support import (
    APP_START_S, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, MARKUP_ARTICLE, MARKUP_FILE, MARKUP_TITLE, VIEWPORT,
    WAIT_MS, AppServer, BrowserIndex, Watched,
)
from support import REPO_ROOT, free_port, subprocess_env


@pytest.fixture(scope="session")
def browser_index(tmp_path_factory: pytest.TempPathFactory) -> BrowserIndex:
    """seeds/*.txt plus the markup article, indexed with the real model by the CLI."""
    root = tmp_path_factory.mktemp("browser_corpus")
    folder = root / "seeds"
    folder.mkdir()
    for path in sorted((REPO_ROOT / "seeds").glob("*.txt")):
        shutil.copyfile(path, folder / path.name)
    (folder / MARKUP_FILE).write_text(MARKUP_ARTICLE, encoding="utf-8")
    index_dir = root / "index"
    env = subprocess_env(PYTHONPATH=str(REPO_ROOT))
    # cwd = the folder's parent, so the sources are relative ("seeds/...") and exist.
    build = subprocess.run([sys.executable, "-m", "indexer", "build", "seeds", "--index", str(index_dir)],
                           cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"index build failed:\n{build.stdout}\n{build.stderr}"
    listed = subprocess.run([sys.executable, "-m", "indexer", "list", "--json", "--index", str(index_dir)],
                            cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    assert len(rows) == len(list(folder.glob("*.txt"))), rows
    assert any(r["title"] == MARKUP_TITLE for r in rows), rows
    return BrowserIndex(index_dir, tuple(r["title"] for r in rows))


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def _serve(what: str, log: Path, **env: str) -> Iterator[str]:
    """`streamlit run app.py` on a free 127.0.0.1 port with ``env``; yields its URL once it
    is healthy, and stops it afterwards. The file watcher is off: it would watch the whole
    repository (the venv included) and only costs CPU here; it changes nothing the app shows."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
               "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=subprocess_env(**env), stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + APP_START_S
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(f"{what} exited with {process.returncode} before serving:\n"
                            f"{log.read_text(errors='replace')}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not serve {url}/_stcore/health within {APP_START_S:.0f} s:\n"
                            f"{log.read_text(errors='replace')}", pytrace=False)
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def app_server(browser_index: BrowserIndex, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """`streamlit run app.py` on a free localhost port, serving ``browser_index``."""
    log = tmp_path_factory.mktemp("browser_app") / "streamlit.log"
    with _serve("streamlit", log, VERBATIM_INDEX_DIR=str(browser_index.index_dir)) as url:
        yield AppServer(url, browser_index, log)


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's Chromium driven by Playwright; fails (never skips) when either is missing."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Install it with "
                    "`make setup-dev` (runs `apt-get update && apt-get install -y chromium`).", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright for Python is not installed ({exc}); `make setup-dev` installs it from "
                    "requirements-dev.txt.", pytrace=False)
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 - any launch failure is reported as such
        manager.stop()
        pytest.fail(f"Chromium at {CHROMIUM} did not start under Playwright: {exc}", pytrace=False)
    try:
        yield browser
    finally:
        browser.close()
        manager.stop()


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def new_page(chromium, app_server: AppServer, watched: Watched):  # type: ignore[no-untyped-def]
    """Factory: a page in a fresh browser context (1280x900), watched for dialogs and errors.

    Any dialog is dismissed and recorded in ``watched``, as is any uncaught JavaScript error; a
    test fails at teardown if either happened.
    """
    contexts = []

    def make():  # type: ignore[no-untyped-def]
        context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()

        def on_dialog(dialog) -> None:  # type: ignore[no-untyped-def]
            watched.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: watched.errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not watched.dialogs, f"a dialog fired in the page: {watched.dialogs}"
    assert not watched.errors, f"uncaught JavaScript errors in the page: {watched.errors}"


@pytest.fixture
def page(new_page):  # type: ignore[no-untyped-def]
    return new_page()


# Streamlit scrolls inside <main data-testid="stMain">, not the document, so Playwright's
# full_page alone captures one viewport: the window is made as tall as the content instead.
_CONTENT_HEIGHT = """() => Math.max(document.documentElement.scrollHeight,
    ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stSidebarContent"]')]
        .map(e => e.scrollHeight))"""
_TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


@pytest.fixture
def shoot(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """shoot(page, state): a full-page PNG at tests/artifacts/<test name>-<state>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, state: str) -> Path:  # type: ignore[no-untyped-def]
        path = ARTIFACTS / f"{request.node.name}-{state}.png"
        size = page.viewport_size
        height = min(int(page.evaluate(_CONTENT_HEIGHT)), 16_000)
        try:
            if height > size["height"]:
                page.set_viewport_size({"width": size["width"], "height": height})
                page.evaluate(_TWO_FRAMES)
            page.screenshot(path=str(path), full_page=True)
        finally:
            page.set_viewport_size(size)
        return path

    return take


# ---------------------------------------------------------------- a second app, for uploads
# Tests that add or remove articles get their own app on their own index, so the shared
# index of ``app_server`` never changes under the other tests.
UPLOAD_SEED_FILES = ("000_61602f2a2996381f.txt", "002_5d9b8a6939599cab.txt", "004_6a67110f8947381e.txt")
UPLOAD_MAX_FILE_BYTES = 1_572_864  # 1.5 MiB: "up to 1.5 MB" in the uploader; under its own 2 MB


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where ``upload_server`` saves uploaded files (VERBATIM_UPLOAD_DIR); created on the first upload."""
    return tmp_path_factory.mktemp("upload_app") / "uploads"


@pytest.fixture(scope="module")
def upload_server(upload_dir: Path) -> Iterator[AppServer]:
    """A second `streamlit run app.py` on its own index of a few seed articles (built by the
    CLI into tmp), with uploads saved under ``upload_dir`` and VERBATIM_MAX_FILE_BYTES at
    1.5 MiB. Stopped when the module's tests are done."""
    root = upload_dir.parent
    folder = root / "seeds"
    folder.mkdir()
    for name in UPLOAD_SEED_FILES:
        shutil.copyfile(REPO_ROOT / "seeds" / name, folder / name)
    index_dir = root / "index"
    env = subprocess_env(PYTHONPATH=str(REPO_ROOT))
    # Absolute sources: the app runs from the repository root, and must read these copies.
    build = subprocess.run([sys.executable, "-m", "indexer", "build", str(folder), "--index", str(index_dir)],
                           cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, f"index build failed:\n{build.stdout}\n{build.stderr}"
    listed = subprocess.run([sys.executable, "-m", "indexer", "list", "--json", "--index", str(index_dir)],
                            cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    assert len(rows) == len(UPLOAD_SEED_FILES), rows
    index = BrowserIndex(index_dir, tuple(r["title"] for r in rows))

    log = root / "streamlit.log"
    with _serve("the upload app", log, VERBATIM_INDEX_DIR=str(index_dir), VERBATIM_UPLOAD_DIR=str(upload_dir),
                VERBATIM_MAX_FILE_BYTES=str(UPLOAD_MAX_FILE_BYTES)) as url:
        yield AppServer(url, index, log)


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[object]:
    """A scripted OpenAI-compatible server on 127.0.0.1 (tests/fake_llm.py)."""
    from fake_llm import FakeLLM

    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def written_server(browser_index: BrowserIndex, fake_llm, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[AppServer]:  # type: ignore[no-untyped-def]
    """The app with a written answer from ``fake_llm`` (VERBATIM_LLM_URL), on the shared index."""
    log = tmp_path_factory.mktemp("written_app") / "streamlit.log"
    with _serve("streamlit (written answers)", log, VERBATIM_INDEX_DIR=str(browser_index.index_dir),
                VERBATIM_LLM_URL=fake_llm.url, VERBATIM_LLM_MODEL="fake-model") as url:  # type: ignore[attr-defined]
        yield AppServer(url, browser_index, log)
