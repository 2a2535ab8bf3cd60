"""How far any label-free score can separate the states of a real recording: the AUC of simple single features.

    .venv/bin/python benchmarks/real_eeg_ceiling.py [--data DIR] [--top N] [FILE[:STATE|:PERIODS.csv] ...]

For each recording (the shared folder's, read as benchmarks/real_eeg.py reads them, and any given on the command
line) the signal runs through the real FeaturePipeline, artifact rules included, with 1, 2 and 4 s windows, as
recorded and re-referenced to the average and to the median of its EEG channels (`features.reference`). Per window
and channel it takes simple features: the log power (DE) of delta 1-3, theta 4-7, alpha 8-13, low beta 14-20, beta
14-30 and gamma 31-45 Hz; alpha's share of 1-45 Hz; alpha over theta; alpha over beta; and the alpha peak's
prominence (alpha over the mean of theta and low beta). A channel's windows count only where the rules passed it.

Windows compared: those real_eeg.py compares (after the score's 30 s baseline, at least the recording's skip after
a switch, wholly inside one period), with the labels as given and shifted by +-0.5 and +-1 s (labels coded from
video may lag or lead the eyes). Printed:

1. the alpha features at the posterior channels (O, PO, P): their AUC with the 2 s window, as recorded;
2. the best single features of all (any channel, reference, window, label shift), chosen with the labels in hand:
   an upper bound for a score built on any one of them;
3. a supervised ceiling: a logistic regression on every band of every channel (2 s window), trained on all periods
   but one and tested on that one, for each period in turn (only for recordings with 3 or more periods of each
   state). A score that never sees the labels is not expected to beat it.

AUC > 0.5: the feature is higher in the relaxed (eyes closed / rest) state.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
from neuromusic.models.core.messages import Chunk, FloatArray
from neuromusic.models.signal.calibration import fit_logistic
from neuromusic.models.signal.features import REFERENCES, FeatureConfig, Reference
from neuromusic.models.signal.montage import canonical_name, region
from neuromusic.models.signal.pipeline import FeaturePipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_eeg  # the benchmark beside this one: recordings, labels, AUC

BANDS = {
    "delta": (1.0, 3.0),
    "theta": (4.0, 7.0),
    "alpha": (8.0, 13.0),
    "low beta": (14.0, 20.0),
    "beta": (14.0, 30.0),
    "gamma": (31.0, 45.0),
}
WINDOWS_S = (1.0, 2.0, 4.0)
SHIFTS_S = (-1.0, -0.5, 0.0, 0.5, 1.0)
BASELINE_S = 30.0  # the score's default baseline: windows before its end are not compared
POSTERIOR = ("occipital", "parietal")
ALPHA_FEATURES = ("alpha", "alpha share", "alpha/theta", "alpha/beta", "alpha prominence")


class Run(NamedTuple):
    """Window end times (s), features name -> (windows, channels) with NaN where the rules failed the channel."""

    times: FloatArray
    features: dict[str, FloatArray]


class Row(NamedTuple):
    auc: float
    feature: str
    channel: str
    reference: str
    window_s: float
    shift_s: float
    support: str  # windows relaxed/active compared, and the periods they lie in


def features_of(recording: real_eeg.Recording, window_s: float, reference: Reference = "recorded") -> Run:
    """Replay the recording through the pipeline (window `window_s`, `reference`) and derive the single features
    per window."""
    data = recording.data
    config = FeatureConfig(window_s=window_s, bands=BANDS, reference=reference)
    names = recording.channel_names
    pipeline = FeaturePipeline(config, recording.sfreq, names)
    step = max(1, round(0.5 * recording.sfreq))
    ts = np.arange(data.shape[1]) / recording.sfreq
    times, des = [], []
    for start in range(0, data.shape[1], step):
        for f in pipeline.push(Chunk(data[:, start : start + step], ts[start : start + step], names, recording.sfreq)):
            times.append(f.source_time)
            des.append(np.where(f.good[np.newaxis, :], f.de, np.nan))
    de = np.stack(des)  # (windows, bands, channels), nats: ½·ln(power) plus a constant
    band = {name: de[:, i] for i, name in enumerate(BANDS)}
    power = {name: np.exp(2.0 * v) for name, v in band.items()}
    total = 0.5 * np.log(power["delta"] + power["theta"] + power["alpha"] + power["beta"] + power["gamma"])
    out = dict(band)
    out["alpha share"] = band["alpha"] - total
    out["alpha/theta"] = band["alpha"] - band["theta"]
    out["alpha/beta"] = band["alpha"] - band["beta"]
    out["alpha prominence"] = band["alpha"] - 0.5 * (band["theta"] + band["low beta"])
    return Run(np.array(times), out)


def truth(recording: real_eeg.Recording, run: Run, window_s: float, shift_s: float) -> FloatArray:
    """real_eeg.py's labels of the compared windows (1 relaxed, 0 active, NaN not compared), periods shifted."""
    shifted = dataclasses.replace(recording, periods=[(s + shift_s, e + shift_s, r) for s, e, r in recording.periods])
    return real_eeg.labels(shifted, run.times, window_s, float(run.times[0]) + BASELINE_S)


def channel_auc(values: FloatArray, y: FloatArray) -> float:
    usable = np.isfinite(values) & np.isfinite(y)
    return real_eeg.auc(values[usable], y[usable]) if usable.any() else float("nan")


