"""Diff-V2M Studio for Blender's Video Sequencer (a Blender 4.2+ extension).

Importable without Blender only for its bpy-free parts (:mod:`.picture`, :mod:`.engine`,
:mod:`.build`); ``register()`` needs ``bpy``.  See README "Blender" for building the
extension zip and installing it.
"""
from __future__ import annotations

_registered: list = []
_keymaps: list = []


def register() -> None:
    import bpy

    from . import operators, prefs, ui
    for cls in (prefs.DiffV2MPreferences, *operators.classes, *ui.classes):
        bpy.utils.register_class(cls)
        _registered.append(cls)
    bpy.types.SEQUENCER_MT_strip.append(ui.menu_strip)
    # Esc in the Sequencer cancels running takes (the operator's poll is False when none runs,
    # so Esc keeps its usual meaning otherwise).  No add-on keyconfig exists headless.
    kc = bpy.context.window_manager.keyconfigs.addon
    if kc is not None:
        km = kc.keymaps.new(name="Sequencer", space_type="SEQUENCE_EDITOR")
        _keymaps.append((km, km.keymap_items.new("sequencer.diffv2m_cancel", "ESC", "PRESS")))


def unregister() -> None:
    import bpy

    from . import engine, operators, ui
    operators.cancel_all()
    operators.stop_timer()
    while _keymaps:
        km, kmi = _keymaps.pop()
        km.keymap_items.remove(kmi)
    try:
        bpy.types.SEQUENCER_MT_strip.remove(ui.menu_strip)
    except (AttributeError, ValueError):
        pass
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
    engine.forget_sessions()
