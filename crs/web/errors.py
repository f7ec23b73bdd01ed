"""What a web client may read of an error: one sentence, never a server path, a database URL or
a credential. The JSON API (``crs.web.api``) and the chat page (``webui``) both answer with these."""
from __future__ import annotations

from crs.errors import UserError
from crs.store import StoreBusy, StoreError
from crs.web.rate_limits import RateLimited
from crs.web.services import NotReady, ServiceUnavailable

INTERNAL_ERROR = "internal server error: the request could not be completed (the details are in the server log)"
UNAVAILABLE = ("the recommender is not available right now: its catalog, models or database could not be opened "
               "(the reason is in the server log)")


def busy_store(exc: BaseException) -> StoreBusy | None:
    """The busy store behind ``exc`` (itself, or what a service error wraps), if any."""
    if isinstance(exc, StoreBusy):
        return exc
    return exc.__cause__ if isinstance(exc.__cause__, StoreBusy) else None


def public_message(exc: UserError) -> str:
    """What a client may read of a UserError: the store's or the services' own reasons stay in
    the server log (they may name files or hosts), a busy store says to try again."""
    if isinstance(exc, NotReady):  # names the catalog and the build's progress, nothing private
        return str(exc)
    busy = busy_store(exc)
    if busy is not None or isinstance(exc, RateLimited):
        return str(busy or exc)
    if isinstance(exc, (ServiceUnavailable, StoreError)):
        return UNAVAILABLE
    return str(exc)
