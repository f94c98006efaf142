"""Where Sift's log goes: one rotating file under the data directory (``data/logs/sift.log`` by default).

The CLI and the app turn errors into one readable line for the user; the traceback behind that line goes here,
through each module's ``logging.getLogger(__name__)``. Only the ``sift`` loggers are configured, and they do not
propagate, so a traceback never reaches the user's terminal or page.

Example::

    >>> from sift.app.config import Settings
    >>> path = configure_logging(Settings(data_dir="/tmp/sift-doc"))
    >>> path.name
    'sift.log'
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from sift.app.config import Settings

logger = logging.getLogger(__name__)

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d %(threadName)s] %(message)s"
MAX_BYTES, BACKUPS = 10 * 2**20, 3  # 40 MiB of history at most


def configure_logging(settings: Settings) -> Path:
    """Send the ``sift`` loggers to the settings' log file at the settings' level; returns the file's path.

    Calling it again with other settings moves the log (tests open many data directories in one process).
    """
    path = settings.resolved_log_file()
    root = logging.getLogger("sift")
    root.setLevel(settings.log_level.upper())
    root.propagate = False
    current = [h for h in root.handlers if isinstance(h, RotatingFileHandler)]
    if current and Path(current[0].baseFilename) == path.resolve():
        return path
    for handler in current:
        root.removeHandler(handler)
        handler.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    return path
