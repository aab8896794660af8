"""Recognising the page furniture that scraped articles end with.

Comment prompts ("Leave a Reply", "Comments (13)"), subscription pleas ("By subscribing,
you can help us…"), "Check Also" teasers, author boxes ("About Jane Doe"), share buttons
and a trailing bare URL (possibly followed by the title again) are not the article: they
should not be indexed, retrieved or cited.

The text is never modified. :func:`boilerplate_start` returns an offset; the caller drops
the sentences that start at or after it (sentences never span a line break, and the offset
is always the start of a line, so no sentence straddles it).

How it decides, working on non-blank lines from the end of the text:

* a line that matches one of the conservative whole-line patterns below (a *marker*) is
  boilerplate, and so is a line without any letter or digit;
* a run of at most ``_MAX_TEASER_LINES`` short lines (headline-sized: at most
  ``_MAX_TEASER_WORDS`` words) is boilerplate when an *intro* marker ("Check Also",
  "Read also", "Related", "About the author", ...) comes right before it, and it is
  followed by boilerplate or by the end of the text;
* the first line that is neither stops the search: nothing before it is ever cut. The
  first non-blank line (the title) is never cut either.

Patterns must match a whole line, so sentences that merely mention comments or
subscriptions ("The State Department did not respond to questions about her comments.")
are content. Run ``python -m indexer.boilerplate FILE...`` to see what is cut.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

_MAX_MARKER_CHARS = 250
_MAX_TEASER_WORDS = 40
_MAX_TEASER_CHARS = 320
_MAX_TEASER_LINES = 8

_URL = r"(?:https?://|www\.)\S+"
_SHARE_WORD = (r"(?:share|share this|share this (?:article|story|post)|share on|tweet|facebook|twitter|x|"
               r"linkedin|whatsapp|telegram|reddit|pinterest|email|e-mail|print|copy link|messenger|"
               r"flipboard|pocket|tumblr|threads|bluesky)")

# Lines that introduce teasers or an author box: the short lines after them go too. They
# are headings, so a line that ends with a full stop is not one.
_INTRO = [
    r"(?:check|read|see|watch|listen) also:?",
    r"also (?:read|see|check|watch):?",
    r"read (?:more|next):?",
    r"more (?:on|about|from|in) [^.!?]{1,60}",
    r"more stories:?",
    r"related(?: (?:articles?|posts?|stories|news|content|coverage|reading|topics))?:?",
    r"(?:you (?:may|might) also (?:like|enjoy|be interested in)|recommended(?: for you)?|"
    r"popular (?:posts|stories|now)|most (?:read|popular|viewed)|trending(?: now)?|"
    r"editor'?s picks|top stories|latest (?:news|stories|posts))\W{0,3}",
    r"(?:previous|next) (?:article|post|story):?",
    r"about the authors?:?",
]

# Other lines that are boilerplate on their own (final punctuation is allowed after them).
_MARKER = [
    # comments
    r"leave a (?:reply|comment|response)(?: cancel reply)?",
    r"(?:post|add|write|submit|join|view|show|load|read|see|hide|open) (?:all )?(?:\d+ )?"
    r"(?:a |the )?(?:comments?|reply|replies|responses?|discussion|conversation)",
    r"(?:\d+|no) (?:comments?|responses?|replies)(?: yet)?",
    r"comments?(?: \(\d+\)| \d+)?:?",
    r"cancel reply",
    r"comments (?:are|have been) (?:closed|disabled|turned off|moderated)(?: .{0,120})?",
    r"be the first to (?:comment|reply).{0,60}",
    r"join .{1,60} to (?:participate in|join) the (?:comments|conversation|discussion)",
    r"(?:you must be |please )?(?:log(?:ged)? in|sign(?:ed)? in|register) to "
    r"(?:post a |leave a |add a )?(?:comment|reply|participate in the (?:comments|discussion|conversation))"
    r"(?: .{0,80})?",
    r"your email address will not be published.{0,120}",
    r"required fields are marked(?: .{0,20})?",
    r"save my name,? email,? and website in this browser for the next time i comment",
    r"(?:name|email|e-mail|website|comment)\s*\*",
    r"notify me of (?:follow-up comments|new posts).{0,80}",
    r"this site uses akismet to reduce spam.{0,120}",
    # subscription and donation pleas
    r"by subscribing,? you (?:can )?help us.{0,150}",
    r".{0,80}\b(?:quality|independent|trusted) journalism is more (?:crucial|important|"
    r"necessary|needed|vital) than ever.{0,150}",
    r".{0,40}\bboth misinformation and too much information.{0,150}",
    r"subscribe(?: now| today| here)?[.!:]?",
    r"(?:please )?(?:subscribe|sign up) (?:now |today )?(?:to|for) (?:our|the|a) .{0,60}"
    r"(?:newsletter|podcast|channel|updates|digest|briefing|alerts?|mailing list).{0,80}",
    r"(?:get|receive) (?:the latest|our) .{0,80}(?:newsletter|inbox|updates).{0,60}",
    r"(?:please )?(?:consider )?(?:support(?:ing)?|donat(?:e|ing) to) (?:us|our work|our journalism|"
    r"independent journalism|quality journalism|local journalism)\b.{0,120}",
    r"(?:become a (?:member|subscriber|supporter)|already a (?:member|subscriber)\??|"
    r"(?:log|sign) in|register|donate)(?: now| today| here)?[.!?]?",
    # sharing, tags, legal
    rf"{_SHARE_WORD}(?:\s*(?:[:|/•·,-]\s*)?{_SHARE_WORD})*",
    r"(?:like|share|tweet|follow) (?:this|us)(?: on .{1,40})?:?",
    r"follow (?:us|the author|\w+) on (?:twitter|x|facebook|instagram|linkedin|bluesky|threads|"
    r"mastodon|telegram|youtube).{0,60}",
    r"(?:tags?|topics?|filed under|posted in|categories|category)\s*:.{0,200}",
    r"advertisement|sponsored(?: content)?|loading\.\.\.|click here to .{0,80}",
    r"(?:copyright\s*)?(?:©|\(c\))\s*.{0,150}|copyright\s+(?:\d{4}|by)\b.{0,150}",
    r"all rights reserved\.?.{0,100}",
    # a trailing URL, bare or as a source line (a repeated title after it is checked apart)
    rf"(?:source|sources|original(?:ly published)?(?: at| on| in)?|via|read more (?:at|on)|"
    rf"link|url)?\s*:?\s*{_URL}",
]

_MARKER_RE = re.compile("(?:" + "|".join(f"(?:{p})" for p in _MARKER) + r")[\s.!:;…]*", re.IGNORECASE)
_INTRO_RE = re.compile("|".join(f"(?:{p})" for p in _INTRO), re.IGNORECASE)
# "About Eleanor Blackburn": an author box. The name must be capitalised (1-4 words).
_ABOUT_NAME_RE = re.compile(r"About(?: the author)?:? [A-Z][\w'’.-]*(?: [A-Z][\w'’.-]*){0,3}(?<![.!?])")
_LEADING_URL_RE = re.compile(rf"\s*{_URL}\s*(.*)")
_NORMALISE = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    text: str  # stripped


def _lines(text: str) -> list[_Line]:
    """Non-blank lines (split at \\n only, like the sentence splitter), with offsets."""
    lines: list[_Line] = []
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        stripped = text[start:end].strip()
        if stripped:
            lines.append(_Line(start, end, stripped))
        start = end + 1
    return lines


def _key(text: str) -> str:
    return _NORMALISE.sub(" ", text.casefold()).strip()


def _is_marker(line: str, title_key: str) -> bool:
    if not any(ch.isalnum() for ch in line):
        return True  # rules, bullets, "***"
    if len(line) > _MAX_MARKER_CHARS:
        return False
    if _INTRO_RE.fullmatch(line) or _MARKER_RE.fullmatch(line) or _ABOUT_NAME_RE.fullmatch(line):
        return True
    if title_key and _key(line) == title_key:
        return True  # the title repeated at the end
    url = _LEADING_URL_RE.fullmatch(line)
    return bool(url and title_key and _key(url.group(1)) == title_key)


def _is_teaser(line: str) -> bool:
    return len(line) <= _MAX_TEASER_CHARS and len(line.split()) <= _MAX_TEASER_WORDS


def _trailing_lines(text: str) -> tuple[list[_Line], int]:
    """The non-blank lines of ``text`` and the index of the first trailing boilerplate one."""
    lines = _lines(text)
    if not lines:
        return lines, 0
    title_key = _key(lines[0].text.lstrip("\ufeff#"))
    first = len(lines)  # index of the first boilerplate line found so far
    i = len(lines) - 1
    while i >= 1:  # lines[0] is the title: never boilerplate
        if _is_marker(lines[i].text, title_key):
            first = i
            i -= 1
            continue
        # Teaser lines: short, after an intro, followed by boilerplate or the end.
        j = i
        while j >= 1 and i - j < _MAX_TEASER_LINES and _is_teaser(lines[j].text) \
                and not _INTRO_RE.fullmatch(lines[j].text):
            j -= 1
        if j >= 1 and j < i and _INTRO_RE.fullmatch(lines[j].text):
            first = j
            i = j - 1
            continue
        break
    return lines, first


def boilerplate_start(text: str) -> int:
    """Offset where the trailing boilerplate of ``text`` begins; ``len(text)`` if it has none.

    The offset is the start of a line (0 or just after a ``\\n``), never inside or before
    the first non-blank line.
    """
    lines, first = _trailing_lines(text)
    return lines[first].start if first < len(lines) else len(text)


def boilerplate_spans(text: str) -> list[tuple[int, int]]:
    """The boilerplate of ``text`` as half-open ``(start, end)`` spans, sorted: ``[]`` or
    one span that runs to the end of the text."""
    start = boilerplate_start(text)
    return [(start, len(text))] if start < len(text) else []


def describe(text: str) -> str:
    """A human-readable account of what is cut (for ``python -m indexer.boilerplate``)."""
    start = boilerplate_start(text)
    cut = text[start:]
    lines = [line for line in cut.splitlines() if line.strip()]
    head = f"cut {len(cut)} of {len(text)} chars, {len(lines)} non-blank lines, from offset {start}"
    return "\n".join([head, *(f"  - {line.strip()}" for line in lines)])


def main(argv: list[str]) -> int:
    from pathlib import Path

    paths = [Path(a) for a in argv] or sorted(Path("seeds").glob("*.txt"))
    for path in paths:
        print(f"{path}: {describe(path.read_text(encoding='utf-8'))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
