"""The shop's log lines: ``time level logger event key=value ...``.

Services log their state changes with a module logger, an event name as the message and the
facts as ``extra`` fields (``logger.info("order.paid", extra={"order_id": 7, ...})``); the
formatter below prints those fields as ``key=value``, so a line can be grepped and parsed
without a format string per event. Values that are secrets (keys, tokens, passwords) or
e-mail bodies are never passed.
"""

from __future__ import annotations

import json
import logging

#: Attributes every LogRecord has; anything else on a record came in through ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _value(value: object) -> str:
    text = str(value)
    # Quoted (and escaped) when it could be misread: a blank, a space, a quote, an equals sign or
    # a line break (which would forge a line of its own).
    if not text or any(c.isspace() or c in "\"='" for c in text):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    """``logging.Formatter`` that appends a record's ``extra`` fields as ``key=value``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = [f"{k}={_value(v)}" for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES]
        return f"{line} {' '.join(fields)}" if fields else line


def configure_logging() -> None:
    """Once at app start: the shop's INFO lines to stderr, ``key=value`` fields included.

    A process that set up logging itself (a root handler: an operator's ``dictConfig``, the test
    runner) is left as it is. Other libraries stay at the root's level (WARNING)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter(LINE_FORMAT))
    root.addHandler(handler)
    shop = logging.getLogger("quantoxbay")
    if shop.level == logging.NOTSET:
        shop.setLevel(logging.INFO)
