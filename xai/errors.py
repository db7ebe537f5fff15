"""The one base of every error a user can fix.

A :class:`UserError` is a mistake in what the user gave or has (a config key, a file, a folder, a download, a
device), never a bug: the command line prints its message and exits with code 2, without a traceback. Its message
is one line naming the thing and the fix; an indented list may follow it (the files an offline run is missing).
Every module's own error type (``ConfigError``, ``DataError``, ...) subclasses it, so the command line catches one
type and a bug (any other exception) keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the message names the thing and the fix in its first line."""
