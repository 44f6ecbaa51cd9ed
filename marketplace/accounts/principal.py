"""The acting principal: who is calling, for which organization, in which role."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: str
    organization_id: str
    kind: str  # the organization's kind: studio | developer | operator
    role: str  # owner | member
    key_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    @property
    def is_studio(self) -> bool:
        return self.kind == "studio"

    @property
    def is_developer(self) -> bool:
        return self.kind == "developer"

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"
