"""Exit codes of every ``gpufleet`` command, in one table (listed in docs/operations.md).

A failure an operator or a script can act on (a busy port, a database that refuses the
password, a 404 from the server) ends the command with one line on stderr and one of these
codes, never with a traceback; ``ERROR`` remains for the unexpected, which keeps its traceback.
Codes 3-5 are shared by the terminal client and the agent, which talk to a server; 6-10 are the
server's and the agent's own startup failures.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2  # bad arguments or settings, or a request the server rejected as invalid
    AUTH = 3  # credentials refused: not logged in, 401/403, an agent's refused access key
    NOT_FOUND = 4
    UNAVAILABLE = 5  # the server cannot be reached or asks to retry later
    CANNOT_LISTEN = 6
    DATABASE_UNREACHABLE = 7
    DATABASE_CREDENTIALS_REFUSED = 8
    SCHEMA_TOO_NEW = 9
    NO_KUBERNETES_CONFIG = 10
    INTERRUPTED = 130
