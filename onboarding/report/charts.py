"""The report's charts as inline SVG, drawn by pygal with no JavaScript and no external links.

pygal's interactive tooltips load a script from a CDN by default; ``js=[]`` turns that off, and
the generator comments (which name pygal's web site) and the inline tooltip configuration script
are stripped: the SVG is static and works offline.

Importing pygal appends a legacy ``sys.meta_path`` finder (for its optional map plugins, which we
do not use); every later failed import in the process then raises an ``ImportWarning``.
:func:`_pygal` imports it once and takes that finder out again.
"""

from __future__ import annotations

import functools
import re
import sys
from types import ModuleType
from typing import Any

from onboarding.report.markdown import funnel_rows
from onboarding.report.model import Report

__all__ = ["alerts_chart", "duration_unit", "funnel_chart", "ready_chart"]

_STRIP = re.compile(r"<!--.*?-->|<script\b.*?</script>", re.DOTALL | re.IGNORECASE)
_UNITS = ((86_400.0, "days"), (3_600.0, "hours"), (60.0, "minutes"), (1.0, "seconds"))


@functools.cache
def _pygal() -> ModuleType:
    """pygal, imported once, without the import hook it installs."""
    import pygal

    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__ != "pygal"]
    return pygal


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "js": [],
        "disable_xml_declaration": True,
        "width": 720,
        "height": 320,
        "explicit_size": False,
        "legend_at_bottom": True,
        "print_values": False,
        **extra,
    }


def _svg(chart: Any) -> str:
    """The chart's SVG without comments or pygal's (inline, unused) tooltip configuration."""
    return _STRIP.sub("", chart.render(is_unicode=True))


def duration_unit(largest_seconds: float) -> tuple[float, str]:
    """``(divisor, name)`` of the unit that shows durations up to ``largest_seconds`` best."""
    for divisor, name in _UNITS:
        if largest_seconds >= 2 * divisor:
            return divisor, name
    return 1.0, "seconds"


def funnel_chart(report: Report) -> str:
    """A horizontal bar per funnel stage (signed up -> completed, failed, in progress)."""
    pygal = _pygal()
    chart = pygal.HorizontalBar(**_config(show_legend=False, title="Onboarding funnel"))
    rows = list(reversed(funnel_rows(report)))
    chart.x_labels = [name for name, _, _ in rows]
    chart.add("runs", [count for _, count, _ in rows])
    return _svg(chart)


def ready_chart(report: Report) -> str:
    """p50/p90/p99 time to ready per UTC day, as lines (days without a ready run are gaps)."""
    pygal = _pygal()
    values = [v for d in report.time_to_ready for v in (d.p50, d.p90, d.p99) if v is not None]
    divisor, unit = duration_unit(max(values, default=0.0))
    chart = pygal.Line(
        **_config(title=f"Time to ready ({unit})", allow_interruptions=True, x_label_rotation=30)
    )
    chart.x_labels = [f"{d.day:%m-%d}" for d in report.time_to_ready]
    for name in ("p50", "p90", "p99"):
        series = [getattr(d, name) for d in report.time_to_ready]
        chart.add(name, [None if v is None else round(v / divisor, 2) for v in series])
    return _svg(chart)


def alerts_chart(report: Report) -> str:
    """Alerts raised, resolved and open, per kind."""
    pygal = _pygal()
    chart = pygal.Bar(**_config(title="Alerts by kind"))
    kinds = report.alerts.by_kind
    chart.x_labels = [k.kind for k in kinds]
    chart.add("raised", [k.raised for k in kinds])
    chart.add("resolved", [k.resolved for k in kinds])
    chart.add("open", [k.open for k in kinds])
    return _svg(chart)
