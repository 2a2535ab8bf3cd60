"""Loudness benchmark: how loud the arranged music renders at each control setting, against the previous staging.

    .venv/bin/python benchmarks/loudness.py                       # sketch composer, 32 bars x 2 seeds per setting
    .venv/bin/python benchmarks/loudness.py --bars 16 --seeds 1   # quicker
    .venv/bin/python benchmarks/loudness.py --composer model      # the GPT-2 composer (slow on a CPU)

Each setting (valence x energy, 66 BPM) is composed, arranged by the Arranger and rendered by the WavSink, then
measured to ITU-R BS.1770 / EBU R128 (drivers/sinks/loudness.py): integrated loudness (LUFS), loudness range (LU),
true peak (dBTP). The baseline renders the same bars the way they were staged before: velocities 42-100, FluidSynth
gain 0.4, piano/harp/bass/pad only, no limiter, the TimGM6mb soundfont. Targets: every render within -23..-16 LUFS,
true peaks at or under -1 dBTP, energy 0.1 and 0.9 at most 6 LU apart. A last row steps energy 0.1 -> 0.9 -> 0.1
every 8 bars and reports the largest rise of the momentary (400 ms) loudness between neighbouring 100 ms steps.

Balance: each part of the arranged renders (melody, chords, bass, pad; a part's lively and calm voices together)
rendered alone from the same events and measured; the table gives each part's loudness relative to the melody's at
energy 0.1, 0.5 and 0.9 (medians over valences and seeds). A part more than 10 LU under the melody is buried, one
louder than the melody dominates it.

Live: the live FluidSynth sink has no limiter (its audio thread renders straight to the device), so its peaks are
measured at the loudest the controls ask for (energy 0.9 and 1.0, every part), rendered offline through the same
synth settings (drivers/sinks/offline.py LiveTap).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from neuromusic.drivers.sinks.config import SinkConfig
from neuromusic.drivers.sinks.fluidsynth_sink import CALIBRATED_GAIN
from neuromusic.drivers.sinks.loudness import PEAK_CEILING_DB, Loudness, measure
from neuromusic.drivers.sinks.offline import LiveTap, arrange, play
from neuromusic.drivers.sinks.wav_sink import WavSink
from neuromusic.models.core.messages import Bar, Controls
from neuromusic.models.music.arranger import Arranger, ArrangerConfig

TEMPO = 66.0
VALENCES = (0.1, 0.9)
ENERGIES = (0.1, 0.5, 0.9)
BASELINE_SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
BASELINE_ARRANGER = ArrangerConfig(velocity_low=42, velocity_high=100, calm_programs={}, variation=False)


def compose(kind: str, seed: int, plan: list[Controls]) -> list[Bar]:
    if kind == "model":
        from neuromusic.daemon.config import load_config
        from neuromusic.models.music.composer import Composer

        composer = Composer.load(load_config(overrides={"composer.seed": seed}).composer)
        return [composer.next_bar(c) for c in plan]
    from neuromusic.models.music.sketch_composer import SketchComposer

    sketch = SketchComposer(seed=seed)
    return [sketch.next_bar(c) for c in plan]


def render(bars: list[Bar], arranger: ArrangerConfig, sink: SinkConfig, path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    events, tempi, end = arrange(Arranger(arranger), bars)
    play([WavSink(path, sink, 0.0)], Arranger(arranger).programs(), events, tempi, end)
    data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    return data, int(rate)


def render_parts(bars: list[Bar], sink: SinkConfig, path: Path) -> dict[str, Loudness]:
    """Each part's loudness, rendered alone from the events the whole arrangement plays."""
    import soundfile

    arranger = Arranger(ArrangerConfig())
    events, tempi, end = arrange(arranger, bars)
    loudness = {}
    for role in ArrangerConfig().roles:
        play([WavSink(path, sink, 0.0)], arranger.programs(), [e for e in events if e.role == role], tempi, end)
        data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
        loudness[role] = measure(data, int(rate))
    return loudness


def balance(args: argparse.Namespace, sink: SinkConfig, folder: Path) -> list[tuple[str, ...]]:
    """Rows of the balance table: per energy, each part's loudness relative to the melody's (LU)."""
    rows: list[tuple[str, ...]] = [("energy", *(f"{role} (LU vs melody)" for role in ArrangerConfig().roles))]
    for energy in ENERGIES:
        offsets: dict[str, list[float]] = {}
        for valence in VALENCES:
            for seed in range(args.seeds):
                bars = compose(args.composer, seed, [Controls(TEMPO, valence, energy)] * args.bars)
                parts = render_parts(bars, sink, folder / "part.wav")
                for role, level in parts.items():
                    offsets.setdefault(role, []).append(level.integrated - parts["melody"].integrated)
                print(".", end="", file=sys.stderr, flush=True)
        rows.append((f"{energy}", *(f"{statistics.median(v):+.1f}" for v in offsets.values())))
    return rows


def live_peaks(args: argparse.Namespace, sink: SinkConfig) -> list[tuple[str, ...]]:
    """Rows of the live table: loudness and true peak of the live synth's sound, no limiter."""
    rows: list[tuple[str, ...]] = [("setting (live synth, no limiter)", "LUFS", "peak dBTP")]
    for energy in (0.9, 1.0):
        for valence in VALENCES:
            for seed in range(args.seeds):
                bars = compose(args.composer, seed, [Controls(TEMPO, valence, energy)] * args.bars)
                arranger = Arranger(ArrangerConfig())
                events, tempi, end = arrange(arranger, bars)
                tap = LiveTap(sink)
                play([tap], arranger.programs(), events, tempi, end)
                level = measure(tap.samples, tap.rate)
                name = f"valence {valence} energy {energy} seed {seed}"
                rows.append((name, f"{level.integrated:.1f}", f"{level.true_peak:.1f}"))
                print(".", end="", file=sys.stderr, flush=True)
    return rows


