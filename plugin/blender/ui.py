"""The Sequencer sidebar panel (tab "Diff-V2M") and the Strip menu entries."""
from __future__ import annotations

import bpy

from diffv2m.errors import UserError

from . import operators, strips


class SEQUENCER_PT_diffv2m(bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Diff-V2M"
    bl_label = "Diff-V2M Studio"

    @classmethod
    def poll(cls, context):
        scene = strips.scene_of(context)
        return scene is not None and scene.sequence_editor is not None

    def draw(self, context):
        layout = self.layout
        try:
            span, _, how = strips.resolve_span(context)
            box = layout.box()
            box.label(text=f"{how}: frames {span.start}-{span.end}", icon="SEQUENCE")
            box.label(text=f"{span.seconds:.2f} s at {float(span.rate):.3f} fps")
            if span.retimed:
                box.label(text="Footage retimed: it plays at the scene rate", icon="TIME")
        except UserError as exc:
            layout.label(text=str(exc), icon="ERROR")
        col = layout.column(align=True)
        col.operator("sequencer.diffv2m_score", icon="PLAY_SOUND")
        col.operator("sequencer.diffv2m_new_take", icon="FILE_REFRESH")
        row = layout.row(align=True)
        row.operator("sequencer.diffv2m_keep", icon="CHECKMARK")
        row.operator("sequencer.diffv2m_discard", icon="TRASH")
        jobs = operators.running_jobs()
        if jobs:
            layout.label(text=jobs[0].status_text(), icon="SORTTIME")
            layout.operator("sequencer.diffv2m_cancel", icon="CANCEL")
        ed = strips.scene_of(context).sequence_editor
        take = ed.active_strip if ed else None
        if take is not None and strips.is_take(take):
            box = layout.box()
            box.label(text=f"Take: seed {take['diffv2m_seed']}"
                           + ("  (kept)" if take.get("diffv2m_kept") else ""))
            box.label(text=f"{take.get('diffv2m_model', '')}")
            box.label(text=f"steps {take.get('diffv2m_steps')}, guidance "
                           f"{take.get('diffv2m_guidance', 0):.1f}, {take.get('diffv2m_engine')}")
            if take.get("diffv2m_key"):
                box.label(text=f"key {take['diffv2m_key']}")


def menu_strip(self, context):
    layout = self.layout
    layout.separator()
    layout.operator("sequencer.diffv2m_score", icon="PLAY_SOUND")
    layout.operator("sequencer.diffv2m_new_take", icon="FILE_REFRESH")
    layout.operator("sequencer.diffv2m_keep")
    layout.operator("sequencer.diffv2m_discard")


classes = (SEQUENCER_PT_diffv2m,)
