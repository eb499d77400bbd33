"""Errors the user can fix: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations

import difflib


class UserError(Exception):
    """A problem with the user's input (name, file, config value) and how to fix it."""

    exit_code = 2


def suggest(name: str, choices) -> str:
    """' (did you mean x?)' for the closest names, or a list of what exists."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return f" (did you mean {', '.join(close)}?)"
    if choices:
        shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
        return f" (known: {shown})"
    return ""
