"""Domain errors, mapped to HTTP answers in one place (``unsubsvc.web.errors``)."""

from __future__ import annotations


class UnsubsvcError(Exception):
    """Base class of every error unsubsvc reports to a person or a program."""

    #: HTTP status the web layer answers with.
    status = 400


class InvalidToken(UnsubsvcError):
    """A token that is malformed, tampered with, signed with a foreign key or expired."""

    status = 400


class NotFound(UnsubsvcError):
    """Something a valid request names does not exist (a list, a subscriber)."""

    status = 404


class UnknownList(NotFound):
    """No list has that name or id."""


class InvalidInput(UnsubsvcError):
    """A value given by a caller is not acceptable (an address, a slug, a form)."""

    status = 400


class Conflict(UnsubsvcError):
    """The change would clash with what is stored (a list name already taken)."""

    status = 409
