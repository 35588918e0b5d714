"""Shared pytest setup: make ``tests/`` importable (for ``mediagen``), run Qt offscreen, and
give numba a writable cache so librosa works where site-packages is read-only."""
import os
import sys
import tempfile
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "diffv2m-numba-cache"))
