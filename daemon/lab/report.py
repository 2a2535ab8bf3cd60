"""An HTML report of one recorded session, with PNG plots drawn by matplotlib's Agg backend (no display needed).

report/index.html   summary table, phase table, the four plots
report/score.png    relaxation score over time, phases shaded and named, markers as labelled lines
report/de.png       differential entropy per band (mean over good channels) as a heat map over time
report/controls.png tempo, valence and energy over time
report/quality.png  fraction of usable channels, largest timestamp gap per hop, source state changes
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from neuromusic.models.core.errors import DataError
from neuromusic.models.sessions.store import SessionReader
from neuromusic.models.sessions.summary import SessionSummary, phase_intervals, summarize

PHASE_COLOURS = ("#dbe9f6", "#fbe3d6", "#e2f0d9", "#ede1f3", "#fff2cc")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display, safe inside a daemon or a test
    import matplotlib.pyplot as plt

    return plt


def _shade_phases(ax: Any, reader: SessionReader, end: float, label: bool) -> None:
    for number, (name, start, stop) in enumerate(phase_intervals(reader, reader.t0 + end)):
        if name == "session":
            continue
        ax.axvspan(start - reader.t0, stop - reader.t0, color=PHASE_COLOURS[number % len(PHASE_COLOURS)], zorder=0)
        if label:
            ax.text((start + stop) / 2 - reader.t0, 1.02, name, ha="center", va="bottom", fontsize=8)


def _markers(ax: Any, reader: SessionReader, label: bool) -> None:
    for event in reader.events():
        if event.get("kind") != "marker":
            continue
        t = float(event["t"]) - reader.t0
        ax.axvline(t, color="#c0392b", linewidth=1, linestyle="--")
        if label:
            ax.text(t, 0.02, f" {event.get('text', '')}", rotation=90, fontsize=8, color="#c0392b", va="bottom")


def plot_score(reader: SessionReader, path: Path, end: float, threshold: float) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 3.6))
    _shade_phases(ax, reader, end, label=True)
    scores = reader.scores()
    t = reader.times("scores") - reader.t0
    value = np.array([np.nan if s.get("value") is None else float(s["value"]) for s in scores])
    confidence = np.array([float(s.get("confidence") or 0.0) for s in scores])
    if len(t):
        ax.plot(t, value, color="#1f4e79", linewidth=1.4, label="relaxation score")
        ax.fill_between(t, 0, confidence, color="#7f7f7f", alpha=0.08, step="post", label="confidence")
    ax.axhline(threshold, color="#2e7d32", linewidth=0.8, linestyle=":", label=f"relaxed (>= {threshold:g})")
    _markers(ax, reader, label=True)
    ax.set(xlim=(0, max(end, 1.0)), ylim=(0, 1.08), xlabel="time (s)", ylabel="score")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.set_title("Relaxation score (shaded: phases, dashed: markers)", fontsize=10, pad=14)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_de(reader: SessionReader, path: Path, end: float) -> None:
    plt = _pyplot()
    features = reader.features()
    bands = list((reader.manifest.get("features") or {}).get("band_names", []))
    fig, ax = plt.subplots(figsize=(11, 3.0))
    if features and bands:
        t = reader.times("features") - reader.t0
        de = np.array([[[np.nan if v is None else v for v in row] for row in f["de"]] for f in features], dtype=float)
        with np.errstate(all="ignore"):
            per_band = np.nanmean(de, axis=2).T  # (bands, hops): mean over good channels
        image = ax.imshow(
            per_band,
            aspect="auto",
            origin="lower",
            extent=(float(t[0]), float(t[-1]) if len(t) > 1 else float(t[0]) + 1, -0.5, len(bands) - 0.5),
            cmap="viridis",
            interpolation="nearest",
        )
        ax.set_yticks(range(len(bands)), bands)
        fig.colorbar(image, ax=ax, label="DE (nats)", pad=0.01)
    else:
        ax.text(0.5, 0.5, "no features recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlim=(0, max(end, 1.0)), xlabel="time (s)")
    ax.set_title("Differential entropy per band (mean over good channels)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_controls(reader: SessionReader, path: Path, end: float) -> None:
    plt = _pyplot()
    controls = reader.controls() or [{"t": b["t"], **b["controls"]} for b in reader.bars()]
    fig, axes = plt.subplots(3, 1, figsize=(11, 4.6), sharex=True)
    t = np.array([float(c["t"]) - reader.t0 for c in controls])
    for ax, (name, unit, colour) in zip(
        axes,
        (("tempo", "BPM", "#8e44ad"), ("valence", "0..1", "#d35400"), ("energy", "0..1", "#16a085")),
        strict=True,
    ):
        _shade_phases(ax, reader, end, label=False)
        if len(t):
            ax.step(t, [float(c[name]) for c in controls], where="post", color=colour, linewidth=1.4)
        ax.set_ylabel(f"{name}\n({unit})", fontsize=8)
        if name != "tempo":
            ax.set_ylim(-0.05, 1.05)
        _markers(ax, reader, label=False)
    if not len(t):
        axes[0].text(0.5, 0.5, "no controls recorded", ha="center", va="center", transform=axes[0].transAxes)
    axes[-1].set(xlim=(0, max(end, 1.0)), xlabel="time (s)")
    axes[0].set_title("Musical controls", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_quality(reader: SessionReader, path: Path, end: float) -> None:
    plt = _pyplot()
    features = reader.features()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 3.6), sharex=True)
    if features:
        t = reader.times("features") - reader.t0
        good = np.array([np.mean(f["good"]) if f["good"] else 0.0 for f in features])
        gaps = np.array([float(f.get("gap_s") or 0.0) for f in features])
        top.plot(t, good, color="#2e7d32", linewidth=1.2)
        bottom.plot(t, gaps, color="#b71c1c", linewidth=1.0)
    for status in reader.stream("status"):
        if status.get("state") in ("stale", "reconnecting"):
            for ax in (top, bottom):
                ax.axvline(float(status["t"]) - reader.t0, color="#ff8f00", linewidth=1)
    top.set(ylim=(-0.05, 1.05), ylabel="usable\nchannels", xlim=(0, max(end, 1.0)))
    bottom.set(ylabel="gap (s)", xlabel="time (s)")
    top.set_title("Signal quality (orange: source went stale / reconnecting)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _summary_rows(summary: SessionSummary, threshold: float) -> list[tuple[str, str]]:
    fraction = summary.relaxed_fraction
    return [
        ("session", summary.session_id),
        ("started", summary.started),
        ("source", summary.source),
        ("duration", f"{summary.duration_s:.1f} s"),
        ("ended", "cleanly" if summary.clean_exit else "cut short (crash or kill): the tail may be missing"),
        ("mean score", _fmt(summary.mean_score, "{:.3f}")),
        (f"time relaxed (score >= {threshold:g})", f"{summary.relaxed_s:.1f} s ({_fmt(fraction, '{:.0%}')})"),
        ("bars composed", f"{summary.bars} ({summary.repaired_bars} repaired)"),
        ("control changes", str(summary.control_changes)),
        ("markers", str(summary.markers)),
        ("messages lost by the recorder", str(summary.dropped)),
    ]


def write_report(folder: Path, output: Path | None = None, threshold: float = 0.6) -> Path:
    """Draw the plots and write index.html; returns the HTML file's path."""
    reader = SessionReader(folder)
    if not reader.scores() and not reader.features() and not reader.has_eeg:
        raise DataError(f"{folder}: the session recorded nothing to report on (it stopped before the source streamed)")
    out = Path(output) if output is not None else reader.folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(reader, relaxed_threshold=threshold)
    _, end = reader.time_span()
    plot_score(reader, out / "score.png", end, threshold)
    plot_de(reader, out / "de.png", end)
    plot_controls(reader, out / "controls.png", end)
    plot_quality(reader, out / "quality.png", end)
    esc = html.escape
    rows = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _summary_rows(summary, threshold))
    phase_rows = "\n".join(
        f"<tr><td>{esc(p.name)}</td><td>{p.start_s:.1f}</td><td>{p.end_s:.1f}</td>"
        f"<td>{_fmt(p.mean_score, '{:.3f}')}</td><td>{p.scored_s:.1f}</td></tr>"
        for p in summary.phases
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>neuromusic session {esc(summary.session_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }}
th {{ background: #f3f3f3; }} img {{ max-width: 100%; display: block; margin: 0.5em 0 1.5em; }}
</style></head><body>
<h1>Session {esc(summary.session_id)}</h1>
<h2>Summary</h2><table>{rows}</table>
<h2>Mean score by phase</h2>
<table><tr><th>phase</th><th>from (s)</th><th>to (s)</th><th>mean score</th><th>scored (s)</th></tr>
{phase_rows}</table>
<h2>Relaxation score</h2><img src="score.png" alt="relaxation score over time">
<h2>Differential entropy</h2><img src="de.png" alt="DE per band heat map">
<h2>Musical controls</h2><img src="controls.png" alt="tempo, valence and energy over time">
<h2>Signal quality</h2><img src="quality.png" alt="usable channels and gaps over time">
</body></html>
"""
    index = out / "index.html"
    index.write_text(page)
    return index
