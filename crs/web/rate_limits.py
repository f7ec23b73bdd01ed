"""Per-client rate limits for the web app, counted by the ``limits`` library.

Three buckets, each a ``limits`` string such as ``"30/minute"`` (several may be joined with ``;``):

* ``messages``: chat turns, the expensive requests (the JSON API's messages, the chat page's
  queued events, picture uploads to the page);
* ``sessions``: new conversations (each is a row in the store);
* ``requests``: every other API request (reads, feedback, health).

A client is its address as the server sees it (``request.client.host``). Behind a reverse proxy
that is the proxy, so every visitor would share one bucket: run uvicorn with ``--proxy-headers
--forwarded-allow-ips=<the proxy's address>`` so that the address is the visitor's.

Why ``limits`` and not slowapi (which is built on it): slowapi finds a request's limits through
the app's routes, and the gradio page is a mounted sub-application whose paths it never sees. One
:meth:`RateLimiter.hit` called by the API's routes (``crs.web.api``) and by the page's guard
(``webui.guard``) covers both with one storage and one answer (429 with ``Retry-After``).
"""
from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from crs.errors import UserError
from crs.settings import RateLimits

__all__ = ["RateLimits", "RateLimited", "RateLimiter"]

class RateLimited(UserError):
    """Too many requests from one client; ``retry_after`` is the seconds until one is allowed."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """One app's counters: a moving window per (bucket, client), in this process's memory.
    (Several server processes would each count on their own; a shared ``limits`` storage such
    as Redis would make the limit global.)"""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets = {name: parse_many(getattr(limits, name)) for name in ("messages", "sessions", "requests")}
        self._window = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, bucket: str, client: str) -> None:
        """Count one request of ``client`` in ``bucket``; :class:`RateLimited` when over a limit."""
        if not self.limits.enabled:
            return
        for item in self._buckets[bucket]:
            if not self._window.hit(item, bucket, client):
                reset = self._window.get_window_stats(item, bucket, client).reset_time
                raise RateLimited(_message(item), max(1, math.ceil(reset - time.time())))


def _message(item: RateLimitItem) -> str:
    return f"too many requests: at most {item} from one address; wait a little and try again"
