"""Run code in a fresh interpreter where ``import torch`` fails, to prove a path is torch-free."""
from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK = textwrap.dedent("""
    import importlib.abc, sys
    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None
    sys.meta_path.insert(0, _NoTorch())
""")


def run_without_torch(code: str, timeout: float = 600, cwd=None) -> subprocess.CompletedProcess:
    """Run ``code`` with torch blocked; the code should also assert 'torch' not in sys.modules."""
    script = BLOCK + textwrap.dedent(code) + "\nassert 'torch' not in sys.modules\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
