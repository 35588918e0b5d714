"""The code says where things are: in export/ and plugin/ (mapped into diffv2m by package-dir)
no relative import climbs out of its own folder, so every import names a real place."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _climbing_imports(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                found.append(f"{path.relative_to(folder.parent)}:{node.lineno}: "
                             f"from {'.' * node.level}{node.module or ''} import ...")
    return found


def test_no_relative_import_leaves_its_folder():
    found = _climbing_imports(ROOT / "export") + _climbing_imports(ROOT / "plugin")
    assert not found, "relative imports that climb out of their folder:\n" + "\n".join(found)


def test_the_check_sees_a_climbing_import(tmp_path):
    (tmp_path / "m.py").write_text("from ..errors import UserError\nfrom .x import y\n")
    assert len(_climbing_imports(tmp_path)) == 1


def test_core_does_not_reach_into_mapped_folders_relatively():
    """diffv2m/ names export/ and plugin/ by their full names (they are not folders of it)."""
    found = []
    for path in sorted((ROOT / "diffv2m").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.ImportFrom) and node.level
                    and (node.module or "").split(".")[0] in ("export", "plugin")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
