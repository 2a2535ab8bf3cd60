"""The PNG of `neuromusic simulate --plot`: per listener, the hidden relaxation, the score and the controls over time
for each policy (seed 0), with the best fixed controls' mean relaxation and the 90 % line for reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from neuromusic.daemon.session.simulation import REACH_FRACTION, FixedBest, SessionTrace
from neuromusic.models.core.controls import CONTROLS
from neuromusic.models.core.errors import NeuromusicError


def plot_traces(traces: list[tuple[str, FixedBest, SessionTrace]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or on a headless box
    import matplotlib.pyplot as plt

    listeners = list(dict.fromkeys(name for name, _, _ in traces))
    rows = 2 + len(CONTROLS)  # hidden relaxation, score, then one panel per control
    fig, axes = plt.subplots(
        rows, len(listeners), figsize=(5.5 * len(listeners), 2.2 * rows), sharex=True, squeeze=False
    )
    colours: dict[str, str] = {}
    for column, listener in enumerate(listeners):
        ax_hidden, ax_score, *ax_controls = axes[:, column]
        best = next(b for name, b, _ in traces if name == listener)
        for name, _, trace in traces:
            if name != listener:
                continue
            colour = colours.setdefault(trace.policy, f"C{len(colours)}")
            minutes = trace.hidden_t / 60.0
            ax_hidden.plot(minutes, trace.hidden, color=colour, lw=1, label=trace.policy)
            ax_score.plot(trace.score_t / 60.0, trace.score, color=colour, lw=0.6)
            bars = trace.bar_t / 60.0
            for i, ax in enumerate(ax_controls):
                ax.step(bars, trace.controls[:, i], where="post", color=colour, lw=1)
        ax_hidden.axhline(best.mean_relaxation, color="k", ls="--", lw=0.8, label="best fixed (mean)")
        ax_hidden.axhline(REACH_FRACTION * best.mean_relaxation, color="grey", ls=":", lw=0.8, label="90 % of it")
        for spec, ax, value in zip(CONTROLS, ax_controls, best.controls.values(), strict=True):
            ax.axhline(value, color="k", ls="--", lw=0.8)
            if not spec.unit:
                ax.set_ylim(spec.low - 0.05, spec.high + 0.05)
        ax_hidden.set_title(f"listener {listener!r}")
        ax_hidden.set_ylim(0, 1)
        ax_score.set_ylim(0, 1)
        ax_controls[-1].set_xlabel("simulated minutes")
        if column == 0:
            labels = [f"{spec.label} ({spec.unit})" if spec.unit else spec.label for spec in CONTROLS]
            for ax, label in zip(
                (ax_hidden, ax_score, *ax_controls), ("hidden relaxation", "score", *labels), strict=True
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
