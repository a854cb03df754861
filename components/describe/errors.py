"""The one error of `describe` that a user acts on: a setting, a missing input or engine."""

from __future__ import annotations

from components.errors import InputError


class DescribeError(InputError):
    """A describe setting or input is unusable; the message says which and what to do."""
