"""Which exit code (``core.exit_codes``) a domain error or an HTTP status stands for.

Commands that work on the database directly fail with domain errors; commands that talk to a
server get an HTTP status, which stands for the same domain error.
"""

from __future__ import annotations

from gpufleet.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    TooLarge,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
)
from gpufleet.core.exit_codes import ExitCode

# A subclass takes its nearest base's code; anything else is ERROR.
EXIT_CODE_OF_ERROR: dict[type[DomainError], ExitCode] = {
    Invalid: ExitCode.USAGE,
    Conflict: ExitCode.USAGE,
    TooLarge: ExitCode.USAGE,
    Unauthenticated: ExitCode.AUTH,
    Forbidden: ExitCode.AUTH,
    NotFound: ExitCode.NOT_FOUND,
    TooManyRequests: ExitCode.UNAVAILABLE,
    Unavailable: ExitCode.UNAVAILABLE,
}

# The domain error an HTTP status answers; other 4xx are the caller's mistake.
_ERROR_OF_STATUS: dict[int, type[DomainError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    429: TooManyRequests,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def exit_code_for_error(error: DomainError) -> ExitCode:
    """The exit code a script sees for a domain error."""
    for kind in type(error).__mro__:
        if kind in EXIT_CODE_OF_ERROR:
            return EXIT_CODE_OF_ERROR[kind]
    return ExitCode.ERROR


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code a script sees for an HTTP error status."""
    default = Invalid if 400 <= status < 500 else DomainError
    return exit_code_for_error(_ERROR_OF_STATUS.get(status, default)(""))
