"""Add-on preferences: the engine, the external ``diffv2m`` executable, the model and sampler.

Read through :func:`settings_of`, which falls back to the defaults when the add-on is not
registered through Blender's preferences (a script that calls ``register()`` itself).
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

ADDON = __package__

DEFAULTS = {"engine": "in-process", "executable": "", "onnx_dir": "", "threads": 0,
            "steps": 0, "cfg_scale": 0.0, "sampler": "dpmpp-2m", "style": 1, "mode": None}


def default_executable() -> str:
    """``diffv2m`` on PATH, else next to this Python (a virtualenv's bin/)."""
    found = shutil.which("diffv2m")
    if found:
        return found
    here = Path(sys.executable).with_name("diffv2m" + (".exe" if os.name == "nt" else ""))
    return str(here) if here.exists() else "diffv2m"


class DiffV2MPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON

    engine: EnumProperty(
        name="Engine", default="IN_PROCESS",
        items=[("IN_PROCESS", "In Blender", "The torch-free runtime inside Blender's Python "
                                            "(ONNX Runtime, the bundled wheels)"),
               ("EXTERNAL", "External diffv2m", "Run a diffv2m executable from another Python "
                                                "environment")])
    executable: StringProperty(name="diffv2m executable", subtype="FILE_PATH", default="",
                               description="Empty: diffv2m on PATH")
    onnx_dir: StringProperty(name="Model graphs", subtype="DIR_PATH", default="",
                             description="Exported ONNX graphs; empty: the embedded default model")
    threads: IntProperty(name="CPU threads", default=0, min=0, max=256,
                         description="0: all physical cores")
    steps: IntProperty(name="Steps", default=0, min=0, max=200,
                       description="0: the model's own (15 for the score model, 25 for audio)")
    cfg_scale: FloatProperty(name="Guidance", default=0.0, min=0.0, max=15.0,
                             description="0: the model's own (2 for the score model, 3 for "
                                         "audio)")
    sampler: EnumProperty(name="Sampler", default="dpmpp-2m",
                          items=[("dpmpp-2m", "DPM++ 2M", ""), ("euler", "Euler", ""),
                                 ("ddim", "DDIM", "")])
    style: EnumProperty(name="Style", default="1",
                        items=[("0", "Calm", ""), ("1", "Moderate", ""), ("2", "Energetic", "")])
    mode: EnumProperty(name="Mode", default="PICTURE",
                       items=[("PICTURE", "From the picture", "Read from the colour grade (score "
                                                              "model)"),
                              ("major", "Major", ""), ("minor", "Minor", "")])

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "engine")
        row = col.row()
        row.enabled = self.engine == "EXTERNAL"
        row.prop(self, "executable")
        col.prop(self, "onnx_dir")
        col.prop(self, "threads")
        col.separator()
        col.prop(self, "steps")
        col.prop(self, "cfg_scale")
        col.prop(self, "sampler")
        col.prop(self, "style")
        col.prop(self, "mode")


def settings_of(context, op=None) -> dict:
    """Preferences (or defaults), overridden by an operator's engine/executable/steps."""
    cfg = dict(DEFAULTS)
    addon = context.preferences.addons.get(ADDON) if ADDON else None
    p = getattr(addon, "preferences", None)
    if p is not None:
        cfg.update(engine="external" if p.engine == "EXTERNAL" else "in-process",
                   executable=p.executable, onnx_dir=p.onnx_dir, threads=p.threads,
                   steps=p.steps, cfg_scale=p.cfg_scale, sampler=p.sampler, style=int(p.style),
                   mode=None if p.mode == "PICTURE" else p.mode)
    if op is not None:
        if op.engine != "PREFERENCES":
            cfg["engine"] = "external" if op.engine == "EXTERNAL" else "in-process"
        if op.executable:
            cfg["executable"] = op.executable
        if op.steps:
            cfg["steps"] = op.steps
    cfg["executable"] = bpy.path.abspath(cfg["executable"]) if cfg["executable"] else default_executable()
    if cfg["onnx_dir"]:
        cfg["onnx_dir"] = bpy.path.abspath(cfg["onnx_dir"])
    return cfg
