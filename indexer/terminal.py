"""Output for a terminal: text from articles, file names and ids never steers it.

An article, a file name or a document id can hold control characters: ANSI escape
sequences that clear the screen or retitle the window, carriage returns that overwrite a
line, newlines that break a one-line layout, bidirectional overrides that reorder what is
shown. Every plain-text line the command-line tools print goes through :func:`printable`,
which shows such characters as visible escapes (``\\x1b``); ``--json`` output goes through
:func:`json_line`, whose strings JSON already escapes (C1 controls too, here).
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls, bidirectional marks, overrides and
# isolates, line/paragraph separators, and lone surrogates (undecodable bytes).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                     "\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ONE_LINE = re.compile("[\t\n]")
_C1 = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: object, *, multiline: bool = False) -> str:
    """``text`` with every character that could steer a terminal shown escaped; newlines
    and tabs are kept only when ``multiline``.

    >>> printable("Drone sale was \\x1b[2Jconfirmed.\\nNext")
    'Drone sale was \\\\x1b[2Jconfirmed.\\\\nNext'
    >>> printable("a\\tb\\nc", multiline=True)
    'a\\tb\\nc'
    """
    out = _UNSAFE.sub(_escape, str(text))
    return out if multiline else _ONE_LINE.sub(_escape, out)


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON (non-ASCII text kept readable), with C1 controls and
    line separators escaped too: the same value, nothing raw for a terminal to act on."""
    return _C1.sub(lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(obj, ensure_ascii=False))