def table(recording: real_eeg.Recording) -> tuple[list[Row], dict[bool, int]]:
    """Every (feature, channel, reference, window, shift) with its AUC, and the number of windows compared per
    state with the 2 s window and the labels as given."""
    out: list[Row] = []
    counts: dict[bool, int] = {}
    for reference in REFERENCES:
        for window_s in WINDOWS_S:
            run = features_of(recording, window_s, reference)
            for shift_s in SHIFTS_S:
                y = truth(recording, run, window_s, shift_s)
                if window_s == 2.0 and shift_s == 0.0:
                    counts = {state: int((y == state).sum()) for state in (True, False)}
                support = _support(recording, run, y, shift_s)
                for feature, values in run.features.items():
                    for c, channel in enumerate(recording.channel_names):
                        auc = channel_auc(values[:, c], y)
                        if np.isfinite(auc):
                            out.append(Row(auc, feature, channel, reference, window_s, shift_s, support))
    return out, counts


def _support(recording: real_eeg.Recording, run: Run, y: FloatArray, shift_s: float) -> str:
    """'relaxed/active windows in N periods' for the windows compared."""
    compared = run.times[np.isfinite(y)]
    periods = sum(
        bool(np.any((compared > start + shift_s) & (compared <= end + shift_s))) for start, end, _ in recording.periods
    )
    return f"{int((y == 1).sum())}/{int((y == 0).sum())} in {periods}"


def supervised_ceiling(
    recording: real_eeg.Recording, reference: Reference = "recorded", l2: float = 1.0
) -> float | None:
    """AUC of a logistic regression on every band's DE of every channel (2 s window), each period predicted by a
    model trained on all the others. None with fewer than 3 periods of a state."""
    if min(sum(r == state for *_, r in recording.periods) for state in (True, False)) < 3:
        return None
    run = features_of(recording, 2.0, reference)
    x = np.concatenate([run.features[b] for b in BANDS], axis=1)  # (windows, bands x channels)
    x = np.where(np.isfinite(x), x, np.nanmean(x, axis=0))  # a failed channel counts as its mean
    y = truth(recording, run, 2.0, 0.0)
    period = np.full(len(run.times), -1)
    for i, (start, end, _) in enumerate(recording.periods):
        period[(run.times - 2.0 >= start) & (run.times <= end)] = i
    decision = np.full(len(run.times), np.nan)
    compared = np.isfinite(y)
    for held_out in np.unique(period[compared]):
        train, test = compared & (period != held_out), compared & (period == held_out)
        if len(set(y[train].tolist())) < 2:
            continue
        model = fit_logistic(x[train], y[train].astype(np.int64), l2)
        decision[test] = model.decision(x[test])
    return channel_auc(decision, y)


def report(recording: real_eeg.Recording, top: int) -> None:
    rows, n = table(recording)
    print(f"\n== {recording.name}: {len(recording.periods)} periods, {len(recording.channel_names)} channels")
    posterior = [c for c in recording.channel_names if region(c) in POSTERIOR]
    if posterior:
        print(f"alpha features at the posterior channels, 2 s window, as recorded (windows {n[True]}/{n[False]}):")
        print(f"{'feature':<18}" + "".join(f"{canonical_name(c) or c:>7}" for c in posterior))
        lookup = {(r.feature, r.channel): r.auc for r in rows if _plain(r)}
        for feature in ALPHA_FEATURES:
            print(f"{feature:<18}" + "".join(f"{lookup.get((feature, c), np.nan):>7.2f}" for c in posterior))
    print(f"best single features, chosen with the labels (|AUC - 0.5| largest of {len(rows)}):")
    header = f"{'AUC':>6}  {'feature':<17}{'channel':<10}{'reference':<10}{'window':>7}{'labels':>8}"
    print(f"{header}  windows relaxed/active in periods")
    for r in sorted(rows, key=lambda r: -abs(r.auc - 0.5))[:top]:
        name = canonical_name(r.channel) or r.channel
        line = f"{r.auc:>6.3f}  {r.feature:<17}{name:<10}{r.reference:<10}{r.window_s:>6.0f}s{r.shift_s:>+7.1f}s"
        print(f"{line}  {r.support}")
    choices = (
        ("as recorded, as labelled, 2 s window", _plain),
        ("with a window of 2 s or less", lambda r: r.window_s <= 2.0),
        ("alpha feature, any", lambda r: r.feature in ALPHA_FEATURES),
        ("alpha feature, window of 2 s or less", lambda r: r.feature in ALPHA_FEATURES and r.window_s <= 2.0),
    )
    for label, keep in choices:
        chosen = [r for r in rows if keep(r)]
        best = max(chosen, key=lambda r: abs(r.auc - 0.5), default=None)
        if best is not None:
            print(
                f"best {label}: {best.auc:.3f} ({best.feature}, {best.channel}, {best.reference}, {best.window_s:g} s)"
            )
    for reference in REFERENCES:
        ceiling = supervised_ceiling(recording, reference)
        if ceiling is not None:
            print(
                f"supervised, each period predicted by a model of the others (all bands x channels, {reference}): "
                f"AUC {ceiling:.3f}"
            )


def _plain(row: Row) -> bool:
    return row.reference == "recorded" and row.window_s == 2.0 and row.shift_s == 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="EDF/BDF/FIF/XDF with labelled periods, or FILE:rest / FILE:active")
    parser.add_argument("--data", type=Path, help=f"real-EEG folder (default ${real_eeg.DATA_ENV} or beside the repo)")
    parser.add_argument("--no-shared", action="store_true", help="only the files given")
    parser.add_argument("--top", type=int, default=12, help="how many of the best single features to list")
    args = parser.parse_args()
    recordings = [] if args.no_shared else real_eeg.shared_recordings(real_eeg.data_dir(args.data), repeats=1)
    recordings += real_eeg.command_line_recordings(args.files)
    for recording in recordings:
        report(recording, args.top)


if __name__ == "__main__":
    main()
