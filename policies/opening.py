"""The bandit's opening: a tour of the whole bounds box."""

from __future__ import annotations

import numpy as np
from neuromusic.policies.response_model import FloatArray

# Where the lattice sits in each range. A quarter in from the edges: far enough apart that the fall-off around each
# point tells the corners apart (a preference's width is a fifth to a half of a range), near enough to the middle that
# a listener who likes the music the tour starts from is not taken to the extremes of every axis.
LATTICE_LEVELS = (0.25, 0.5, 0.75)


def opening_tour(anchor: FloatArray, count: int, steps: FloatArray) -> list[FloatArray]:
    """`anchor` (unit coordinates), then the farthest-apart points of a 3 x 3 x 3 lattice inside the unit box (at 25,
    50 and 75 %), `count` in all, ordered as a short tour: the next point is the one the fewest ramp bars away
    (`steps`: each axis's largest change per bar, in units of its range)."""
    levels = np.array(LATTICE_LEVELS)
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
