"""Constants and small types shared by the browser tests' conftest.py and test modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from support import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 900}
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
# Streamlit reruns asynchronously and the first question loads the model: wait generously.
WAIT_MS = 60_000
APP_START_S = 60.0

MARKUP_FILE = "900_markup_museum.txt"
MARKUP_SCRIPT = '<script>alert("xss")</script>'
MARKUP_BOLD = "<b>bold</b>"
MARKUP_IMG = "<img src=x onerror=alert(1)>"
MARKUP_TITLE = f"Museum puts {MARKUP_SCRIPT} on display"
MARKUP_ARTICLE = (
    f"{MARKUP_TITLE}\n\n"
    "TALLINN, Estonia – The Museum of Web Security opened an exhibit about cross-site scripting "
    f"attacks on Friday. Visitors saw the string {MARKUP_SCRIPT} painted in large red letters on "
    f"the entrance wall. Next to it hung a banner with the tag {MARKUP_BOLD}, and a screen showed "
    f"the image tag {MARKUP_IMG} that once broke a famous guestbook.\n\n"
    "The curator, Maria Tamm, said the exhibit explains how websites get hacked when they show "
    "visitors' text without escaping it. \"A browser runs whatever script it is given,\" she said. "
    "The exhibit runs until the end of the year and entry is free for students.\n"
)


@dataclass(frozen=True)
class BrowserIndex:
    index_dir: Path
    titles: tuple[str, ...]  # every indexed article's title, in index order


@dataclass
class AppServer:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    index: BrowserIndex
    log: Path


@dataclass
class Watched:
    """What a page did that a test may assert on: dialogs (alert/confirm/prompt) and JS errors."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
