"""Serving the web app in several processes: what ``python app.py --workers N`` becomes once it
has opened the store and the catalog (``python -m crs.web.workers --workers N ...``).

uvicorn runs N workers from the import string ``app:app``; each builds the app from the
``CRS_*`` variables (app.py sets them from its options before it hands over) and loads its own
models and index. Why app.py replaces itself with this module (``os.execv``) instead of calling
``uvicorn.run(workers=N)`` itself: uvicorn starts workers with multiprocessing's spawn, which
runs the parent's main script again in every worker before anything else, and uvicorn's
supervisor kills a worker that does not answer its health check within 5 s. app.py's imports
(gradio, torch) take longer than that on a loaded machine, so its workers were killed and
restarted forever; this module imports nothing heavy. The supervisor left in the parent also
holds none of app.py's libraries (~60 MB instead of ~400).
"""
from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

# The process id tells the workers' lines apart.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"


def worker_logging() -> dict[str, Any]:
    """uvicorn's logging, plus this app's own log lines (INFO, with the process id) in every
    worker: a spawned worker starts with logging unconfigured and would drop them."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["crs"] = {"format": LOG_FORMAT}
    config["handlers"]["crs"] = {"class": "logging.StreamHandler", "formatter": "crs", "stream": "ext://sys.stderr"}
    config["root"] = {"handlers": ["crs"], "level": "INFO"}
    for noisy in ("httpx", "faiss.loader", "bm25s"):  # what app.py's own logging leaves out too
        config["loggers"][noisy] = {"level": "WARNING"}
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve app:app in several worker processes (app.py --workers N)")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--app-dir", required=True, help="the folder of app.py")
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run("app:app", host=args.host, port=args.port, workers=args.workers, app_dir=args.app_dir,
                log_level="warning", log_config=worker_logging())
    return 0


if __name__ == "__main__":
    sys.exit(main())
