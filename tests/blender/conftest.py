"""Blender host tests: they run in a virtualenv with ``bpy`` (see .ci/run); elsewhere they are
not collected.  Headless Blender has no event loop, so ``bpy.app.timers`` never fire: tests
call the add-on's poll function themselves."""
import importlib.util

import pytest

if importlib.util.find_spec("bpy") is None:
    collect_ignore_glob = ["test_*.py"]
else:
    @pytest.fixture(scope="session")
    def addon():
        import diffv2m.plugin.blender as addon
        addon.register()
        yield addon
        addon.unregister()

    @pytest.fixture
    def blend(addon, tmp_path):
        """A fresh, empty Blender file saved as tmp/edit.blend (add-on data under //diffv2m)."""
        import bpy
        from diffv2m.plugin.blender import operators
        bpy.ops.wm.read_factory_settings(use_empty=True)
        operators.last_report.clear()
        scene = bpy.context.scene
        scene.sequence_editor_create()
        scene.render.fps, scene.render.fps_base = 24, 1.0
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "edit.blend"))
        return scene
