"""A self-contained HTML page for a ``diffv2m evaluate`` report.

Plots are drawn with matplotlib on an Agg canvas (imported lazily, no pyplot, no global
backend switch) and embedded as base64 PNG, so the page is one file that opens anywhere:

* hit rate of cuts by music onsets against the random-shift baseline (mean +/- std) per clip,
  for the generated take and, when present, the reference music;
* per clip: the log-mel spectrogram of the take with detected cuts (dashed) and music onsets
  (ticks), and the per-second ODF curves (predicted, reference ground truth, the take's own,
  motion/cut baseline) over the cut marks.

Tables give the summary, the distribution metrics and the embedding note (the built-in
embedding is not VGGish/PANNs/CLAP, so those numbers are not comparable with the paper's).
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text


def _figure(rows: int, height: float, width: float = 10.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, axes


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def hit_rate_plot(clips: list[dict]) -> str | None:
    """Bars of observed hit rate vs shift baseline per clip; None when no clip has cuts."""
    rows = [c for c in clips if (c.get("alignment") or {}).get("onset_cut_hit_rate", {})
            .get("observed") is not None]
    if not rows:
        return None
    fig, (ax,) = _figure(1, 3.2, max(6.0, 1.0 + 0.9 * len(rows)))
    x = np.arange(len(rows))
    width = 0.27
    series = [("generated", "alignment", "tab:blue"), ("reference", "reference_alignment", "tab:green")]
    for j, (label, key, colour) in enumerate(series):
        vals = [(r.get(key) or {}).get("onset_cut_hit_rate") or {} for r in rows]
        if not any(v.get("observed") is not None for v in vals):
            continue
        ax.bar(x + (j - 1) * width, [v.get("observed") or 0 for v in vals], width, color=colour,
               label=f"{label}: hit rate")
    base = [r["alignment"]["onset_cut_hit_rate"] for r in rows]
    ax.bar(x + width, [b.get("mean") or 0 for b in base], width, color="0.7", ecolor="0.3",
           yerr=[b.get("std") or 0 for b in base], capsize=3, label="random-shift baseline (generated)")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r['name']}" + (f"\n{r['take']}" if r.get("take") else "") for r in rows],
                       fontsize=8)
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("cuts hit by an onset")
    ax.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)
    return _png(fig)


def clip_plot(plot) -> str:
    """Spectrogram with cuts/onsets and the ODF curves of one take (a ``cli.ClipPlot``)."""
    import librosa
    y = np.asarray(plot.audio, np.float32)
    rows = 2 if plot.odf_curves else 1
    fig, axes = _figure(rows, 2.6 * rows)
    ax = axes[0]
    if len(y) >= 2048:
        mel = librosa.feature.melspectrogram(y=y, sr=plot.sr, n_fft=2048, hop_length=512, n_mels=64)
        db = librosa.power_to_db(mel, ref=np.max(mel) if mel.max() > 0 else 1.0)
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                  extent=(0, len(y) / plot.sr, 0, 64))
    ax.set_xlim(0, max(len(y) / plot.sr, 1e-3))
    for i, t in enumerate(plot.cut_times):
        ax.axvline(t, color="cyan", ls="--", lw=1.2, label="cut" if i == 0 else None)
    if len(plot.onsets):
        ax.plot(plot.onsets, np.full(len(plot.onsets), 60), "w|", ms=8, label="onset")
    ax.set_ylabel("mel band")
    ax.set_title(plot.label, fontsize=10)
    if len(plot.cut_times) or len(plot.onsets):
        ax.legend(fontsize=7, loc="upper right")
    if plot.odf_curves:
        ax2 = axes[1]
        for name, curve in plot.odf_curves.items():
            c = np.asarray(curve, np.float64)
            ax2.step(np.arange(len(c) + 1), np.append(c, c[-1] if len(c) else 0), where="post",
                     label=name)
        for t in plot.cut_times:
            ax2.axvline(t, color="k", ls="--", lw=0.8, alpha=0.6)
        ax2.set_xlim(0, max(len(y) / plot.sr, 1e-3))
        ax2.set_ylim(-0.05, 1.1)
        ax2.set_xlabel("seconds")
        ax2.set_ylabel("ODF (scaled)")
        ax2.legend(fontsize=7, loc="upper right")
    else:
        ax.set_xlabel("seconds")
    return _png(fig)


def _table(d: dict) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, dict):
            cell = _table(v)
        elif isinstance(v, float):
            cell = html.escape(f"{v:.4g}")
        else:
            cell = html.escape(json.dumps(v) if not isinstance(v, str) else v)
        rows.append(f"<tr><th>{html.escape(str(k))}</th><td>{cell}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.3em 0}th,td{border:1px solid #ccc;padding:2px 6px;
text-align:left;vertical-align:top;font-size:13px}th{background:#f4f4f4}
.note{background:#fff4d6;border:1px solid #e0c060;padding:.6em}img{max-width:100%}"""


def render_html(report: dict, plots=()) -> str:
    """The whole page as a string."""
    emb = report.get("embedding", {})
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             "<title>Diff-V2M evaluation</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>Diff-V2M evaluation</h1>",
             f"<p class='note'><b>Embedding:</b> {html.escape(str(emb.get('name')))} "
             f"({emb.get('dim')}-d). {html.escape(str(emb.get('note', '')))}</p>",
             "<h2>Summary</h2>", _table(report.get("summary", {})),
             "<h2>Distribution metrics</h2>", _table(report.get("distribution", {}))]
    if report.get("symbolic"):
        parts += ["<h2>Symbolic measures (MGEval)</h2>", _table(report["symbolic"])]
    if report.get("musicality_note"):
        parts.append(f"<p class='note'>{html.escape(report['musicality_note'])}</p>")
    bars = hit_rate_plot(report.get("clips", []))
    if bars:
        parts += ["<h2>Onset/cut hit rate vs random-shift baseline</h2>",
                  f"<img alt='hit rate vs baseline' src='{bars}'>"]
    if plots:
        parts.append("<h2>Clips</h2>")
        for p in plots:
            parts.append(f"<h3>{html.escape(p.label)}</h3><img alt='{html.escape(p.label)}' "
                         f"src='{clip_plot(p)}'>")
    parts += ["<h2>Definitions</h2>", _table(report.get("definitions", {})),
              "<h2>Settings</h2>", _table(report.get("settings", {})),
              "<h2>Per-clip numbers</h2>"]
    for c in report.get("clips", []):
        parts += [f"<h3>{html.escape(str(c.get('name')))} {html.escape(str(c.get('take') or ''))}</h3>",
                  _table({k: v for k, v in c.items() if k != "cut_times"})]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | os.PathLike, report: dict, plots=()) -> Path:
    """Write :func:`render_html` to ``path`` atomically."""
    atomic_write_text(path, render_html(report, plots))
    return Path(path)
