"""This installation's row: its id (made once, race-safe) its first and its latest sweep."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from onboarding.store.models import Installation

__all__ = ["get_installation", "note_sweep"]


def get_installation(session: Session) -> Installation:
    """This history's installation row, created on first use."""
    found = session.exec(select(Installation)).first()
    if found is not None:
        return found
    row = Installation(id=str(uuid.uuid4()))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # pragma: no cover - two first uses at once: the other one won
        return session.exec(select(Installation)).one()
    return row


def note_sweep(session: Session, *, at: datetime) -> Installation:
    """Record a sweep that read the Partner API at ``at`` (the first one is kept for good)."""
    row = get_installation(session)
    row.first_sweep_at = row.first_sweep_at or at
    row.last_sweep_at = at
    session.add(row)
    session.flush()
    return row
