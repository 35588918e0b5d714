"""Diff-V2M Studio for Blender's Video Sequencer (a Blender 4.2+ extension).

Importable without Blender only for its bpy-free parts (:mod:`.picture`, :mod:`.engine`,
:mod:`.build`); ``register()`` needs ``bpy``.  See README "Blender" for building the
extension zip and installing it.
"""
from __future__ import annotations

_registered: list = []


def register() -> None:
    import bpy

    from . import operators, prefs, ui
    for cls in (prefs.DiffV2MPreferences, *operators.classes, *ui.classes):
        bpy.utils.register_class(cls)
        _registered.append(cls)
    bpy.types.SEQUENCER_MT_strip.append(ui.menu_strip)


def unregister() -> None:
    import bpy

    from . import engine, operators, ui
    operators.cancel_all()
    operators.stop_timer()
    try:
        bpy.types.SEQUENCER_MT_strip.remove(ui.menu_strip)
    except (AttributeError, ValueError):
        pass
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
    engine.forget_sessions()
