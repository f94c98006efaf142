"""``sift serve``: the HTTP API on uvicorn, with the ingestion worker beside it.

Accounts and keys are not implemented yet (issue #13), so the API has no login: it refuses to listen anywhere but on
loopback, where only this machine's users reach it.

Example::

    >>> check_loopback("127.0.0.1")
    >>> try:
    ...     check_loopback("0.0.0.0")
    ... except ValueError as refused:
    ...     print(str(refused)[:76])
    Refusing to listen on 0.0.0.0: accounts and API keys are not implemented yet
"""

from __future__ import annotations

import ipaddress
import logging

from sift.app.config import Settings
from sift.app.job_worker import start_worker
from sift.app.jobs import Jobs
from sift.app.logs import configure_logging
from sift.app.pipeline import Sift

logger = logging.getLogger(__name__)

APP_FACTORY = "sift.app.api.server:create_app"


def check_loopback(host: str) -> None:
    """Raise ValueError unless ``host`` is a loopback address (or localhost)."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False  # a host name: it may resolve to anything
    if not loopback:
        raise ValueError(
            f"Refusing to listen on {host}: accounts and API keys are not implemented yet, so the API has no login "
            "and would share every corpus, with delete endpoints, with the network. Listen on 127.0.0.1, ::1 or "
            "localhost."
        )


def serve(settings: Settings) -> None:
    """Listen on the settings' host and port with their number of HTTP workers, until stopped."""
    import uvicorn

    check_loopback(settings.serve_host)
    configure_logging(settings)
    jobs = Jobs.of(Sift(settings))  # migrates the database once, before any worker opens it
    # Before any worker runs: a job still "running" now was running in a server that was stopped or killed.
    jobs.requeue_interrupted()
    jobs.remove_orphaned_uploads()
    worker = start_worker(settings)
    logger.info("Serving on %s:%d, %d workers", settings.serve_host, settings.serve_port, settings.serve_workers)
    try:
        if settings.serve_workers == 1:
            from sift.app.api.server import create_app

            app = create_app(settings)
        else:
            app = APP_FACTORY  # each worker process builds its own app (settings from the environment)
        uvicorn.run(
            app,
            host=settings.serve_host,
            port=settings.serve_port,
            workers=settings.serve_workers,
            factory=settings.serve_workers > 1,
            log_level=settings.log_level,
        )
    finally:
        worker.terminate()
        worker.join(timeout=10)
