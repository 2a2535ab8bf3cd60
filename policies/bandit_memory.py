"""What the bandit keeps per listener between sessions (the "policy" section of the listener profile).

A state holds, per session, f at the settings chosen in it (from that session's scores alone, each with the variance
of its value relative to the session's others), the run lengths of the sessions, and the fitted time constant and
delay. Version 1 (no sessions, no dynamics) is read as one session.
"""

from __future__ import annotations

import math
from typing import Any

from neuromusic.models.core.controls import CONTROL_NAMES

STATE_VERSION = 2
READABLE_VERSIONS = (1, STATE_VERSION)
Observation = tuple[float, ...]  # one value per control in the table's order, then f and its variance


def run_lengths(sessions: list[int]) -> list[int]:
    """[2, 2, 5] -> [2, 1]: how many observations each session (in order) contributed."""
    out: list[int] = []
    for k, session in enumerate(sessions):
        if k and session == sessions[k - 1]:
            out[-1] += 1
        else:
            out.append(1)
    return out


def sessions_of(lengths: Any, n: int) -> list[int]:
    """Session index per observation from the saved run lengths; missing or inconsistent: all from one session."""
    if not isinstance(lengths, list) or not all(isinstance(v, int) and v > 0 for v in lengths) or sum(lengths) != n:
        return [0] * n
    return [k for k, length in enumerate(lengths) for _ in range(length)]


def make_state(
    carried: list[Observation],
    sessions: list[int],
    fresh: list[Observation],
    dynamics: tuple[float, float] | None,
    keep: int,
) -> dict[str, Any]:
    """The state to save: what was carried plus this session's `fresh` observations, newest `keep`."""
    session = max(sessions, default=-1) + 1
    rows = (carried + fresh)[-keep:]
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "observations": [list(o) for o in rows],
        "sessions": run_lengths((sessions + [session] * len(fresh))[-keep:]),
    }
    if dynamics is not None:
        state["tau_s"], state["delay_s"] = dynamics
    return state


def read_state(
    state: Any, carry_noise_factor: float, keep: int
) -> tuple[list[Observation], list[int], tuple[float, float] | None]:
    """(observations with their variance times `carry_noise_factor`, session of each, (tau, delay) or None), the
    newest `keep`. ValueError, naming what is wrong, for a state this release cannot read."""
    if not isinstance(state, dict) or state.get("version") not in READABLE_VERSIONS:
        versions = " or ".join(str(v) for v in READABLE_VERSIONS)
        raise ValueError(f"bandit state must be a dict with version {versions}")
    loaded: list[Observation] = []
    for row in state.get("observations", []):
        if not isinstance(row, list | tuple) or len(row) != len(CONTROL_NAMES) + 2:
            raise ValueError(f"each bandit observation must be [{', '.join(CONTROL_NAMES)}, value, variance]")
        values = [float(v) for v in row]
        if not all(math.isfinite(v) for v in values) or values[-1] <= 0:
            raise ValueError("bandit observations must be finite with a positive variance")
        *setting, value, var = values
        loaded.append((*setting, value, var * carry_noise_factor))
    dynamics = None
    tau, delay = state.get("tau_s"), state.get("delay_s")
    if isinstance(tau, int | float) and isinstance(delay, int | float) and tau > 0 and delay >= 0:
        dynamics = (float(tau), float(delay))
    sessions = sessions_of(state.get("sessions"), len(loaded))[-keep:]
    return loaded[-keep:], sessions, dynamics
