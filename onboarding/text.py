"""Small text helpers shared by the CLI, alerts, artifacts and the report.

Phone numbers are masked where a field holds one (:func:`mask_phone`), and inside free text only
where that known number appears (:func:`mask_phone_in`): masking every long run of digits
also mangles channel ids (``6e47562780CH``) and tells a reader nothing true.
"""

from __future__ import annotations

import re

__all__ = ["mask_phone", "mask_phone_in"]

_SEPARATORS = r"[\s().-]*"
_MIN_DIGITS = 6  # shorter "numbers" would match all over free text


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


def mask_phone_in(text: str, phone: str | None) -> str:
    """``text`` with each appearance of the number ``phone`` masked, however it is spaced.

    ``mask_phone_in("no service on +49 151 1234 5678", "+4915112345678")`` gives
    ``"no service on +** *** **** 5678"``; other digits in ``text`` are left alone.
    """
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) < _MIN_DIGITS:
        return text
    pattern = re.compile(r"(?<!\d)\+?" + _SEPARATORS.join(digits) + r"(?!\d)")
    return pattern.sub(lambda match: mask_phone(match.group(0)), text)
