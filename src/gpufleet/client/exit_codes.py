"""Which exit code (``core.exit_codes``) a domain error or an HTTP status stands for.

Commands that work on the database directly fail with domain errors; commands that talk to a
server get an HTTP status, which stands for the same domain error.
"""

from __future__ import annotations

from gpufleet.core import errors as domain
from gpufleet.core.exit_codes import ExitCode

# A subclass takes its nearest base's code; anything else is ERROR.
EXIT_CODE_OF_ERROR: dict[type[domain.DomainError], ExitCode] = {
    domain.Invalid: ExitCode.USAGE,
    domain.Conflict: ExitCode.USAGE,
    domain.TooLarge: ExitCode.USAGE,
    domain.Unauthenticated: ExitCode.AUTH,
    domain.Forbidden: ExitCode.AUTH,
    domain.NotFound: ExitCode.NOT_FOUND,
    domain.TooManyRequests: ExitCode.UNAVAILABLE,
    domain.Unavailable: ExitCode.UNAVAILABLE,
}

# The domain error an HTTP status answers; other 4xx are the caller's mistake.
_ERROR_OF_STATUS: dict[int, type[domain.DomainError]] = {
    401: domain.Unauthenticated,
    403: domain.Forbidden,
    404: domain.NotFound,
    429: domain.TooManyRequests,
    502: domain.Unavailable,
    503: domain.Unavailable,
    504: domain.Unavailable,
}


def exit_code_for_error(error: domain.DomainError) -> ExitCode:
    """The exit code a script sees for a domain error."""
    for kind in type(error).__mro__:
        if kind in EXIT_CODE_OF_ERROR:
            return EXIT_CODE_OF_ERROR[kind]
    return ExitCode.ERROR


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code a script sees for an HTTP error status."""
    default = domain.Invalid if 400 <= status < 500 else domain.DomainError
    return exit_code_for_error(_ERROR_OF_STATUS.get(status, default)(""))
