"""Exit codes of every ``gpufleet`` command, in one place (the table is in docs/operations.md).

A failure an operator can fix (a busy port, a database that refuses the password) ends the
command with one line on stderr and one of these codes, never with a traceback; 1 remains for
the unexpected, which keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    BAD_SETTINGS = 2
    CANNOT_LISTEN = 3
    DATABASE_UNREACHABLE = 4
    DATABASE_CREDENTIALS_REFUSED = 5
    SCHEMA_TOO_NEW = 6
    ACCESS_KEY_REFUSED = 7
    NO_KUBERNETES_CONFIG = 8
