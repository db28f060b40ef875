"""The house's layering holds: the import contracts in pyproject.toml, checked by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    # web and eval use rag, rag uses embeddings; question time never imports build time;
    # only embeddings imports the model libraries.
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert command, "lint-imports is missing: pip install -e '.[test]'"
    done = subprocess.run([command], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_answering_a_question_loads_no_build_module():
    # Opening a collection may build; answering from an open engine must not need to.
    code = (
        "import sys, rag.engine, rag.search.milvus, rag.examples\n"
        "loaded = [m for m in sys.modules if m.startswith(('rag.build', 'rag.ingest'))]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
