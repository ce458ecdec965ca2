"""Template filters that show stored values to people: a student's answer, a share in percent.

They return plain text, never safe strings: the template escapes what they return, as it does any
user-written value.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django import template

from edu_dl.selectors.progress import estimate_method_label

register = template.Library()


def _option_texts(item: Any) -> dict[str, str]:
    options = getattr(item, "options", None) or []
    return {
        str(option["id"]): str(option.get("text", option["id"]))
        for option in options
        if isinstance(option, dict) and "id" in option
    }


@register.filter
def answer_text(answer: Any, item: Any = None) -> str:
    """The answer as text: the text as written, a number, or the chosen options (by their text
    when ``item`` is given and names them); empty for no answer."""
    if answer is None:
        return ""
    if isinstance(answer, str):
        texts = _option_texts(item)
        return texts.get(answer, answer) if texts else answer
    if isinstance(answer, bool):
        return str(answer)
    if isinstance(answer, int | float):
        return f"{answer:g}"
    if isinstance(answer, list):
        texts = _option_texts(item)
        return ", ".join(texts.get(str(entry), str(entry)) for entry in answer)
    return json.dumps(answer, ensure_ascii=False)


@register.filter
def percent(share: Any) -> str:
    """A share from 0 to 1 as a whole percentage ("83%"); empty when there is none."""
    if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share):
        return ""
    return f"{round(share * 100)}%"


@register.filter
def signed(value: Any) -> str:
    """A weight with its sign and at most three decimals ("+0.75", "-0.2"); empty for none."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return ""
    return f"{round(value, 3):+g}"


@register.filter
def estimate_method(method: Any) -> str:
    """How a mastery estimate was made, in the reader's language (see
    :func:`edu_dl.selectors.progress.estimate_method_label`)."""
    return estimate_method_label(str(method))
