"""What one doctor check found: a status, one line of summary, one line of fix, safe details."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

__all__ = ["Check", "Status"]


class Status(StrEnum):
    """``ok`` (✓), ``warn`` (!: works, but look at it) or ``fail`` (✗: broken)."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def mark(self) -> str:
        """The one-character mark printed before the check."""
        return {"ok": "✓", "warn": "!", "fail": "✗"}[self.value]


class Check(BaseModel):
    """One check's outcome; ``details`` hold names and counts, never secrets or personal data."""

    name: str
    status: Status
    summary: str
    fix: str | None = None
    details: list[str] = Field(default_factory=list)

    @classmethod
    def ok(cls, name: str, summary: str, *, details: list[str] | None = None) -> Check:
        """A passing check."""
        return cls(name=name, status=Status.OK, summary=summary, details=details or [])

    @classmethod
    def warn(
        cls, name: str, summary: str, fix: str | None = None, *, details: list[str] | None = None
    ) -> Check:
        """A check that works but deserves a look."""
        return cls(name=name, status=Status.WARN, summary=summary, fix=fix, details=details or [])

    @classmethod
    def fail(
        cls, name: str, summary: str, fix: str | None = None, *, details: list[str] | None = None
    ) -> Check:
        """A broken check, with how to fix it."""
        return cls(name=name, status=Status.FAIL, summary=summary, fix=fix, details=details or [])
