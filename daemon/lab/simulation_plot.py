"""The PNG of `neuromusic simulate --plot`: per listener, the hidden relaxation, the score and the controls over time
for each policy (seed 0), with the best fixed controls' mean relaxation and the 90 % line for reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from neuromusic.daemon.session.simulation import REACH_FRACTION, FixedBest, SessionTrace
from neuromusic.models.core.errors import NeuromusicError


def plot_traces(traces: list[tuple[str, FixedBest, SessionTrace]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or on a headless box
    import matplotlib.pyplot as plt

    listeners = list(dict.fromkeys(name for name, _, _ in traces))
    fig, axes = plt.subplots(5, len(listeners), figsize=(5.5 * len(listeners), 11), sharex=True, squeeze=False)
    colours: dict[str, str] = {}
    for column, listener in enumerate(listeners):
        ax_hidden, ax_score, ax_tempo, ax_valence, ax_energy = axes[:, column]
        best = next(b for name, b, _ in traces if name == listener)
        for name, _, trace in traces:
            if name != listener:
                continue
            colour = colours.setdefault(trace.policy, f"C{len(colours)}")
            minutes = trace.hidden_t / 60.0
            ax_hidden.plot(minutes, trace.hidden, color=colour, lw=1, label=trace.policy)
            ax_score.plot(trace.score_t / 60.0, trace.score, color=colour, lw=0.6)
            bars = trace.bar_t / 60.0
            ax_tempo.step(bars, trace.controls[:, 0], where="post", color=colour, lw=1)
            ax_valence.step(bars, trace.controls[:, 1], where="post", color=colour, lw=1)
            ax_energy.step(bars, trace.controls[:, 2], where="post", color=colour, lw=1)
        ax_hidden.axhline(best.mean_relaxation, color="k", ls="--", lw=0.8, label="best fixed (mean)")
        ax_hidden.axhline(REACH_FRACTION * best.mean_relaxation, color="grey", ls=":", lw=0.8, label="90 % of it")
        c = best.controls
        for ax, value in ((ax_tempo, c.tempo), (ax_valence, c.valence), (ax_energy, c.energy)):
            ax.axhline(value, color="k", ls="--", lw=0.8)
        ax_hidden.set_title(f"listener {listener!r}")
        ax_hidden.set_ylim(0, 1)
        ax_score.set_ylim(0, 1)
        ax_valence.set_ylim(-0.05, 1.05)
        ax_energy.set_ylim(-0.05, 1.05)
        ax_energy.set_xlabel("simulated minutes")
        if column == 0:
            for ax, label in zip(
                (ax_hidden, ax_score, ax_tempo, ax_valence, ax_energy),
                ("hidden relaxation", "score", "tempo (BPM)", "valence", "energy"),
                strict=True,
            ):
                ax.set_ylabel(label)
            ax_hidden.legend(loc="lower right", fontsize=7)
    for ax in np.ravel(axes):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=90)
    except OSError as error:
        raise NeuromusicError(f"cannot write the plot to {path}: {error}") from error
    finally:
        plt.close(fig)
