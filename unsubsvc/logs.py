"""Keep unsubscribe and preference tokens out of every log line.

The path of ``/u/<token>`` and ``/p/<token>`` is a credential: whoever holds it
can unsubscribe that recipient or change their preferences (RFC 8058 §6), so
access logs, Flask's exception log and gunicorn's own errors show it masked.
The rule is defined once here; ``create_app`` and gunicorn's logger use it.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

#: A path segment after ``/u/`` or ``/p/`` (the routes of web/oneclick.py and
#: web/center.py), also percent-encoded inside a query (``?next=%2Fu%2F…``).
#: It masks any segment there, tampered or not: a near-miss of a real token
#: is worth as much to whoever reads the log.
TOKEN_IN_PATH = re.compile(r"((?:/|%2[Ff])[up](?:/|%2[Ff]))[^/?#\s\"'<>]+")

MASK = r"\1<token>"


def mask_tokens(text: str) -> str:
    """Return ``text`` with the token of every /u/… and /p/… path replaced by ``<token>``."""
    return TOKEN_IN_PATH.sub(MASK, text)


class TokenFilter(logging.Filter):
    """Mask tokens in a record's message, arguments and exception text; drop nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place so every handler after this one sees it masked."""
        try:
            message = record.getMessage()
        except Exception:  # the handler reports it, printing msg and args: mask those
            record.msg = mask_tokens(str(record.msg))
            record.args = tuple(mask_tokens(str(arg)) for arg in _arguments(record.args))
        else:
            masked = mask_tokens(message)
            if masked != message:
                # Rendered once here: a token may sit in msg or in any of args.
                record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            # What Formatter.format would print; it reuses exc_text when set.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_tokens(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_tokens(record.stack_info)
        return True


def _arguments(args: Any) -> tuple[Any, ...]:
    if args is None:
        return ()
    return args if isinstance(args, tuple) else (args,)


#: One instance, so installing it again (another create_app) adds nothing.
TOKEN_FILTER = TokenFilter()


def mask_logger(logger: logging.Logger) -> None:
    """Mask tokens in ``logger``'s records and in those of its children.

    A logger's filters see only the records logged on it, while a handler's
    filters see every record that reaches the handler, children's included
    (Python docs, logging "Logging Flow"). So the filter goes on the logger and
    on each handler its records reach, and on logging.lastResort, which prints
    the records of loggers nobody configured.
    """
    logger.addFilter(TOKEN_FILTER)
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            handler.addFilter(TOKEN_FILTER)
        current = current.parent if current.propagate else None
    if logging.lastResort is not None:
        logging.lastResort.addFilter(TOKEN_FILTER)


if sys.platform != "win32":  # gunicorn is not installed on Windows (waitress serves there)
    from gunicorn.glogging import Logger

    class RedactingLogger(Logger):  # type: ignore[misc]
        """Gunicorn's logger with tokens masked in its access and error logs.

        Its access line (request line, Referer) and its own errors ("Error
        handling request /u/…") both carry the path.
        """

        def setup(self, cfg: Any) -> None:
            """Set up gunicorn's handlers, then mask what they write; runs again on reload."""
            super().setup(cfg)
            mask_logger(self.error_log)
            mask_logger(self.access_log)
