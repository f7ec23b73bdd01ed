from .db import Store, StoreBusy, StoreError, open_store, redact_url

__all__ = ["Store", "StoreBusy", "StoreError", "open_store", "redact_url"]
