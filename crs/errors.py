"""The error family for problems the user caused and can fix.

Interfaces (CLI, API, chat) show these messages as they are; any other exception is a bug.
"""


class UserError(Exception):
    """Bad input or environment: a malformed row, a missing file, a locked database."""
