"""Checks for text people type that the shop stores and shows again.

One-line values (titles, tags, names, codes, e-mail addresses) end up in page titles, e-mail
headers, CSV exports and logs, where a line break or another control character can forge a
header or a log line, or hide text. They are refused, with a message that names the field,
rather than silently altered. Descriptions may keep their line breaks and tabs.
"""

from __future__ import annotations

import unicodedata

from quantoxbay.services import DomainError

#: Unicode's line and paragraph separators break lines too, though they are not "Cc".
_LINE_SEPARATORS = frozenset("\u2028\u2029")
_MULTI_LINE_ALLOWED = frozenset("\n\r\t")


class ControlCharacterError(DomainError):
    """A line break or other control character where the value must be plain text."""


def _is_control(char: str) -> bool:
    # "Cc": C0 (U+0000-U+001F), DEL and C1 (U+0080-U+009F).
    return unicodedata.category(char) == "Cc" or char in _LINE_SEPARATORS


def one_line(value: str, field: str) -> str:
    """Return ``value`` unchanged, or raise when it holds a line break or a control character."""
    if any(_is_control(char) for char in value):
        raise ControlCharacterError(f"{field} must be a single line without control characters.")
    return value


def multi_line(value: str, field: str) -> str:
    """Like ``one_line``, but line breaks and tabs may stay."""
    if any(_is_control(char) and char not in _MULTI_LINE_ALLOWED for char in value):
        raise ControlCharacterError(f"{field} cannot contain control characters.")
    return value
