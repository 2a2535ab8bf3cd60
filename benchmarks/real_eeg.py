"""The relaxation score on real recordings, side by side with BrainFlow's own classifiers on the same windows.

    .venv/bin/python benchmarks/real_eeg.py [--data DIR] [--config TOML] [--notch HZ] [FILE[:STATE|:PERIODS.csv] ...]

Every recording in the real-EEG folder (`--data`, else $NEUROMUSIC_REAL_EEG, else DEFAULT_DATA, the data folder beside
the repository) and every file given on the command line is replayed through the real signal path (FeaturePipeline and
RelaxationScorer, chunks of 40 ms, as `--board replay` feeds them) from a cold start: the score's baseline falls in
the first `score.baseline_s` seconds. A file's labelled periods come from its annotations (eyes closed / rest / relax
= relaxed; eyes open / task / arithmetic = active), from a CSV of `start_s,end_s,state` rows given as FILE:PERIODS.csv
(any file the replay reads, XDF included), or the whole file is one period with FILE:rest or FILE:active; consecutive
whole-file periods are joined into one stream. In the folder, the EEGMAT pair is replayed as arithmetic, rest,
arithmetic, rest.

Windows compared: after the baseline, lying wholly inside one period, at least `--skip` seconds after its start
(5 s; 2 s for recordings whose periods are short). BrainFlow gets the same 2 s of raw signal per window, on the
channels with 10-20 names: `get_avg_band_powers(..., apply_filter=True)` -> RESTFULNESS and 1 - MINDFULNESS
(DEFAULT_CLASSIFIER). Printed per recording: AUC of each (relaxed vs active), the mean score per state, the time
after each switch until the score crosses the midpoint between the two states' means, the channels excluded
per state with their reasons, the windows without a score value and those that held a repaired spike.
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from neuromusic.models.core.messages import Chunk, FloatArray
from neuromusic.models.signal.features import FeatureConfig
from neuromusic.models.signal.montage import canonical_name
from neuromusic.models.signal.pipeline import FeaturePipeline
from neuromusic.models.signal.score import RelaxationScorer, ScoreConfig

REPO = Path(__file__).resolve().parents[1]
DATA_ENV = "NEUROMUSIC_REAL_EEG"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "real-eeg"  # the recordings kept beside a checkout
RELAXED_WORDS = ("closed", "rest", "relax", "calm")
ACTIVE_WORDS = ("open", "task", "arithmetic", "active", "stress")
CHUNK_S = 0.04


@dataclass
class Recording:
    """A stream of samples in microvolts with labelled periods (start s, end s, relaxed)."""

    name: str
    data: FloatArray  # (channels, samples), µV
    channel_names: tuple[str, ...]
    sfreq: float
    periods: list[tuple[float, float, bool]]
    skip_s: float = 5.0


@dataclass
class Result:
    name: str
    n_windows: dict[bool, int]
    auc: dict[str, float]  # "ours", "restfulness", "1-mindfulness"
    mean: dict[str, dict[bool, float]]
    midpoint_s: list[float | None]  # per switch: seconds until our score crossed the midpoint, None: not crossed
    excluded: dict[bool, Counter[tuple[str, str]]]  # state -> (channel, reason) -> windows
    excluded_mean: dict[bool, float]  # state -> mean number of channels excluded per window
    unscored: int = 0  # windows without a score value (poor signal)
    repaired: int = 0  # compared windows where a spike was repaired (the channels stayed good)
    series: dict[str, FloatArray] = field(default_factory=dict)  # t, score, truth of every window
    reasons: list[tuple[str, ...]] = field(default_factory=list)  # every window's bad-channel reasons


def data_dir(explicit: Path | None = None) -> Path:
    """The real-EEG folder: `explicit`, else $NEUROMUSIC_REAL_EEG, else DEFAULT_DATA."""
    if explicit is not None:
        return explicit
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return DEFAULT_DATA


def read_file(path: Path) -> tuple[FloatArray, tuple[str, ...], float, list[tuple[float, float, str]]]:
    """(µV data, channel names, sfreq, annotations (start, end, description)) through the replay loader."""
    from neuromusic.drivers.replay_source import load_recording
    from neuromusic.models.core.errors import SourceError

    try:
        data, _, names, sfreq, _ = load_recording(path)
    except SourceError as error:
        raise SystemExit(str(error)) from error
    annotations: list[tuple[float, float, str]] = []
    if not path.is_dir():
        import mne

        try:
            found = mne.read_annotations(path)
        except (ValueError, OSError, RuntimeError, TypeError):
            found = []
        annotations = [(float(a["onset"]), float(a["onset"] + a["duration"]), str(a["description"])) for a in found]
    return data, names, sfreq, annotations


def state_of(description: str) -> bool | None:
    text = description.lower()
    if any(w in text for w in RELAXED_WORDS):
        return True
    if any(w in text for w in ACTIVE_WORDS):
        return False
    return None


def from_annotations(path: Path) -> Recording:
    data, names, sfreq, annotations = read_file(path)
    periods = [(s, e, r) for s, e, d in annotations if (r := state_of(d)) is not None and e > s]
    if not periods:
        raise SystemExit(f"{path}: no labelled periods in its annotations; give FILE:rest or FILE:active")
    short = np.median([e - s for s, e, _ in periods]) < 10.0
    return Recording(path.name, data, names, sfreq, sorted(periods), skip_s=2.0 if short else 5.0)


def from_periods_file(path: Path, periods_csv: Path) -> Recording:
    """A recording whose periods are rows `start_s,end_s,state` of a CSV file (a header row is skipped)."""
    import csv

    data, names, sfreq, _ = read_file(path)
    periods = []
    with periods_csv.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            try:
                start, end, state = float(row[0]), float(row[1]), state_of(row[2])
            except (ValueError, IndexError):
                if number == 1:
                    continue  # a header
                raise SystemExit(f"{periods_csv}:{number}: expected start_s,end_s,state, got {row}") from None
            if state is None:
                raise SystemExit(f"{periods_csv}:{number}: state must be rest or active (or eyes_closed / eyes_open)")
            periods.append((start, end, state))
    if not periods:
        raise SystemExit(f"{periods_csv}: no periods")
    short = np.median([e - s for s, e, _ in periods]) < 10.0
    return Recording(path.name, data, names, sfreq, sorted(periods), skip_s=2.0 if short else 5.0)


def joined(name: str, parts: list[tuple[Path, bool]]) -> Recording:
    """Whole files, each one period, joined in the order given (they must share channels and rate)."""
    blocks, periods, start = [], [], 0.0
    names: tuple[str, ...] = ()
    sfreq = 0.0
    for path, relaxed in parts:
        data, file_names, file_sfreq, _ = read_file(path)
        if blocks and (file_names != names or file_sfreq != sfreq):
            raise SystemExit(f"{path}: channels or rate differ from {parts[0][0]}; cannot join them")
        names, sfreq = file_names, file_sfreq
        blocks.append(data)
        periods.append((start, start + data.shape[1] / sfreq, relaxed))
        start += data.shape[1] / sfreq
    return Recording(name, np.concatenate(blocks, axis=1), names, sfreq, periods)


def shared_recordings(folder: Path, repeats: int = 2) -> list[Recording]:
    """The recordings of the real-EEG folder (see its README): the EEGMAT pair, replayed as arithmetic then rest
    `repeats` times, and the eye-state recording."""
    if not folder.is_dir():
        raise SystemExit(f"real-EEG folder {folder} not found; pass --data DIR or set ${DATA_ENV}")
    out = []
    rest = sorted(folder.glob("*_1_rest.edf"))
    for rest_file in rest:
        task_file = rest_file.with_name(rest_file.name.replace("_1_rest", "_2_arithmetic"))
        if task_file.exists():
            name = rest_file.name.replace("_1_rest.edf", "")
            plan = [(task_file, False), (rest_file, True)] * repeats
            out.append(joined(f"{name} (arithmetic/rest x{repeats})", plan))
    for fif in sorted(folder.glob("*.fif*")):
        out.append(from_annotations(fif))
    return out


def command_line_recordings(specs: Iterable[str]) -> list[Recording]:
    out: list[Recording] = []
    pending: list[tuple[Path, bool]] = []
    for spec in specs:
        path_text, _, label = spec.rpartition(":") if ":" in spec and not Path(spec).exists() else (spec, "", "")
        whole_file = bool(label) and not label.lower().endswith(".csv")
        if whole_file:
            relaxed = state_of(label)
            if relaxed is None:
                raise SystemExit(f"{spec}: state must be rest or active (or eyes_closed / eyes_open)")
            pending.append((Path(path_text), relaxed))
            continue
        if pending:
            out.append(joined(" + ".join(p.name for p, _ in pending), pending))
            pending = []
        if label:
            out.append(from_periods_file(Path(path_text), Path(label)))
        else:
            out.append(from_annotations(Path(spec)))
    if pending:
        out.append(joined(" + ".join(p.name for p, _ in pending), pending))
    return out


def replay(
    recording: Recording, features: FeatureConfig, score: ScoreConfig, chunk_s: float = CHUNK_S
) -> tuple[FloatArray, FloatArray, list[tuple[str, ...]], FloatArray]:
    """(window end times, score values (NaN: none), bad reasons per window, spike samples repaired per window and
    channel) of a cold-start replay. The chunk size changes nothing but the time it takes: the pipeline gives the
    same features however a stream is cut."""
    names = recording.channel_names
    pipeline = FeaturePipeline(features, recording.sfreq, names)
    scorer = RelaxationScorer(score, tuple(features.bands), names)
    step = max(1, round(chunk_s * recording.sfreq))
    n = recording.data.shape[1]
    ts = np.arange(n) / recording.sfreq
    times, values, reasons, repaired = [], [], [], []
    for start in range(0, n, step):
        chunk = Chunk(recording.data[:, start : start + step], ts[start : start + step], names, recording.sfreq)
        for f in pipeline.push(chunk):
            s = scorer.update(f)
            times.append(f.source_time)
            values.append(np.nan if s.value is None else s.value)
            reasons.append(f.bad_reasons)
            repaired.append(f.repaired)
    return np.array(times), np.array(values), reasons, np.array(repaired, dtype=np.float64).reshape(-1, len(names))


def labels(recording: Recording, times: FloatArray, window_s: float, after_s: float) -> FloatArray:
    """1 relaxed / 0 active per window end time, NaN where the window is not compared."""
    out = np.full(len(times), np.nan)
    for start, end, relaxed in recording.periods:
        first = start + max(recording.skip_s, window_s)
        inside = (times >= max(first, after_s)) & (times <= end)
        out[inside] = 1.0 if relaxed else 0.0
    return out


def auc(values: FloatArray, truth: FloatArray) -> float:
    """Area under the ROC curve of `values` separating truth 1 from 0 (ties count half)."""
    from scipy.stats import rankdata

    ranks = rankdata(values)
    pos = truth == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def brainflow_scores(recording: Recording, times: FloatArray, window_s: float) -> dict[str, FloatArray]:
    """BrainFlow RESTFULNESS and 1 - MINDFULNESS on the raw window ending at each time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brainflow's pkg_resources deprecation
        from brainflow.data_filter import DataFilter
        from brainflow.ml_model import BrainFlowClassifiers, BrainFlowMetrics, BrainFlowModelParams, MLModel

    DataFilter.disable_data_logger()
    known = [i for i, c in enumerate(recording.channel_names) if canonical_name(c) is not None]
    channels = known or list(range(len(recording.channel_names)))
    data = np.ascontiguousarray(recording.data[channels])
    win = round(window_s * recording.sfreq)
    out: dict[str, FloatArray] = {}
    for key, metric in (("restfulness", BrainFlowMetrics.RESTFULNESS), ("1-mindfulness", BrainFlowMetrics.MINDFULNESS)):
        model = MLModel(BrainFlowModelParams(metric.value, BrainFlowClassifiers.DEFAULT_CLASSIFIER.value))
        model.prepare()
        try:
            values = np.full(len(times), np.nan)
            for i, t in enumerate(times):
                end = round(t * recording.sfreq) + 1
                window = np.ascontiguousarray(data[:, max(0, end - win) : end])
                avg, std = DataFilter.get_avg_band_powers(
                    window, list(range(len(channels))), int(recording.sfreq), True
                )
                values[i] = float(model.predict(np.concatenate([avg, std]))[0])
        finally:
            model.release()
        out[key] = values if key == "restfulness" else 1.0 - values
    return out


