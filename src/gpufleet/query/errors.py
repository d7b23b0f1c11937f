"""The one error the query layer raises: a parameter whose value is wrong."""

from gpufleet.core.errors import Invalid


class QueryError(Invalid):
    """A request parameter that cannot be used; the message names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"Invalid query parameter {parameter!r}: {message}")
        self.parameter = parameter
        self.message = message
