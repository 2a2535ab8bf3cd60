"""An HTML report of one recorded session, with PNG figures (daemon/lab/report_plots.py).

A closed-loop session:
    report/index.html     summary, time in calm / neutral / tense, phases (the simulated script's ground truth, or
                          the recorded phase events, or the scorer's baseline), segments between markers, per-channel
                          quality, figures
    report/timeline.png   score, band DE, tempo, valence and energy, usable channels and gaps on one time axis
    report/spectra.png    the EEG's power spectrum while the score said calm, neutral and tense
    report/channels.png   per-channel quality
A calibration (`neuromusic calibrate`) gets its own page: the blocks with their alpha and beta DE and usable channels,
a time line of the blocks, the spectrum of rest blocks against task blocks, and per-channel quality.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from neuromusic.daemon.lab.report_plots import (
    COLOURS,
    STATE_COLOURS,
    band_means,
    plot_channel_quality,
    plot_spectra,
    plot_timeline,
    score_labeller,
    share,
    state_spectra,
)
from neuromusic.models.core.errors import DataError
from neuromusic.models.sessions.store import SessionReader
from neuromusic.models.sessions.summary import (
    STATES,
    PhaseSummary,
    SessionSummary,
    channel_quality,
    channel_repairs,
    is_calibration,
    phase_intervals,
    summarize,
)

esc = html.escape
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1180px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; } img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
.states { display: flex; height: 1.6em; width: 100%; max-width: 700px; border: 1px solid #999; }
.states div { color: white; font-size: 0.8em; padding: 0.2em 0.4em; overflow: hidden; white-space: nowrap; }
"""


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "\n".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i >= numeric_from else ''}>{esc(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>\n{body}</table>"


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
        ("spike samples repaired (all channels)", str(summary.repaired_samples)),
        ("control changes", str(summary.control_changes)),
        ("markers", str(summary.markers)),
        ("messages lost by the recorder", str(summary.dropped)),
    ]


def _segments_table(segments: list[PhaseSummary], what: str) -> str:
    rows = [
        [p.name, f"{p.start_s:.1f}", f"{p.end_s:.1f}", _fmt(p.mean_score, "{:.3f}"), f"{p.scored_s:.1f}"]
        for p in segments
    ]
    return _table([what, "from (s)", "to (s)", "mean score", "scored (s)"], rows)


def _states_block(summary: SessionSummary, relaxed: float, tense: float) -> str:
    total = sum(summary.state_s.values())
    if total <= 0:
        return "<p>No score was made (calibrating, stale or poor signal throughout).</p>"
    bar = "".join(
        f'<div style="width:{summary.state_s[s] / total:.1%};background:{STATE_COLOURS[s]}">{s}</div>'
        for s in STATES
        if summary.state_s[s] > 0
    )
    rows = [[s, f"{summary.state_s[s]:.1f}", f"{summary.state_s[s] / total:.0%}"] for s in STATES]
    legend = f"calm: score >= {relaxed:g}; tense: score < {tense:g}; neutral: in between"
    return f'<div class="states">{bar}</div><p>{esc(legend)}</p>' + _table(["state", "seconds", "share"], rows)


def _quality_table(reader: SessionReader) -> str:
    repairs = channel_repairs(reader)
    rows = [
        [name, share(fraction), reason or "–", share(spiked), str(total)]
        for (name, fraction, reason), (_, spiked, total) in zip(channel_quality(reader), repairs, strict=True)
    ]
    header = ["channel", "usable", "most frequent problem", "windows with a repaired spike", "spike samples repaired"]
    return _table(header, rows, numeric_from=1)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{esc(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_report(folder: Path, output: Path | None = None, threshold: float = 0.6, tense: float = 0.4) -> Path:
    """Draw the figures and write index.html; returns the HTML file's path."""
    reader = SessionReader(folder)
    if not reader.scores() and not reader.features() and not reader.has_eeg:
        raise DataError(f"{folder}: the session recorded nothing to report on (it stopped before the source streamed)")
    if tense > threshold:
        raise DataError(f"the tense threshold ({tense:g}) must not exceed the relaxed threshold ({threshold:g})")
    out = Path(output) if output is not None else reader.folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    _, end = reader.time_span()
    summary = summarize(reader, relaxed_threshold=threshold, tense_threshold=tense)
    if is_calibration(reader):
        page = _calibration_page(reader, summary, out, end)
    else:
        page = _session_page(reader, summary, out, end, threshold, tense)
    index = out / "index.html"
    index.write_text(page)
    return index


def _session_page(
    reader: SessionReader, summary: SessionSummary, out: Path, end: float, relaxed: float, tense: float
) -> str:
    plot_timeline(reader, out / "timeline.png", end, relaxed, tense)
    plot_channel_quality(reader, out / "channels.png")
    spectra = state_spectra(reader, score_labeller(reader, relaxed, tense)) if reader.has_eeg else {}
    plot_spectra(spectra, out / "spectra.png", "EEG spectrum by score state (channels usable most of the time)",
                 STATE_COLOURS)  # fmt: skip
    scripted = _has_script(reader)
    phase_title = "Phases of the simulated script (ground truth)" if scripted else "Phases"
    rows = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _summary_rows(summary, relaxed))
    parts = [
        f"<h2>Summary</h2><table>{rows}</table>",
        f"<h2>Time in calm, neutral and tense</h2>{_states_block(summary, relaxed, tense)}",
        f"<h2>{phase_title}</h2>{_segments_table(summary.phases, 'phase')}",
    ]
    if summary.marker_segments:
        parts.append(f"<h2>Between markers</h2>{_segments_table(summary.marker_segments, 'from marker')}")
    parts += [
        '<h2>Time line</h2><img src="timeline.png" alt="score, DE, controls and quality on one time axis">',
        '<h2>Spectrum by state</h2><img src="spectra.png" alt="power spectra while calm, neutral and tense">',
        f"<h2>Per-channel quality</h2>{_quality_table(reader)}",
        '<img src="channels.png" alt="fraction of windows each channel was usable">',
    ]
    return _page(f"Session {summary.session_id}", "\n".join(parts))


def _has_script(reader: SessionReader) -> bool:
    return any((e.get("data") or {}).get("source") == "script" for e in reader.events() if e.get("kind") == "phase")


def _calibration_page(reader: SessionReader, summary: SessionSummary, out: Path, end: float) -> str:
    plot_timeline(reader, out / "timeline.png", end, 0.6, 0.4, calibration=True)
    plot_channel_quality(reader, out / "channels.png")
    blocks = phase_intervals(reader, reader.t0 + end)
    t, bands, means = band_means(reader)
    features = reader.features()
    good = np.array([np.mean(f["good"]) if f["good"] else 0.0 for f in features]) if features else np.empty(0)
    rows = []
    for name, start, stop in blocks:
        inside = (t > start - reader.t0) & (t <= stop - reader.t0)  # a feature's time is its window's end
        cells = [name, f"{start - reader.t0:.1f}", f"{stop - start:.1f}"]
        for band in ("alpha", "beta"):
            column = means[inside, bands.index(band)] if band in bands and inside.any() else np.empty(0)
            cells.append(f"{np.nanmean(column):.3f}" if np.isfinite(column).any() else "–")
        cells.append(f"{good[inside].mean():.0%}" if inside.any() else "–")
        rows.append(cells)

    def kind_of(t_session: float) -> str | None:
        for name, start, stop in blocks:
            if start <= t_session < stop and name not in ("before",):
                return name.split()[0]
        return None

    spectra = state_spectra(reader, kind_of) if reader.has_eeg else {}
    colours = {"rest": COLOURS["calm"], "arithmetic": COLOURS["tense"]}
    plot_spectra(spectra, out / "spectra.png", "EEG spectrum by block kind", colours)
    header = ["block", "from (s)", "length (s)", "alpha DE (nats)", "beta DE (nats)", "usable channels"]
    parts = [
        f"<p>A calibration recorded by <code>neuromusic calibrate</code> ({esc(summary.started)}, "
        f"{summary.duration_s:.1f} s, source {esc(summary.source)}). It makes no score: it records rest and task "
        f"blocks to fit a listener's profile.</p>",
        f"<h2>Blocks</h2>{_table(header, rows)}",
        '<h2>Time line</h2><img src="timeline.png" alt="band DE and quality over the blocks">',
        '<h2>Spectrum by block kind</h2><img src="spectra.png" alt="power spectra of rest and task blocks">',
        f"<h2>Per-channel quality</h2>{_quality_table(reader)}",
        '<img src="channels.png" alt="fraction of windows each channel was usable">',
    ]
    return _page(f"Calibration {summary.session_id}", "\n".join(parts))