def midpoint_times(recording: Recording, times: FloatArray, values: FloatArray, after_s: float) -> list[float | None]:
    """Per switch after the baseline into a period of >= 3 s: seconds until the score crossed the midpoint between
    the two states' means, toward the new state (None: not within the period)."""
    truth = labels(recording, times, 0.0, after_s)
    level = {state: float(np.nanmean(values[truth == state])) for state in (0.0, 1.0)}
    middle = 0.5 * (level[0.0] + level[1.0])
    out: list[float | None] = []
    for (_, _, before), (start, end, relaxed) in zip(recording.periods, recording.periods[1:], strict=False):
        if relaxed == before or start < after_s or end - start < 3.0:
            continue
        inside = (times >= start) & (times <= end) & np.isfinite(values)
        crossed = values[inside] > middle if relaxed else values[inside] < middle
        hit = np.flatnonzero(crossed)
        out.append(float(times[inside][hit[0]] - start) if hit.size else None)
    return out


def evaluate(
    recording: Recording,
    features: FeatureConfig | None = None,
    score: ScoreConfig | None = None,
    stride: int = 1,
    chunk_s: float = CHUNK_S,
) -> Result:
    """Replay `recording` and compare our score with BrainFlow's on every `stride`-th compared window."""
    features = features or FeatureConfig()
    score = score or ScoreConfig()
    times, values, reasons, repaired = replay(recording, features, score, chunk_s)
    # The window that ends the baseline still belongs to it: comparisons start one hop later.
    after = float(times[0]) + score.baseline_s + 0.5 * features.hop_s if len(times) else 0.0
    truth = labels(recording, times, features.window_s, after)
    compared = np.flatnonzero(np.isfinite(truth))[::stride]
    bf = brainflow_scores(recording, times[compared], features.window_s)
    ours = np.where(np.isfinite(values[compared]), values[compared], 0.5)
    y = truth[compared]
    aucs = {"ours": auc(ours, y), **{k: auc(v, y) for k, v in bf.items()}}
    means = {k: {s: float(np.mean(v[y == s])) for s in (True, False)} for k, v in {"ours": ours, **bf}.items()}
    excluded: dict[bool, Counter[tuple[str, str]]] = {True: Counter(), False: Counter()}
    count = {True: 0, False: 0}
    for i in compared:
        state = bool(truth[i])
        for ch, why in zip(recording.channel_names, reasons[i], strict=True):
            if why:
                excluded[state][(ch, why)] += 1
                count[state] += 1
    n = {s: int((y == s).sum()) for s in (True, False)}
    return Result(
        name=recording.name,
        n_windows=n,
        auc=aucs,
        mean=means,
        midpoint_s=midpoint_times(recording, times, values, after),
        excluded=excluded,
        excluded_mean={s: count[s] / max(1, n[s]) for s in (True, False)},
        unscored=int((~np.isfinite(values[compared])).sum()),
        repaired=int((repaired[compared] > 0).any(axis=1).sum()),
        series={"t": times, "score": values, "truth": truth},
        reasons=reasons,
    )


