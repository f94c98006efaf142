"""Each file parsed in a child process with CPU-time and memory limits, so no file can stall or kill Sift.

A parser is the part of Sift that runs on untrusted bytes: a pathological input can make a C library loop while
holding the GIL (a 3 KB Markdown file once froze the app for every user for 40 s) or allocate gigabytes. Here the
bytes -> :class:`LoadedDocument` step runs elsewhere: an :class:`IsolatedParser` starts one helper process (a fresh
interpreter with the loaders imported, ``python -m sift.ingestion.isolation``) for a batch of files, and the helper
forks one child per file under ``RLIMIT_CPU`` and ``RLIMIT_AS``. The caller keeps serving while a file is parsed, and
a file that exceeds a limit, or crashes its parser, fails alone with the reason. Results come back as JSON, never as
pickles: a child that parsed hostile bytes does not get to run code in the caller. Chunking and embedding stay in
the caller (they run on text the loaders already bounded).

Example::

    >>> with IsolatedParser(ParseLimits(cpu_seconds=60, memory_mb=2048)) as parser:
    ...     parser.load("notes.md", b"# Tides\\nThe moon pulls the sea.", 2**20).title
    'Tides'
"""

from __future__ import annotations

import json
import logging
import os
import resource
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from sift.ingestion.document import LoadedDocument, PageSpan, SectionSpan, UnreadableFile
from sift.ingestion.loaders import load_document

logger = logging.getLogger(__name__)

# Imported once by the helper, not by every child it forks.
_PARSER_LIBRARIES = ["pypdf", "docx", "lxml.html", "inscriptis", "markdown_it", "yaml"]
# A child that has not answered within this multiple of its CPU allowance is waiting on something, not parsing.
_WALL_CLOCK_FACTOR = 3


@dataclass(frozen=True)
class ParseLimits:
    """What parsing one file may use: seconds of CPU time and MiB of memory beyond the parser's own footprint."""

    cpu_seconds: int
    memory_mb: int


