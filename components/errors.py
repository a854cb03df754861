"""The one kind of error a user acts on: bad input they can fix.

A setting, a path, an option or a missing stage output. Each room's own error (ConfigError,
SourceError, DescribeError, FeaturesError, BenchmarkError, ModelLoadError, ...) derives from
InputError, so the `regionedit` command shows any of them the same way: `error: <message>` on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input the user can fix; the message says which and what to do about it."""
