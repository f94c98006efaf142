"""``sift serve``: the HTTP API on uvicorn, with the ingestion worker beside it, started again if it dies or hangs.

With auth off (the default) it listens only on loopback, where only this machine's users reach it; bound to any
other address it refuses to start unless auth is on (``Settings.check_listening``).

Example::

    SIFT_AUTH=true sift serve --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import logging

from sift.app.config import Settings
from sift.app.jobs import Jobs
from sift.app.logs import configure_logging
from sift.app.pipeline import Sift
from sift.app.worker_control import WorkerSupervisor

logger = logging.getLogger(__name__)

APP_FACTORY = "sift.app.api.server:create_app"


def serve(settings: Settings) -> None:
    """Listen on the settings' host and port with their number of HTTP workers, until stopped."""
    import uvicorn

    settings.check_listening(settings.serve_host)
    configure_logging(settings)
    jobs = Jobs.of(Sift(settings))  # migrates the database once, before any worker opens it
    jobs.remove_orphaned_uploads()
    # Its worker queues again the jobs a stopped server left running; it watches the heartbeats of the worker's jobs.
    supervisor = WorkerSupervisor(settings, jobs).start()
    logger.info(
        "Serving on %s:%d, %d workers, auth %s",
        settings.serve_host,
        settings.serve_port,
        settings.serve_workers,
        "on" if settings.auth else "off",
    )
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
            timeout_worker_healthcheck=settings.serve_worker_healthcheck_seconds,
            timeout_graceful_shutdown=settings.serve_shutdown_seconds,
            log_level=settings.log_level,
            # uvicorn believes X-Forwarded-For from loopback unless told otherwise: only configured proxies' is.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies,
        )
    finally:
        supervisor.stop()
