"""Operators: Score selection, New take, Keep, Discard, Cancel; and the job poller.

``bpy.ops.sequencer.diffv2m_score(seed=..., background=...)`` and
``bpy.ops.sequencer.diffv2m_new_take(background=...)`` need only a scene with a sequence
editor (they run from a script with no UI).  ``background=False`` runs the take to the end
before returning; ``background=True`` starts a worker thread and returns at once; the take
lands on the main thread when :func:`poll_jobs` sees it finished (a ``bpy.app.timers``
callback in Blender; tests call it themselves, since headless timers never fire).
"""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from diffv2m.errors import UserError

from . import engine, strips
from .prefs import settings_of

_jobs: list[dict] = []          # {"job", "scene", "above", "settings"}
POLL_SECONDS = 0.25
last_report: list[tuple[str, str]] = []   # (level, message): what the last operator said


def _say(op, level: str, message: str) -> None:
    last_report.append((level, message))
    del last_report[:-20]
    if op is not None:
        op.report({level}, message)


def _status(context_or_none, text: str | None) -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        try:
            window.workspace.status_text_set(text)
        except (AttributeError, RuntimeError):
            pass


def _land(entry) -> str:
    """Add a finished job's take to its scene; returns what to report."""
    job = entry["job"]
    scene = bpy.data.scenes.get(entry["scene"])
    if job.state == "cancelled":
        return "Diff-V2M: take cancelled; nothing added"
    if job.state == "failed":
        raise UserError(job.error)
    if scene is None or scene.sequence_editor is None:
        raise UserError(f"scene {entry['scene']!r} is gone; take kept at {job.result.path}")
    strip = strips.add_take(scene, job.request.span, entry["above"], job.result, entry["settings"])
    retimed = " (footage retimed to the scene rate)" if job.request.span.retimed else ""
    return (f"Diff-V2M: take seed {job.result.seed} on channel {strip.channel}, frames "
            f"{strip.frame_final_start}-{strip.frame_final_end}{retimed}")


def poll_jobs() -> float | None:
    """Land finished jobs; the timer's callback (returns the next interval, None = stop)."""
    for entry in list(_jobs):
        job = entry["job"]
        if not job.finished:
            continue
        _jobs.remove(entry)
        try:
            msg = _land(entry)
            _say(None, "INFO", msg)
            try:
                bpy.ops.ed.undo_push(message="Diff-V2M take")
            except RuntimeError:
                pass                     # no undo stack headless
        except UserError as exc:
            _say(None, "ERROR", f"Diff-V2M: {exc}")
    running = [e["job"] for e in _jobs]
    _status(None, running[0].status_text() if running else None)
    _redraw()
    return POLL_SECONDS if running else None


def _redraw() -> None:
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()


def running_jobs() -> list:
    return [e["job"] for e in _jobs]


def cancel_all() -> None:
    for e in _jobs:
        e["job"].cancel()


def stop_timer() -> None:
    if bpy.app.timers.is_registered(poll_jobs):
        bpy.app.timers.unregister(poll_jobs)


def _start(op, context, seed: int, new_take: bool):
    scene = strips.scene_of(context)
    cfg = settings_of(context, op)
    span, above, how = strips.resolve_span(context, op.range)
    if new_take:
        seed = strips.next_seed(scene, span.key(), seed)
    req = engine.Request(span=span, seed=seed, steps=cfg["steps"], cfg_scale=cfg["cfg_scale"],
                         sampler=cfg["sampler"], style=cfg["style"], mode=cfg["mode"],
                         data_dir=strips.data_dir(),
                         engine=cfg["engine"], executable=cfg["executable"],
                         onnx_dir=cfg["onnx_dir"] or None, threads=cfg["threads"] or None)
    job = engine.TakeJob(req)
    entry = {"job": job, "scene": scene.name, "above": above, "settings": cfg}
    job.start()
    if not op.background:
        job.wait()
        msg = _land(entry)
        _say(op, "INFO", msg)
        return {"FINISHED"}
    _jobs.append(entry)
    if not bpy.app.timers.is_registered(poll_jobs):
        bpy.app.timers.register(poll_jobs, first_interval=POLL_SECONDS)
    retimed = "; footage retimed to the scene rate" if span.retimed else ""
    _say(op, "INFO", f"Diff-V2M: scoring {how}, frames {span.start}-{span.end} (seed {seed}, "
                     f"{req.engine}){retimed}")
    return {"FINISHED"}


RANGES = [("AUTO", "Auto", "Selected movie strips, else two markers, else the preview range, "
                           "else the scene range"),
          ("STRIPS", "Selected strips", "The selected (or active) movie strips"),
          ("MARKERS", "Between markers", "Between the two selected markers"),
          ("PREVIEW", "Preview range", "The scene's preview range"),
          ("SCENE", "Scene range", "The scene's frame range")]
