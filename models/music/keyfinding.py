"""Key finding by profile correlation (the Krumhansl-Schmuckler algorithm).

Used twice, for the same reason: to decide the mode the data is labelled with (corpus, Krumhansl-Kessler profiles)
and to steer generation so that the music a listener hears is in the mode the policy asked for (composer). A
natural-minor melody uses the same notes as its relative major; what tells them apart is which tonic the notes lean
on, which is exactly what the correlation with a key profile measures. Profiles disagree on melodies that dwell on
the tonic and the third but seldom touch the fifth (C and Eb are also the third and fifth of Ab major), so the
composer asks two of them, derived from different evidence (listeners' probe-tone ratings; a harmony textbook's
excerpts), to agree. The evaluation judges with neither: music21's Aarden-Essen (folk-song statistics) and
Bellman-Budge profiles.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from neuromusic.models.music.abc import AbcNote

# (major, minor) profiles, tonic first: probe-tone ratings (Krumhansl & Kessler 1982) and the share of segments
# containing each degree in the Kostka-Payne textbook excerpts (Temperley 2007, "Music and Probability").
PROFILES = {
    "krumhansl-kessler": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    ),
    "temperley": (
        (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
        (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
    ),
}
LABEL_PROFILE = "krumhansl-kessler"  # what the corpus's mode labels come from
GUIDE_PROFILES = ("krumhansl-kessler", "temperley")  # what the composer's key must win under, each of them


def _keys(profile: tuple[float, ...]) -> np.ndarray:
    """(12, 12): [tonic, pitch class], the profile rotated to each tonic and standardised, so that a correlation
    is one dot product with the standardised histogram."""
    values = np.array(profile)
    values = (values - values.mean()) / values.std()
    return np.stack([np.roll(values, tonic) for tonic in range(12)])


_KEYS = {name: np.stack([_keys(major), _keys(minor)]) for name, (major, minor) in PROFILES.items()}  # (2, 12, 12)


def histogram(notes: Iterable[AbcNote]) -> np.ndarray:
    """Duration-weighted pitch-class histogram (12,) of the sounding notes."""
    hist = np.zeros(12)
    for note in notes:
        if note.pitch is not None:
            hist[note.pitch % 12] += float(note.duration)
    return hist


def correlations(hist: np.ndarray, profile: str = LABEL_PROFILE) -> np.ndarray:
    """Pearson correlation (2, 12) of the histogram with every key's profile: [minor, tonic]; zeros when the
    histogram is flat (no notes, or every pitch class equally long)."""
    spread = hist.std()
    if spread == 0:
        return np.zeros((2, 12))
    return np.asarray(_KEYS[profile] @ ((hist - hist.mean()) / spread) / 12.0)


def find_key(hist: np.ndarray, profile: str = LABEL_PROFILE) -> tuple[int, bool]:
    """(tonic pitch class, minor) of the best-correlated key; ties go to major and the lower tonic."""
    r = correlations(hist, profile)
    minor, tonic = np.unravel_index(int(np.argmax(r)), r.shape)
    return int(tonic), bool(minor)


def key_margin(hist: np.ndarray, tonic: int, minor: bool, profiles: tuple[str, ...] = GUIDE_PROFILES) -> float:
    """How clearly the histogram is in the given key: its correlation minus the best other key's, in [-2, 2], under
    the least convinced of `profiles`. Positive means the key would be heard; the relative major or minor (or, for
    a minor melody without its fifth, the major key a third below) is usually the closest rival."""
    margins = []
    for profile in profiles:
        r = correlations(hist, profile)
        own = float(r[int(minor), tonic])
        r[int(minor), tonic] = -np.inf
        margins.append(own - float(r.max()))
    return min(margins)
