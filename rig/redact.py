"""No secret in any log: a logging filter that masks bearer tokens, ``Authorization``
header values and configured keys in every record, message and traceback alike.

Neutral (it imports nothing from rig), so the mock, the Locust entry points and the CLI
install the same one. :func:`install_redaction` puts it where every record passes: on the
root logger, on the handlers of the root and uvicorn loggers, and in the log-record
factory (so records of loggers that do not propagate, and handlers added later, by Locust
say, are masked too). A masked secret keeps its first three characters, so an operator
can still tell keys apart.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "RedactingFilter", "install_redaction", "redact"]

MASK = "***"

_PATTERNS = (
    # "Authorization: Bearer sk-...", "'authorization': 'Bearer sk-...'", (b'authorization', ...)
    re.compile(r"(?i)(\bbearer\s+)([^\s'\",;)\]}]+)"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*b?['\"]?)(?!bearer\s)([^\s'\",;)\]}]+)"),
    re.compile(r"(?i)((?:api[_-]?key|x-api-key)['\"]?\s*[:=,]\s*b?['\"]?)([^\s'\",;)\]}&]+)"),
)


def _mask(secret: str) -> str:
    return secret[:3] + MASK if len(secret) > 8 else MASK


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with bearer tokens, authorization values, ``api_key=`` values and every
    one of ``secrets`` masked."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, _mask(secret))
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + _mask(m.group(2)), text)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message (arguments merged in) and its traceback text;
    never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Mask these too (keys learnt after installation)."""
        self.secrets.update(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_rig_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the handler report it as usual
            return True
        masked = redact(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        record._rig_redacted = True
        return True


def install_redaction(
    secrets: Iterable[str] = (),
    loggers: Iterable[str] = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "locust"),
) -> RedactingFilter:
    """Install the process's one :class:`RedactingFilter` (or add ``secrets`` to it):
    on the named loggers (``""``: root) and their handlers, and in the record factory.
    Idempotent: call it again after handlers were configured."""
    factory = logging.getLogRecordFactory()
    found: RedactingFilter | None = getattr(factory, "rig_filter", None)
    if found is None:
        found = RedactingFilter(secrets)

        def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = factory(*args, **kwargs)
            active.filter(record)
            return record

        active = found
        redacting_factory.rig_filter = found  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)
    else:
        found.add_secrets(secrets)
    for name in loggers:
        logger = logging.getLogger(name)
        if found not in logger.filters:
            logger.addFilter(found)
        for handler in logger.handlers:
            if found not in handler.filters:
                handler.addFilter(found)
    return found
