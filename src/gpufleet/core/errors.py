"""Domain errors: what went wrong, in words a caller can act on, without a transport.

Every layer below the API raises these. ``api/errors.py`` turns each kind into an HTTP status
and the command line turns each kind into an exit code, each in one table.
"""

from __future__ import annotations


class DomainError(Exception):
    """Something asked of gpufleet that cannot be done; ``str(error)`` says what."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


class Invalid(DomainError):
    """The request itself is wrong: a value, a missing field, a rule it breaks."""


class Unauthenticated(DomainError):
    """The caller could not be identified (no, bad or revoked credentials)."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class NotFound(DomainError):
    """The named thing does not exist, or the caller may not know that it does."""


class Conflict(DomainError):
    """The request contradicts the current state."""


class TooLarge(DomainError):
    """The request is larger than the configured limit."""


class TooManyRequests(DomainError):
    """The caller must wait before trying again."""


class Unavailable(DomainError):
    """Something the answer depends on cannot be reached right now; retrying may work."""


class UpstreamFailed(DomainError):
    """Something the answer depends on answered, but only with failures."""
