"""The shape of the house: one installed namespace, and layers whose imports only point down."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# folder -> the sift packages its modules may import (besides their own)
ALLOWED = {
    "ingestion": set(),
    "retrieval": {"ingestion"},
    "rerank": {"retrieval"},  # Candidate, the type retrieval hands on; nothing of the store
    "app": {"ingestion", "retrieval", "rerank"},
    "ui": {"app"},
}


def sift_imports(path: Path) -> set[str]:
    """The sift packages a module imports (``sift.rerank.llm`` -> ``rerank``), and any bare top-level import of one."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
        for name in names:
            parts = name.split(".")
            if parts[0] == "sift" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] in ALLOWED:
                found.add(f"bare {parts[0]}")
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_layers_only_import_downwards(folder):
    wrong = {}
    for path in sorted((REPO / folder).rglob("*.py")):
        bad = sift_imports(path) - ALLOWED[folder] - {folder}
        if bad:
            wrong[str(path.relative_to(REPO))] = sorted(bad)
    assert not wrong, f"imports against the layering: {wrong}"


def test_installed_as_one_namespace(tmp_path):
    """Outside the checkout, `import app` finds nothing of Sift's, while `import sift.app` does."""
    script = (
        "import importlib.util, sift.app, sift.ui, sift.rerank.llm; "
        "print(importlib.util.find_spec('app'), importlib.util.find_spec('ui'), importlib.util.find_spec('rerank'))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "None", "None"]
