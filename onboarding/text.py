"""Small text helpers shared by the CLI, alerts and artifacts."""

from __future__ import annotations

__all__ = ["mask_phone"]


def mask_phone(phone: str | None, *, visible: int = 4) -> str:
    """``phone`` with every digit but the last ``visible`` replaced by ``*`` (``""`` for None).

    Separators and a leading ``+`` are kept so the number still reads like one:
    ``mask_phone("+49 151 2345678")`` is ``"+** *** ***5678"``.
    """
    if not phone:
        return ""
    digits_seen = 0
    total = sum(ch.isdigit() for ch in phone)
    masked = []
    for ch in phone:
        if ch.isdigit():
            digits_seen += 1
            masked.append(ch if digits_seen > total - visible else "*")
        else:
            masked.append(ch)
    return "".join(masked)
