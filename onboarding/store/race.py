"""Race-safe inserts: the database's unique index decides who wins, not a read before the write."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

__all__ = ["insert_or_winner"]

Row = TypeVar("Row", bound=SQLModel)


def insert_or_winner(
    session: Session, row: Row, winner: Callable[[], Row | None]
) -> tuple[Row, bool]:
    """Insert ``row`` in a SAVEPOINT and return ``(row, True)``.

    If a unique index rejects it, another writer got there first: return ``(winner(), False)``,
    or re-raise when ``winner`` finds nothing (the violation was about something else).
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = winner()
        if found is None:
            raise
        return found, False
    return row, True
