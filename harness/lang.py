"""The two languages halab teaches in, and which one a user's locale asks for."""

from __future__ import annotations

import os

LANGS = ("ko", "en")


def default_lang() -> str:
    """Korean where the locale says so, English elsewhere."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(var):
            return "ko" if os.environ[var].startswith("ko") else "en"
    return "en"
