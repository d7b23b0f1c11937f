"""The reference ``Error`` body, used by every non-2xx response."""

from pydantic import BaseModel, Field


class Error(BaseModel):
    code: int = Field(ge=100, le=599)
    message: str
    details: str | None = None


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` entries for the given status codes, all in the Error shape."""
    descriptions = {
        400: "Bad request.",
        401: "Unauthorized",
        403: "Forbidden",
        404: "The specified resource was not found",
        409: "The specified resource already exists",
        413: "Request entity too large.",
        429: "Too many requests.",
        500: "unexpected error",
        503: "unexpected error",
    }
    return {code: {"model": Error, "description": descriptions[code]} for code in codes}
