"""The report's figures, drawn with matplotlib's Agg backend (files only: no display needed).

One time line: score, band DE, tempo, valence and energy, usable channels and time-stamp gaps are panels of ONE
figure with a shared time axis (seconds from the session start), so a moment lines up across all of them; the DE
colour bar sits outside the panel so it does not narrow it. Colours mean one thing throughout (COLOURS): green calm,
grey neutral, red tense, dark grey hatching where the source was down, purple markers, navy the score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from neuromusic.models.core.controls import CONTROLS
from neuromusic.models.sessions.store import SessionReader
from neuromusic.models.sessions.summary import (
    STATES,
    baseline_interval,
    channel_quality,
    phase_events,
    phase_intervals,
    score_state,
)

COLOURS = {
    "calm": "#2e7d32",
    "neutral": "#8d8d8d",
    "tense": "#c62828",
    "score": "#1f3b73",
    "confidence": "#90a4ae",
    "marker": "#7b1fa2",
    "source down": "#424242",
    "baseline": "#fff3c4",
}
SHADES = {"calm": "#e3f2e1", "neutral": "#eeeeee", "tense": "#fbe1df"}  # phase shading by the state it stands for
OTHER_SHADES = ("#e3ecf7", "#f3e9f7", "#fff8e1", "#e0f2f1")  # named phases that are no state (blocks, markers)
SPECTRUM_BAND = (1.0, 45.0)  # Hz shown in the spectra
FloatArray = npt.NDArray[np.float64]


def share(fraction: float) -> str:
    """A percentage that never rounds a channel with problems up to a clean 100 %."""
    if 0.995 <= fraction < 1.0:
        return ">99%"
    return f"{fraction:.0%}"


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def phase_shade(name: str, level: float | None, number: int) -> str:
    """A phase's shading: by the state its level (script) or name stands for, else a neutral pastel."""
    lowered = name.lower()
    if level is not None:
        return SHADES["calm"] if level >= 0.6 else SHADES["tense"] if level < 0.4 else SHADES["neutral"]
    if lowered.startswith(("calm", "rest", "relax")):
        return SHADES["calm"]
    if lowered.startswith(("stress", "tense", "arithmetic", "task")):
        return SHADES["tense"]
    return OTHER_SHADES[number % len(OTHER_SHADES)]


def _levels(reader: SessionReader) -> dict[str, float]:
    return {
        str(e.get("text")): float(e["data"]["level"]) for e in phase_events(reader) if "level" in (e.get("data") or {})
    }


def shade_phases(ax: Any, reader: SessionReader, end: float, label: bool) -> None:
    """Phases shaded full height (by the state they stand for), the scorer's baseline as a band along the top,
    hatching where the source was down."""
    levels = _levels(reader)
    phases = phase_intervals(reader, reader.t0 + end) if phase_events(reader) else []  # else: the baseline band
    for number, (name, start, stop) in enumerate(phases):
        if name == "before":
            continue
        ax.axvspan(start - reader.t0, stop - reader.t0, color=phase_shade(name, levels.get(name), number), zorder=0)
        if label:
            ax.text((start + stop) / 2 - reader.t0, 1.02, name, ha="center", va="bottom", fontsize=8,
                    transform=ax.get_xaxis_transform())  # fmt: skip
    baseline = baseline_interval(reader)
    if baseline is not None:
        left, right = baseline[0] - reader.t0, baseline[1] - reader.t0
        ax.axvspan(left, right, ymin=0.93, ymax=1.0, color=COLOURS["baseline"], ec="#c9a400", lw=0.5, zorder=2)
        if label:
            ax.text((left + right) / 2, 0.965, "baseline", ha="center", va="center", fontsize=7, color="#6d5600",
                    transform=ax.get_xaxis_transform(), zorder=4)  # fmt: skip
    for start, stop in source_down(reader, end):
        ax.axvspan(start, stop, facecolor="none", edgecolor=COLOURS["source down"], hatch="///", lw=0, zorder=1)


def source_down(reader: SessionReader, end: float) -> list[tuple[float, float]]:
    """(start, stop) seconds from the session start while the source was stale or reconnecting."""
    spans, down_since = [], None
    for status in reader.stream("status"):
        t = float(status["t"]) - reader.t0
        if status.get("state") in ("stale", "reconnecting") and down_since is None:
            down_since = t
        elif status.get("state") == "streaming" and down_since is not None:
            spans.append((down_since, t))
            down_since = None
    if down_since is not None:
        spans.append((down_since, end))
    return spans


