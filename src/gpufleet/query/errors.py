"""The one error the query layer raises: a parameter whose value is wrong."""


class QueryError(ValueError):
    """A request parameter that cannot be used; the API answers 400 naming it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message
