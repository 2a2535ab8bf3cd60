"""Small helpers of the bandit: the opening tour of the bounds box, and the bookkeeping of which session each
carried observation came from."""

from __future__ import annotations

from typing import Any

import numpy as np
from neuromusic.policies.response_model import FloatArray


def opening_tour(anchor: FloatArray, count: int, steps: FloatArray) -> list[FloatArray]:
    """`anchor` (unit coordinates), then the farthest-apart points of a 3 x 3 x 3 lattice inside the unit box (at 12,
    50 and 88 %), `count` in all, ordered as a short tour: the next point is the one the fewest ramp bars away
    (`steps`: each axis's largest change per bar, in units of its range)."""
    levels = np.array([0.12, 0.5, 0.88])
    lattice = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    chosen = [anchor]
    while len(chosen) < count:
        gaps = np.min([np.linalg.norm(lattice - c, axis=1) for c in chosen], axis=0)
        chosen.append(lattice[int(np.argmax(gaps))])
    tour, rest = [chosen[0]], chosen[1:]
    while rest:
        bars = [float(np.max(np.abs(p - tour[-1]) / steps)) for p in rest]
        tour.append(rest.pop(int(np.argmin(bars))))
    return tour


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