ENGINES = [("PREFERENCES", "As in preferences", "The engine chosen in the add-on preferences"),
           ("IN_PROCESS", "In Blender", "The torch-free runtime inside Blender's Python"),
           ("EXTERNAL", "External diffv2m", "The diffv2m executable from the preferences")]


class _ScoreBase:
    bl_options = {"REGISTER", "UNDO"}

    background: BoolProperty(name="Background", default=True,
                             description="Run in a worker thread and add the take when done")
    range: EnumProperty(name="Range", items=RANGES, default="AUTO")
    engine: EnumProperty(name="Engine", items=ENGINES, default="PREFERENCES")
    executable: StringProperty(name="Executable", default="", options={"HIDDEN"},
                               description="Override the preferences' diffv2m executable")
    steps: IntProperty(name="Steps", default=0, min=0, max=200,
                       description="Sampler steps (0: the preferences' value)")

    @classmethod
    def poll(cls, context):
        scene = strips.scene_of(context)
        return scene is not None and scene.sequence_editor is not None

    def _run(self, context, seed, new_take):
        try:
            return _start(self, context, seed, new_take)
        except UserError as exc:
            _say(self, "ERROR", f"Diff-V2M: {exc}")
            return {"CANCELLED"}


class SEQUENCER_OT_diffv2m_score(_ScoreBase, bpy.types.Operator):
    """Score the selected movie strips (or the markers', preview or scene range) with music"""
    bl_idname = "sequencer.diffv2m_score"
    bl_label = "Score Selection"

    seed: IntProperty(name="Seed", default=0, min=0)

    def execute(self, context):
        return self._run(context, self.seed, new_take=False)


class SEQUENCER_OT_diffv2m_new_take(_ScoreBase, bpy.types.Operator):
    """Another take of the same selection with a new seed (features are reused)"""
    bl_idname = "sequencer.diffv2m_new_take"
    bl_label = "New Take"

    def execute(self, context):
        return self._run(context, 0, new_take=True)


def _selected_takes(context):
    scene = strips.scene_of(context)
    ed = scene.sequence_editor
    sel = [s for s in strips.all_strips(ed) if strips.is_take(s) and s.select] if ed else []
    if not sel and ed and ed.active_strip is not None and strips.is_take(ed.active_strip):
        sel = [ed.active_strip]
    return scene, sel


class _TakesOperator:
    """An operator on the selected takes (the active take when none is selected): ``fits``
    says whether the selection suits it, ``act`` does the work."""
    bl_options = {"REGISTER", "UNDO"}
    refusal = ""                        # what to say when the selection does not fit

    @classmethod
    def poll(cls, context):
        return _ScoreBase.poll(context)

    def fits(self, sel) -> bool:
        raise NotImplementedError

    def act(self, scene, sel) -> None:
        raise NotImplementedError

    def execute(self, context):
        scene, sel = _selected_takes(context)
        if not self.fits(sel):
            _say(self, "ERROR", self.refusal)
            return {"CANCELLED"}
        self.act(scene, sel)
        return {"FINISHED"}


class SEQUENCER_OT_diffv2m_keep(_TakesOperator, bpy.types.Operator):
    """Keep the selected take: unmuted; the selection's other takes muted"""
    bl_idname = "sequencer.diffv2m_keep"
    bl_label = "Keep Take"
    refusal = "Diff-V2M: select one take to keep"

    def fits(self, sel) -> bool:
        return len(sel) == 1

    def act(self, scene, sel) -> None:
        strips.keep(scene, sel[0])


class SEQUENCER_OT_diffv2m_discard(_TakesOperator, bpy.types.Operator):
    """Remove the selected takes' strips (the WAV files stay in the add-on's folder)"""
    bl_idname = "sequencer.diffv2m_discard"
    bl_label = "Discard Take"
    refusal = "Diff-V2M: select the takes to discard"

    def fits(self, sel) -> bool:
        return bool(sel)

    def act(self, scene, sel) -> None:
        for s in sel:
            strips.discard(scene, s)


class SEQUENCER_OT_diffv2m_cancel(bpy.types.Operator):
    """Stop the running Diff-V2M takes (within one sampler step)"""
    bl_idname = "sequencer.diffv2m_cancel"
    bl_label = "Cancel Takes"

    @classmethod
    def poll(cls, context):
        return bool(_jobs)

    def execute(self, context):
        cancel_all()
        return {"FINISHED"}


classes = (SEQUENCER_OT_diffv2m_score, SEQUENCER_OT_diffv2m_new_take, SEQUENCER_OT_diffv2m_keep,
           SEQUENCER_OT_diffv2m_discard, SEQUENCER_OT_diffv2m_cancel)
