"""Where each channel sits on the head, from its 10-20 / 10-10 name, and how much it says about relaxation.

Names are matched loosely: case, an "EEG " prefix, a reference suffix ("-REF", "-LE", "-A1", "-M2"), trailing dots
(EDF padding) and the old names T3/T4/T5/T6 (= T7/T8/P7/P8) are all understood. A region is the name's letter
prefix: Fp, AF, F, FT, FC, C, T, TP, CP, P, PO, O, I. Channels with names outside the system (ECG, AUX, A2-A1) are
"unknown".

Relaxation shows most as posterior alpha (eyes closed, calm); frontal and temporal sites carry more eye and muscle
activity, so the score leans on posterior channels. When no name of a montage is known, every channel counts the
same.
"""

from __future__ import annotations

import re

import numpy as np
from neuromusic.models.core.messages import FloatArray

_OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
_PREFIXES = ("FP", "AF", "FT", "FC", "TP", "CP", "PO", "F", "C", "T", "P", "O", "I")
_REGION_OF = {
    "FP": "frontopolar",
    "AF": "frontal",
    "F": "frontal",
    "FT": "temporal",
    "FC": "fronto-central",
    "C": "central",
    "T": "temporal",
    "TP": "temporo-parietal",
    "CP": "centro-parietal",
    "P": "parietal",
    "PO": "occipital",
    "O": "occipital",
    "I": "occipital",
}
_NAME = re.compile(r"^(FP|AF|FT|FC|TP|CP|PO|F|C|T|P|O|I)(Z|\d{1,2})$")
# Regions where blinks and eye movements show (large, slow deflections).
EYE_REGIONS = frozenset({"frontopolar", "frontal"})


def default_region_weights() -> dict[str, float]:
    return {
        "occipital": 1.0,
        "parietal": 0.9,
        "temporo-parietal": 0.7,
        "centro-parietal": 0.7,
        "central": 0.6,
        "temporal": 0.5,
        "fronto-central": 0.5,
        "frontal": 0.4,
        "frontopolar": 0.3,
    }


REGIONS = tuple(default_region_weights())


def canonical_name(name: str) -> str | None:
    """The 10-20 / 10-10 name of a channel label ("EEG Fp1-REF" -> "FP1", "T5" -> "P7"), None if it is none."""
    text = name.strip().upper().rstrip(".")
    if text.startswith("EEG"):
        text = text[3:].strip(" :_-")
    text = re.split(r"[-/ ]", text, maxsplit=1)[0] if text else text
    text = _OLD_NAMES.get(text, text)
    return text if _NAME.match(text) else None


def region(name: str) -> str | None:
    """The head region of a channel label, None for a name outside the 10-20 system."""
    canonical = canonical_name(name)
    if canonical is None:
        return None
    prefix = next(p for p in _PREFIXES if canonical.startswith(p))
    return _REGION_OF[prefix]


def channel_weights(names: tuple[str, ...], weights: dict[str, float], unknown: float = 0.0) -> FloatArray:
    """Weight per channel from its region. A name outside the system gets `unknown`; if no name is known at all
    (an unfamiliar montage), every channel gets 1."""
    regions = [region(n) for n in names]
    if all(r is None for r in regions):
        return np.ones(len(names))
    return np.array([unknown if r is None else weights.get(r, unknown) for r in regions], dtype=np.float64)


def eye_channels(names: tuple[str, ...]) -> np.ndarray:
    """Mask of the channels where blinks and eye movements are judged (frontopolar and frontal sites)."""
    return np.array([region(n) in EYE_REGIONS for n in names], dtype=bool)
