"""The runnable examples in the package's docstrings, one test per docstring, run under the modules' installed names.

pytest's ``--doctest-modules`` imports a file by its path: ``app/evals/metrics.py`` becomes a second module named
``app.evals.metrics`` beside the ``sift.app.evals.metrics`` the rest of Sift imports (two copies of every class, and
``app`` importable by a name Sift never uses). Here each module is imported by its ``sift.*`` name and its examples
found with the standard library's ``doctest``. Examples that need models or data say ``# doctest: +SKIP``.
The UI is left out: its pages are Streamlit scripts that draw when imported.

    .venv/bin/python -m pytest -q tests/test_doctests.py
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("sift.app", "sift.ingestion", "sift.retrieval", "sift.rerank")
SKIPPED = ".migrations"  # alembic's env.py runs a migration when imported


def _module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        paths = importlib.import_module(package).__path__
        names += [m.name for m in pkgutil.walk_packages(paths, f"{package}.") if SKIPPED not in m.name]
    return names


def _docstrings_with_examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = [t for name in _module_names() for t in finder.find(importlib.import_module(name)) if t.examples]
    return sorted(found, key=lambda t: t.name)


@pytest.mark.parametrize("test", [pytest.param(t, id=t.name) for t in _docstrings_with_examples()])
def test_docstring_examples(test: doctest.DocTest):
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=report.append, clear_globs=True)
    assert result.failed == 0, "".join(report)
    if result.attempted == 0:
        pytest.skip("every example here needs models or data (# doctest: +SKIP)")