def largest_jump(data: np.ndarray, rate: int) -> float:
    """The largest rise of the level in 400 ms blocks, 100 ms apart, from one block to the next, in dB (unweighted:
    the K-weighting matters little for a rise between neighbouring blocks of one render)."""
    hop, width = rate // 10, int(0.4 * rate)
    levels = [10 * np.log10(float(np.mean(data[i : i + width] ** 2)) + 1e-12) for i in range(0, len(data) - width, hop)]
    rises = np.diff([lv for lv in levels if lv > -70.0])
    return float(rises.max()) if len(rises) else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=32, help="bars per piece (default 32)")
    parser.add_argument("--seeds", type=int, default=2, help="pieces per setting (default 2)")
    parser.add_argument("--composer", choices=("sketch", "model"), default="sketch")
    parser.add_argument("--soundfont", type=Path, default=None, help="soundfont for the new staging (default: search)")
    args = parser.parse_args()
    new_sink = SinkConfig(soundfont=args.soundfont)
    old_sink = SinkConfig(soundfont=BASELINE_SOUNDFONT, gain=0.4 / CALIBRATED_GAIN)
    rows: list[tuple[str, Loudness, Loudness]] = []
    by_setting: dict[tuple[float, float], list[tuple[Loudness, Loudness]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for valence in VALENCES:
            for energy in ENERGIES:
                for seed in range(args.seeds):
                    bars = compose(args.composer, seed, [Controls(TEMPO, valence, energy)] * args.bars)
                    new = measure(*render(bars, ArrangerConfig(), new_sink, Path(tmp) / "new.wav"))
                    old = measure(*render(bars, BASELINE_ARRANGER, old_sink, Path(tmp) / "old.wav"))
                    rows.append((f"valence {valence} energy {energy} seed {seed}", new, old))
                    by_setting.setdefault((valence, energy), []).append((new, old))
                    print(".", end="", file=sys.stderr, flush=True)
        plan = [Controls(TEMPO, 0.6, e) for e in (0.1, 0.9, 0.1) for _ in range(8)]
        bars = compose(args.composer, 0, plan)
        jump_new = largest_jump(*render(bars, ArrangerConfig(), new_sink, Path(tmp) / "step.wav"))
        jump_old = largest_jump(*render(bars, BASELINE_ARRANGER, old_sink, Path(tmp) / "step_old.wav"))
        parts = balance(args, new_sink, Path(tmp))
    live = live_peaks(args, new_sink)
    print(file=sys.stderr)
    report(rows, by_setting, jump_new, jump_old, args)
    part_widths = [max(len(r[i]) for r in parts) for i in range(len(parts[0]))]
    print("\nBalance: each part alone against the melody alone (integrated loudness, medians; buried < -10 LU)")
    for row in parts:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, part_widths, strict=True)))
    live_widths = [max(len(r[i]) for r in live) for i in range(3)]
    print(f"\nLive sound at the loudest settings (target: true peak <= {PEAK_CEILING_DB:.0f} dBTP)")
    for row in live:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, live_widths, strict=True)))
    return 0


def report(
    rows: list[tuple[str, Loudness, Loudness]],
    by_setting: dict[tuple[float, float], list[tuple[Loudness, Loudness]]],
    jump_new: float,
    jump_old: float,
    args: argparse.Namespace,
) -> None:
    header = ("setting", "LUFS", "LRA LU", "peak dBTP", "baseline LUFS", "baseline LRA", "baseline peak")
    table = [header]
    for name, new, old in rows:
        table.append(
            (
                name,
                *(
                    f"{v:.1f}"
                    for v in (new.integrated, new.range, new.true_peak, old.integrated, old.range, old.true_peak)
                ),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print(f"Loudness per control setting ({args.bars} bars at {TEMPO:.0f} BPM, {args.composer} composer)")
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))

    def gap(which: int) -> float:
        gaps = []
        for valence in VALENCES:
            low = statistics.median(p[which].integrated for p in by_setting[(valence, ENERGIES[0])])
            high = statistics.median(p[which].integrated for p in by_setting[(valence, ENERGIES[-1])])
            gaps.append(abs(high - low))
        return max(gaps)

    new_lufs = [r[1].integrated for r in rows]
    old_lufs = [r[2].integrated for r in rows]
    summary = [
        ("", "new", "baseline", "target"),
        (
            "quietest .. loudest render (LUFS)",
            f"{min(new_lufs):.1f} .. {max(new_lufs):.1f}",
            f"{min(old_lufs):.1f} .. {max(old_lufs):.1f}",
            "-23 .. -16",
        ),
        (
            "highest true peak (dBTP)",
            f"{max(r[1].true_peak for r in rows):.1f}",
            f"{max(r[2].true_peak for r in rows):.1f}",
            f"<= {PEAK_CEILING_DB:.0f}",
        ),
        ("energy 0.1 vs 0.9, median (LU)", f"{gap(0):.1f}", f"{gap(1):.1f}", "<= 6"),
        ("largest rise in 100 ms (dB)", f"{jump_new:.1f}", f"{jump_old:.1f}", "energy 0.1/0.9/0.1, 8 bars each"),
    ]
    widths = [max(len(r[i]) for r in summary) for i in range(4)]
    print()
    for row in summary:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    raise SystemExit(main())
