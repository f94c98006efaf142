"""FAISS indexes: one per corpus, ids = chunk ids, saved as ``corpus-<id>.v<version>.<kind>.faiss``.

The version in the file name is the corpus's ``index_version`` in SQL when the file was written. Files are written
to a temporary name, flushed to disk and renamed, so a crash leaves either the old file or the new one, never half
of one; a reader that finds no file for the current version rebuilds the index from the vectors kept in SQL.

Example::

    >>> import numpy as np
    >>> index = new_index(dim=4, kind="flat")
    >>> index.add_with_ids(np.eye(4, dtype="float32"), np.array([10, 11, 12, 13]))
    >>> scores, ids = index.search(np.eye(4, dtype="float32")[:1], 2)
    >>> int(ids[0, 0])
    10
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)

# Measured by bench/ingest_search.py on clustered synthetic vectors: 1/8 of the lists gave recall@10 0.79 at 100k,
# FAISS's default HNSW efSearch (16) gave 0.65; these settings trade a little latency for recall near 0.95.
IVF_PROBE_FRACTION = 4
IVF_MIN_PROBES = 16
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 128


def new_index(dim: int, kind: str, training_vectors: np.ndarray | None = None) -> faiss.Index:
    """An empty inner-product index of the given kind, trained on ``training_vectors`` when it needs training."""
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        graph = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap2(graph)
    if kind == "ivf":
        n = 0 if training_vectors is None else len(training_vectors)
        # FAISS wants ~39 training points per list; small corpora get few lists.
        lists = max(1, min(int(math.sqrt(n)), n // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        if n:
            index.train(training_vectors)
        index.nprobe = min(lists, max(IVF_MIN_PROBES, lists // IVF_PROBE_FRACTION))
        return index
    raise ValueError(f"Unknown index type {kind!r}; use flat, ivf or hnsw.")


def build_index(ids: np.ndarray, vectors: np.ndarray, dim: int, kind: str) -> faiss.Index:
    index = new_index(dim, kind, vectors if kind == "ivf" else None)
    if len(ids):
        index.add_with_ids(vectors, ids.astype(np.int64))
    return index


def on_device(index: faiss.Index, device: str) -> faiss.Index:
    """The index on the GPU when the device is CUDA and a GPU build of faiss sees one; else the index itself."""
    if device != "cuda" or not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        return index
    return faiss.index_cpu_to_all_gpus(index)


def supports_incremental_updates(kind: str) -> bool:
    """Flat indexes take adds and removals in place; IVF lists drift from their training and HNSW cannot remove,
    so those two are rebuilt from the stored vectors when the corpus changes."""
    return kind == "flat"


def index_path(folder: Path, corpus_id: int, version: int, kind: str) -> Path:
    return folder / f"corpus-{corpus_id}.v{version}.{kind}.faiss"


def existing_files(folder: Path, corpus_id: int) -> list[tuple[int, Path]]:
    """The index files of a corpus, with the version each was built from."""
    pattern = re.compile(rf"corpus-{corpus_id}\.v(\d+)\.\w+\.faiss")
    found = (pattern.fullmatch(p.name) for p in folder.glob(f"corpus-{corpus_id}.v*.faiss"))
    return [(int(m.group(1)), folder / m.group(0)) for m in found if m]


def corpus_ids_on_disk(folder: Path) -> set[int]:
    """The corpora that have index files (or abandoned temporary ones) in the folder."""
    pattern = re.compile(r"\.?corpus-(\d+)\.v\d+\.")
    if not folder.is_dir():
        return set()
    return {int(m.group(1)) for p in folder.glob("*corpus-*") if (m := pattern.match(p.name))}


def save_index(index: faiss.Index, folder: Path, corpus_id: int, version: int, kind: str) -> Path:
    """Write atomically, then remove the files of older versions (a newer one may come from another process)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = index_path(folder, corpus_id, version, kind)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    faiss.write_index(index, str(temporary))
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    fsync_path(folder)
    for old_version, old in existing_files(folder, corpus_id):
        if old_version <= version and old != target:
            old.unlink(missing_ok=True)
    remove_abandoned_writes(folder, corpus_id)
    return target


def load_index(folder: Path, corpus_id: int, version: int, kind: str) -> faiss.Index | None:
    path = index_path(folder, corpus_id, version, kind)
    if not path.is_file():
        return None
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:  # an unreadable file is treated as missing: SQL holds the vectors
        logger.warning("index file %s is unreadable (%s); it will be rebuilt from SQL", path, exc)
        return None


def remove_indexes(folder: Path, corpus_id: int) -> None:
    for _, path in existing_files(folder, corpus_id):
        path.unlink(missing_ok=True)
    remove_abandoned_writes(folder, corpus_id)


def remove_abandoned_writes(folder: Path, corpus_id: int) -> None:
    """Delete temporary files left by writers that died mid-save (a live writer's file is left alone)."""
    for path in folder.glob(f".corpus-{corpus_id}.v*.faiss.*.tmp"):
        pid = int(path.suffixes[-2].lstrip(".")) if path.suffixes[-2].lstrip(".").isdigit() else None
        if pid is None or not process_alive(pid):
            path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_path(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