def _excluded_text(result: Result, state: bool, top: int = 4) -> str:
    n = max(1, result.n_windows[state])
    items = result.excluded[state].most_common(top)
    detail = ", ".join(f"{ch} {why} {100 * k / n:.0f}%" for (ch, why), k in items) or "none"
    return f"{result.excluded_mean[state]:.2f}/window ({detail})"


def report(results: list[Result]) -> None:
    print(f"{'recording':<42} {'windows':>9} {'AUC ours':>8} {'BF rest':>8} {'BF 1-mind':>9}")
    for r in results:
        windows = f"{r.n_windows[True]}/{r.n_windows[False]}"
        print(
            f"{r.name:<42} {windows:>9} {r.auc['ours']:>8.3f} {r.auc['restfulness']:>8.3f} "
            f"{r.auc['1-mindfulness']:>9.3f}"
        )
    print()
    print(f"{'recording':<42} {'mean relaxed/active (difference)':>34} {'BF rest relaxed/active':>24}")
    for r in results:
        ours, bf = r.mean["ours"], r.mean["restfulness"]
        text = f"{ours[True]:.2f} / {ours[False]:.2f} ({ours[True] - ours[False]:+.2f})"
        print(f"{r.name:<42} {text:>34} {bf[True]:>11.2f} / {bf[False]:.2f}")
    print()
    for r in results:
        crossed = [m for m in r.midpoint_s if m is not None]
        missed = len(r.midpoint_s) - len(crossed)
        times = ", ".join("-" if m is None else f"{m:.1f}" for m in r.midpoint_s)
        summary = f"median {np.median(crossed):.1f} s, max {max(crossed):.1f} s" if crossed else "never"
        print(f"{r.name}: midpoint crossed after each switch (s): {times}  [{summary}; {missed} not crossed]")
        print(f"    excluded while relaxed: {_excluded_text(r, True)}")
        print(f"    excluded while active:  {_excluded_text(r, False)}")
        print(f"    {r.unscored} compared windows had no score value (counted as 0.5)")
        if r.repaired:
            print(f"    {r.repaired} compared windows held a repaired spike (scored with it removed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="EDF/BDF/FIF/XDF with labelled periods, or FILE:rest / FILE:active")
    parser.add_argument("--data", type=Path, help=f"real-EEG folder (default ${DATA_ENV} or {DEFAULT_DATA})")
    parser.add_argument("--no-shared", action="store_true", help="only the files given")
    parser.add_argument("--config", type=Path, help="neuromusic TOML whose [features] and [score] to use")
    parser.add_argument("--notch", type=float, help="mains notch in Hz (features.notch_hz)")
    parser.add_argument("--skip", type=float, help="seconds left out after each switch (default 5, 2 if short)")
    parser.add_argument("--stride", type=int, default=1, help="compare every Nth window (default every one)")
    args = parser.parse_args()
    from neuromusic.daemon.config import load_config

    config = load_config(args.config, {"features.notch_hz": args.notch})
    recordings = [] if args.no_shared else shared_recordings(data_dir(args.data))
    recordings += command_line_recordings(args.files)
    results = []
    for recording in recordings:
        if args.skip is not None:
            recording.skip_s = args.skip
        results.append(evaluate(recording, config.features, config.score, args.stride))
    print(
        f"window {config.features.window_s:g} s, hop {config.features.hop_s:g} s, "
        f"baseline {config.score.baseline_s:g} s, smoothing {config.score.smoothing_s:g} s; "
        "windows relaxed/active; BF = BrainFlow DEFAULT_CLASSIFIER"
    )
    report(results)


if __name__ == "__main__":
    main()
