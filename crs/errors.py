"""The error family for problems the user caused and can fix.

Interfaces (CLI, API, chat) show these messages as they are; any other exception is a bug.
"""


class UserError(Exception):
    """Bad input or environment: a malformed row, a missing file, a locked database."""


class StageFailure(RuntimeError):
    """A model-backed dialogue stage (an LLM, a VLM) could not give a usable answer this turn:
    it timed out, was unreachable or returned garbage. The dialogue manager catches exactly this
    and runs the rule-based stage instead; any other exception is a bug and propagates."""
