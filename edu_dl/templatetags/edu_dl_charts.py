"""``{% chart some_chart %}``: draws a chart built by :mod:`edu_dl.web.charts` with its own
template (line or bar)."""

from __future__ import annotations

from typing import Any

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def chart(context: template.Context, chart: Any) -> SafeString:
    """The chart's SVG, legend and table of numbers; nothing for no chart."""
    if chart is None:
        return SafeString("")
    # render_to_string escapes every value the chart carries (names, labels), as any template.
    return SafeString(
        render_to_string(chart.template, {"chart": chart}, request=context.get("request"))
    )