class IsolatedParser:
    """``load_document`` run in a helper process under ``limits``; one helper serves many files in turn. Close it
    (or use it as a context manager) when the batch is done."""

    def __init__(self, limits: ParseLimits):
        self.limits = limits
        self._helper: subprocess.Popen | None = None

    def __enter__(self) -> IsolatedParser:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def load(self, source: str, data: bytes, max_expanded_bytes: int) -> LoadedDocument:
        """The file's document; UnreadableFile with the reason when it cannot be read or needs more than the limits
        allow."""
        request = {"source": source, "size": len(data), "max_expanded_bytes": max_expanded_bytes, **asdict(self.limits)}
        helper = self._running()
        try:
            helper.stdin.write(json.dumps(request).encode() + b"\n" + data)
            helper.stdin.flush()
            answer = helper.stdout.readline()
        except OSError:
            answer = b""
        if not answer:  # the helper itself died: the next file gets a new one
            self.close()
            raise UnreadableFile("the parser process stopped unexpectedly; try the file again")
        outcome = json.loads(answer)
        if outcome["kind"] == "document":
            return _document_from_json(outcome["document"])
        raise UnreadableFile(_reason(outcome, self.limits))

    def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is None:
            return
        try:
            helper.stdin.close()
            helper.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            helper.kill()
            helper.wait()

    def _running(self) -> subprocess.Popen:
        if self._helper is None or self._helper.poll() is not None:
            self._helper = subprocess.Popen(
                [sys.executable, "-m", "sift.ingestion.isolation"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        return self._helper


def _reason(outcome: dict, limits: ParseLimits) -> str:
    kind = outcome["kind"]
    if kind in ("unreadable", "error"):
        return outcome["message"]
    if kind == "memory":
        return f"refused: parsing the file needed more than {limits.memory_mb:,} MiB of memory"
    if kind == "stalled":
        return f"refused: parsing the file did not finish in {limits.cpu_seconds * _WALL_CLOCK_FACTOR} s"
    if outcome.get("signal") in (signal.SIGXCPU, signal.SIGKILL):
        return f"refused: parsing the file took more than {limits.cpu_seconds} s of CPU time"
    how = signal.Signals(outcome["signal"]).name if outcome.get("signal") else f"exit status {outcome.get('status')}"
    return f"the parser crashed on this file ({how})"


# ---------------------------------------------------------------------------------------------- the helper process


def _serve() -> None:
    """The helper's loop: a JSON request line and the file's bytes in on stdin, one JSON answer line out."""
    import importlib

    for name in _PARSER_LIBRARIES:
        importlib.import_module(name)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answers
    requests = sys.stdin.buffer
    while header := requests.readline():
        request = json.loads(header)
        data = requests.read(request["size"])
        answers.write(json.dumps(_parse_in_child(request, data)).encode() + b"\n")
        answers.flush()


def _parse_in_child(request: dict, data: bytes) -> dict:
    """Fork, parse under the limits in the child, and read its JSON outcome; the child's death is an outcome too."""
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the helper is single-threaded, so forking it is safe
        os.close(readable)
        with os.fdopen(writable, "wb") as out:
            out.write(_parse(request, data))
        os._exit(0)
    os.close(writable)
    chunks, stalled = [], False
    deadline = time.monotonic() + request["cpu_seconds"] * _WALL_CLOCK_FACTOR
    with os.fdopen(readable, "rb", buffering=0) as pipe:
        while True:
            ready, _, _ = select.select([pipe], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                stalled = True
                os.kill(pid, signal.SIGKILL)
                break
            if not (chunk := pipe.read(1 << 20)):
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if stalled:
        return {"kind": "stalled"}
    if os.WIFSIGNALED(status):
        return {"kind": "died", "signal": os.WTERMSIG(status)}
    if os.WEXITSTATUS(status) != 0 or not chunks:
        return {"kind": "died", "status": os.WEXITSTATUS(status)}
    return json.loads(b"".join(chunks))


def _parse(request: dict, data: bytes) -> bytes:
    # Past the soft limit the kernel sends SIGXCPU, whose default action ends the process; the hard limit a second
    # later is SIGKILL, for a parser that blocks that signal.
    cpu = request["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if (footprint := _address_space_bytes()) is not None:
        ceiling = footprint + request["memory_mb"] * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    try:
        document = load_document(request["source"], data, request["max_expanded_bytes"])
        return json.dumps({"kind": "document", "document": _document_json(document)}).encode()
    except UnreadableFile as exc:
        return json.dumps({"kind": "unreadable", "message": str(exc)}).encode()
    except MemoryError:
        return json.dumps({"kind": "memory"}).encode()
    except Exception as exc:  # the loaders turn every known failure into UnreadableFile; say what this one was
        message = f"unreadable file ({type(exc).__name__}: {str(exc)[:200]})"
        return json.dumps({"kind": "error", "message": message}).encode()


def _address_space_bytes() -> int | None:
    """This process's virtual memory size, which RLIMIT_AS counts (the libraries the helper mapped included); None
    where /proc does not say (not Linux): the CPU limit still holds there."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _document_json(document: LoadedDocument) -> dict:
    date = document.document_date
    return {**asdict(document), "document_date": date.isoformat() if date else None}


def _document_from_json(fields: dict) -> LoadedDocument:
    date = fields["document_date"]
    return LoadedDocument(
        text=fields["text"],
        media_type=fields["media_type"],
        title=fields["title"],
        document_date=datetime.fromisoformat(date) if date else None,
        pages=tuple(PageSpan(**page) for page in fields["pages"]),
        sections=tuple(
            SectionSpan(section["start_char"], section["end_char"], tuple(section["path"]))
            for section in fields["sections"]
        ),
    )


if __name__ == "__main__":
    _serve()
