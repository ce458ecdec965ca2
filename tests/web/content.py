"""Reading rendered pages in tests."""

from __future__ import annotations

import re


def shown(text: str, content: str) -> bool:
    """Whether ``text`` is on the page as itself, not inside a longer run of letters and digits:
    the page's random CSRF token may hold "bob" or "dkt" somewhere in its 64 characters."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(text)}(?![A-Za-z0-9])", content) is not None
