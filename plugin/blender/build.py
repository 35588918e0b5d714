"""Build the Blender extension zip: ``python -m diffv2m.plugin.blender.build``.

The zip holds the add-on's modules (this folder), ``blender_manifest.toml`` with its
``wheels`` and ``platforms`` filled in, and ``wheels/``: the diffv2m wheel (built from this
checkout with ``pip wheel --no-deps``, the embedded default model included) and, unless
``--no-deps``, the torch-free dependencies the in-process engine imports, downloaded by pip
for Blender's Python (3.11) and the chosen platform.  Blender bundles numpy, so it is not
bundled.  With ``--no-deps`` the extension is small and its in-process engine needs those
packages importable some other way; the external engine works either way.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from diffv2m.errors import UserError

HERE = Path(__file__).resolve().parent
MODULES = ("__init__.py", "picture.py", "engine.py", "strips.py", "operators.py", "prefs.py",
           "ui.py")
# What the in-process engine imports besides numpy (Blender's own): decoding, features, ONNX
# Runtime, timelines.
DEPENDENCIES = ("av", "scipy", "onnxruntime", "opentimelineio")
PLATFORMS = {   # Blender's platform name -> the pip platform tags its Python accepts
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "macos-arm64": ("macosx_11_0_arm64", "macosx_12_0_arm64", "macosx_13_0_arm64",
                    "macosx_14_0_arm64"),
    "windows-x64": ("win_amd64",),
}


def _project_root() -> Path:
    root = HERE.parent.parent
    if not (root / "pyproject.toml").is_file():
        raise UserError(f"{root}: no pyproject.toml; build from a source checkout")
    return root


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise UserError(f"pip {args[0]} failed: {lines[-1] if lines else proc.returncode}")


def manifest_text(wheels: list[str], platforms: list[str] | None) -> str:
    text = (HERE / "blender_manifest.toml").read_text()
    extra = "\nwheels = [\n" + "".join(f'  "./wheels/{w}",\n' for w in wheels) + "]\n"
    if platforms:
        extra += "platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]\n"
    # top-level keys must come before the first [table]
    head, sep, tail = text.partition("\n[")
    return head.rstrip("\n") + "\n" + extra + (sep + tail if sep else "")


def build(out_dir: str | os.PathLike = "dist", *, deps: bool = True,
          platform: str = "linux-x64") -> Path:
    """Write ``OUT/diffv2m_studio-VERSION.zip`` (temp file + rename) and return its path."""
    from diffv2m.atomic import atomic_path
    import tomllib
    if platform not in PLATFORMS:
        raise UserError(f"--platform {platform}: choose one of {', '.join(PLATFORMS)}")
    version = tomllib.loads((HERE / "blender_manifest.toml").read_text())["version"]
    root = _project_root()
    out = Path(out_dir) / f"diffv2m_studio-{version}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel_dir = Path(tmp) / "wheels"
        _pip("wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(root))
        if deps:
            tags = [a for tag in PLATFORMS[platform] for a in ("--platform", tag)]
            _pip("download", "-q", "--only-binary=:all:", "--python-version", "3.11", *tags,
                 "-d", str(wheel_dir), *DEPENDENCIES, "numpy<2")   # resolve against 1.x
            for w in wheel_dir.glob("numpy-*.whl"):
                w.unlink()         # Blender ships its own numpy
        wheels = sorted(p.name for p in wheel_dir.glob("*.whl"))
        platforms = [platform] if deps else None
        with atomic_path(out) as tmp_zip:
            with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("blender_manifest.toml", manifest_text(wheels, platforms))
                for name in MODULES:
                    z.write(HERE / name, name)
                for w in wheels:
                    z.write(wheel_dir / w, f"wheels/{w}", compress_type=zipfile.ZIP_STORED)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m diffv2m.plugin.blender.build",
                                description="Build the Diff-V2M Studio Blender extension zip.")
    p.add_argument("-o", "--output-dir", default="dist", help="where the zip goes (default dist/)")
    p.add_argument("--platform", default="linux-x64", choices=sorted(PLATFORMS),
                   help="the platform whose dependency wheels are bundled")
    p.add_argument("--no-deps", action="store_true",
                   help="bundle only the diffv2m wheel (offline builds; see the module doc)")
    args = p.parse_args(argv)
    try:
        out = build(args.output_dir, deps=not args.no_deps, platform=args.platform)
    except UserError as exc:
        print(f"diffv2m: error: {exc}", file=sys.stderr)
        return 2
    print(f"{out}  ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
