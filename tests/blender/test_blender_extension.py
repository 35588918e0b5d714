"""The built extension zip installs into Blender the way a user installs it, and works."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from fractions import Fraction

from diffv2m.plugin.blender import build
from mediagen import make_video

INSTALL_AND_SCORE = textwrap.dedent("""
    import sys, bpy
    zip_path, video = sys.argv[-2:]
    assert bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True) == {"FINISHED"}
    addon = bpy.context.preferences.addons["bl_ext.user_default.diffv2m_studio"]
    assert addon.preferences.engine == "IN_PROCESS"
    import diffv2m
    print("DIFFV2M_FROM", diffv2m.__file__)
    scene = bpy.context.scene
    ed = scene.sequence_editor_create()
    strip = ed.strips.new_movie("shot", video, 1, 1)
    strip.select = True
    assert bpy.ops.sequencer.diffv2m_score(seed=2, background=False, steps=2) == {"FINISHED"}
    take = [s for s in ed.strips_all if s.type == "SOUND"][0]
    print("TAKE", take.channel, take.frame_final_start, take.frame_final_duration,
          take["diffv2m_seed"])
""")


def test_extension_zip_installs_enables_and_scores(tmp_path):
    out = build.build(tmp_path / "dist", deps=False)
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
    assert {"__init__.py", "operators.py", "blender_manifest.toml"} <= names
    assert manifest["id"] == "diffv2m_studio" and manifest["name"] == "Diff-V2M Studio"
    assert manifest["type"] == "add-on" and manifest["blender_version_min"] == "4.2.0"
    [wheel] = manifest["wheels"]
    assert wheel.startswith("./wheels/diffv2m-") and wheel[2:] in names
    video = make_video(tmp_path / "clip.mp4", seconds=2.0, fps=Fraction(24)).path
    script = tmp_path / "install.py"
    script.write_text(INSTALL_AND_SCORE)
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender-user"))
    proc = subprocess.run([sys.executable, str(script), str(out), str(video)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = dict(ln.split(" ", 1) for ln in proc.stdout.splitlines()
                 if ln.startswith(("DIFFV2M_FROM", "TAKE")))
    assert str(tmp_path / "blender-user") in lines["DIFFV2M_FROM"]   # the bundled wheel's copy
    assert lines["TAKE"].split() == ["2", "1", "48", "2"]
