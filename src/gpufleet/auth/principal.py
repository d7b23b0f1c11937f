"""Who is calling: the verified identity behind a bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from gpufleet.core.roles import SubjectType


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    token_id: str
    # "service-account" for a service account; "user" for an external identity, or for a
    # user's access key (the key speaks for its owner).
    subject_type: str = SubjectType.SERVICE_ACCOUNT.value
    groups: tuple[str, ...] = ()
    # The client id of the credential the token was obtained with ("" for an external token).
    credential: str = ""
    # The credential's token generation the token was issued under (see store.tables).
    generation: int = 0
    # The refresh session a refresh token belongs to ("" for access tokens).
    session_id: str = ""

    def subjects(self) -> list[tuple[str, str]]:
        """The (subject type, id) pairs whose access rules apply to this caller."""
        pairs = [(self.subject_type, self.subject)]
        pairs.extend((SubjectType.GROUP.value, group) for group in self.groups)
        return pairs

    @property
    def audit_subject_type(self) -> str:
        """Run:ai's audit ``subject_type``: ``User`` for people, ``App`` for automation."""
        return "User" if self.subject_type == SubjectType.USER else "App"