def draw_markers(ax: Any, reader: SessionReader, label: bool) -> None:
    for event in reader.events():
        if event.get("kind") != "marker":
            continue
        t = float(event["t"]) - reader.t0
        ax.axvline(t, color=COLOURS["marker"], linewidth=1, linestyle="--", zorder=3)
        if label:
            ax.text(t, 0.03, f" {event.get('text', '')}", rotation=90, fontsize=7, color=COLOURS["marker"], va="bottom")


def _finish(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def _score_panel(ax: Any, reader: SessionReader, end: float, relaxed: float, tense: float) -> None:
    shade_phases(ax, reader, end, label=True)
    t = reader.times("scores") - reader.t0
    scores = reader.scores()
    value = np.array([np.nan if s.get("value") is None else float(s["value"]) for s in scores])
    confidence = np.array([float(s.get("confidence") or 0.0) for s in scores])
    if len(t):
        ax.step(t, confidence, where="post", color=COLOURS["confidence"], lw=1.0, label="confidence")
        ax.plot(t, value, color=COLOURS["score"], linewidth=1.3, label="relaxation score")
    ax.axhline(relaxed, color=COLOURS["calm"], linewidth=0.9, linestyle=":", label=f"calm (>= {relaxed:g})")
    ax.axhline(tense, color=COLOURS["tense"], linewidth=0.9, linestyle=":", label=f"tense (< {tense:g})")
    draw_markers(ax, reader, label=True)
    ax.set(ylim=(0, 1.0), ylabel="score")
    ax.legend(loc="lower right", fontsize=7, framealpha=0.85, ncol=4)


def _de_panel(fig: Any, ax: Any, reader: SessionReader) -> None:
    features = reader.features()
    bands = list((reader.manifest.get("features") or {}).get("band_names", []))
    if not features or not bands:
        ax.text(0.5, 0.5, "no features recorded", ha="center", va="center", transform=ax.transAxes)
        return
    t = reader.times("features") - reader.t0
    de = np.array([[[np.nan if v is None else v for v in row] for row in f["de"]] for f in features], dtype=float)
    good = np.array([f["good"] for f in features], dtype=bool)
    de = np.where(good[:, np.newaxis, :], de, np.nan)
    with np.errstate(all="ignore"):
        per_band = np.nanmean(de, axis=2).T  # (bands, hops): mean over good channels
    hop = float(np.median(np.diff(t))) if len(t) > 1 else 0.25
    edges = np.concatenate([t - hop, t[-1:]])  # each hop's column ends at its window's end, like the score
    mesh = ax.pcolormesh(edges, np.arange(len(bands) + 1) - 0.5, per_band, cmap="viridis", shading="flat")
    ax.set_yticks(range(len(bands)), bands, fontsize=7)
    colour_bar = ax.inset_axes((1.005, 0.0, 0.012, 1.0))  # outside the panel: the time axis keeps its width
    fig.colorbar(mesh, cax=colour_bar).set_label("DE (nats)", fontsize=7)
    draw_markers(ax, reader, label=False)


def _controls_panels(scaled_ax: Any, unit_ax: Any, reader: SessionReader, end: float) -> None:
    """One line per control of the table: those with a unit (tempo in BPM) on the first panel, the 0..1 ones on the
    second. A control the recording does not hold (recorded before it existed) is left out."""
    bars = reader.bars()
    rows = [(float(b.get("start_t") or b["t"]) - reader.t0, b["controls"]) for b in bars]
    if not rows:
        rows = [(float(c["t"]) - reader.t0, c) for c in reader.controls()]
    for ax in (scaled_ax, unit_ax):
        shade_phases(ax, reader, end, label=False)
        draw_markers(ax, reader, label=False)
    if not rows:
        scaled_ax.text(0.5, 0.5, "no music recorded", ha="center", va="center", transform=scaled_ax.transAxes)
        return
    t = [r[0] for r in rows]
    scaled = [spec for spec in CONTROLS if spec.unit]
    for spec in CONTROLS:
        values = [float(r[1][spec.name]) if r[1].get(spec.name) is not None else np.nan for r in rows]
        ax = scaled_ax if spec.unit else unit_ax
        ax.step(t, values, where="post", color=spec.colour, lw=1.3, label=spec.label)
    scaled_ax.set_ylabel("\n".join(f"{spec.label}\n({spec.unit})" for spec in scaled), fontsize=8)
    if len(scaled) > 1:
        scaled_ax.legend(loc="upper right", fontsize=7, ncol=len(scaled), framealpha=0.85)
    unit_ax.set(ylim=(-0.02, 1.02))
    unit_ax.set_ylabel("0..1", fontsize=8)
    unit_ax.legend(loc="upper right", fontsize=7, ncol=2, framealpha=0.85)


def _quality_panels(good_ax: Any, gap_ax: Any, reader: SessionReader, end: float) -> None:
    features = reader.features()
    for ax in (good_ax, gap_ax):
        for start, stop in source_down(reader, end):
            ax.axvspan(start, stop, facecolor="none", edgecolor=COLOURS["source down"], hatch="///", lw=0)
    if features:
        t = reader.times("features") - reader.t0
        good_ax.step(t, [np.mean(f["good"]) if f["good"] else 0.0 for f in features], where="post",
                     color=COLOURS["calm"], lw=1.1)  # fmt: skip
        gaps = np.array([float(f.get("gap_s") or 0.0) for f in features])
        gap_ax.step(t, gaps, where="post", color=COLOURS["source down"], lw=1.0)
        gap_ax.set_ylim(0, max(0.05, float(gaps.max()) * 1.15))  # a gap is never negative
    else:
        gap_ax.set_ylim(0, 0.05)
    good_ax.set(ylim=(-0.02, 1.05))
    good_ax.set_ylabel("usable\nchannels", fontsize=8)
    gap_ax.set_ylabel("gap (s)", fontsize=8)


def band_means(reader: SessionReader) -> tuple[FloatArray, list[str], FloatArray]:
    """(times from the session start, band names, DE (hops, bands) averaged over the hop's good channels)."""
    features = reader.features()
    bands = list((reader.manifest.get("features") or {}).get("band_names", []))
    if not features:
        return np.empty(0), bands, np.empty((0, len(bands)))
    de = np.array([[[np.nan if v is None else v for v in row] for row in f["de"]] for f in features], dtype=float)
    good = np.array([f["good"] for f in features], dtype=bool)
    with np.errstate(all="ignore"):
        means = np.nanmean(np.where(good[:, np.newaxis, :], de, np.nan), axis=2)
    return reader.times("features") - reader.t0, bands, means


def _band_lines_panel(ax: Any, reader: SessionReader, end: float) -> None:
    """A calibration's own top panel: alpha and beta DE over the blocks (no score is made while calibrating)."""
    shade_phases(ax, reader, end, label=True)
    t, bands, means = band_means(reader)
    for band, colour in (("alpha", COLOURS["calm"]), ("beta", COLOURS["tense"])):
        if band in bands and len(t):
            ax.plot(t, means[:, bands.index(band)], color=colour, lw=1.2, label=f"{band} DE")
    ax.set_ylabel("DE (nats)", fontsize=8)
    if len(t):
        ax.legend(loc="lower right", fontsize=7, framealpha=0.85)


def plot_timeline(
    reader: SessionReader, path: Path, end: float, relaxed: float, tense: float, calibration: bool = False
) -> None:
    """Score (a calibration: alpha and beta DE), DE, controls and quality on one shared time axis."""
    plt = pyplot()
    ratios = [3.2, 1.8, 1.0, 0.9] if calibration else [3.2, 1.8, 1.1, 1.1, 1.0, 0.9]
    fig, axes = plt.subplots(
        len(ratios), 1, figsize=(11.5, 2.0 + 1.5 * len(ratios)), sharex=True, gridspec_kw={"height_ratios": ratios}
    )
    if calibration:
        _band_lines_panel(axes[0], reader, end)
    else:
        _score_panel(axes[0], reader, end, relaxed, tense)
        _controls_panels(axes[2], axes[3], reader, end)
    _de_panel(fig, axes[1], reader)
    _quality_panels(axes[-2], axes[-1], reader, end)
    axes[-1].set(xlim=(0, max(end, 1.0)), xlabel="time from session start (s)")
    what = "blocks" if calibration else "phases; yellow band: the scorer's baseline"
    axes[0].set_title(f"Time line (shaded: {what}; dashed: markers; hatched: source down)", fontsize=9, pad=16)
    fig.subplots_adjust(left=0.08, right=0.93, top=0.95, bottom=0.05, hspace=0.12)
    _finish(fig, path)


def plot_channel_quality(reader: SessionReader, path: Path) -> None:
    plt = pyplot()
    rows = channel_quality(reader)
    fig, ax = plt.subplots(figsize=(11.5, 0.6 + 0.22 * max(4, len(rows))))
    names = [name for name, _, _ in rows][::-1]
    fractions = [fraction for _, fraction, _ in rows][::-1]
    colours = [COLOURS["calm"] if f >= 0.9 else COLOURS["neutral"] if f >= 0.5 else COLOURS["tense"] for f in fractions]
    ax.barh(names, fractions, color=colours)
    for y, (fraction, (_, _, reason)) in enumerate(zip(fractions, rows[::-1], strict=True)):
        ax.text(min(fraction, 1.0) + 0.01, y, share(fraction) + (f"  (when not: mostly {reason})" if reason else ""),
                va="center", fontsize=7)  # fmt: skip
    ax.set(xlim=(0, 1.3), xlabel="fraction of windows the channel was usable")
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("Per-channel quality", fontsize=9)
    fig.tight_layout()
    _finish(fig, path)


def state_spectra(reader: SessionReader, labels_at: Any, epoch_s: float = 2.0) -> dict[str, FloatArray]:
    """Mean power spectrum (µV²/Hz, averaged over channels usable most of the time) of 2 s EEG epochs per label;
    `labels_at(t)` gives each epoch's label from its middle's session time (None: left out). Key "freqs": Hz."""
    from scipy.signal import welch

    eeg = reader.eeg()
    n = round(epoch_s * eeg.sfreq)
    if eeg.n_samples < n:
        return {}
    usable = [fraction >= 0.5 for _, fraction, _ in channel_quality(reader)]
    picks = [i for i, ok in enumerate(usable) if ok] if any(usable) else list(range(eeg.data.shape[0]))
    sums: dict[str, FloatArray] = {}
    counts: dict[str, int] = {}
    freqs: FloatArray = np.empty(0)
    for start in range(0, eeg.n_samples - n + 1, n):
        label = labels_at(float(eeg.t_received[start + n // 2]))
        if label is None:
            continue
        freqs, power = welch(eeg.data[picks, start : start + n], fs=eeg.sfreq, nperseg=min(n, int(eeg.sfreq)))
        sums[label] = sums.get(label, 0.0) + power.mean(axis=0)
        counts[label] = counts.get(label, 0) + 1
    out = {label: sums[label] / counts[label] for label in sums}
    if out:
        out["freqs"] = freqs
    return out


def score_labeller(reader: SessionReader, relaxed: float, tense: float) -> Any:
    times = reader.times("scores")
    values = [s.get("value") for s in reader.scores()]

    def label(t: float) -> str | None:
        i = int(np.searchsorted(times, t, side="right")) - 1
        value = values[i] if i >= 0 else None
        if value is None:
            return None
        return score_state(float(value), relaxed, tense)

    return label


def plot_spectra(spectra: dict[str, FloatArray], path: Path, title: str, colours: dict[str, str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11.5, 3.6))
    freqs = spectra.get("freqs", np.empty(0))
    keep = (freqs >= SPECTRUM_BAND[0]) & (freqs <= SPECTRUM_BAND[1])
    for label, power in spectra.items():
        if label != "freqs":
            ax.semilogy(freqs[keep], power[keep], color=colours.get(label, "#555555"), lw=1.4, label=label)
    if len(spectra) <= 1:
        ax.text(0.5, 0.5, "not enough EEG to estimate spectra", ha="center", va="center", transform=ax.transAxes)
    for edge in (4, 8, 13, 30):
        ax.axvline(edge, color="#bbbbbb", lw=0.6, zorder=0)
    ax.set(xlim=SPECTRUM_BAND, xlabel="frequency (Hz)", ylabel="power (µV²/Hz)")
    ax.set_title(title, fontsize=9)
    if len(spectra) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    _finish(fig, path)


STATE_COLOURS = {state: COLOURS[state] for state in STATES}
