"""Who is calling: the verified identity behind a bearer token."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    token_id: str
    # "accessKey" for the server's own credentials; "user" for an external identity.
    subject_type: str = "accessKey"
    groups: tuple[str, ...] = ()
    # The access key's token generation the token was issued under (see store.tables).
    generation: int = 0
    # The refresh session a refresh token belongs to ("" for access tokens).
    session_id: str = ""

    def subjects(self) -> list[tuple[str, str]]:
        """The (subject type, id) pairs whose access rules apply to this caller."""
        pairs = [(self.subject_type, self.subject)]
        pairs.extend(("group", group) for group in self.groups)
        return pairs
