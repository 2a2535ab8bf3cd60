"""[lsl_out] and [lsl_markers] configuration and the `run` flags that set them (plus --stream for XDF replay).

Kept free of heavy imports: `neuromusic run --help` and the configuration loader read this module; pylsl is imported
only by the services that open outlets or inlets (daemon/services/lsl_out.py, daemon/services/lsl_markers.py).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LslOutConfig:
    enabled: bool = False  # publish score, controls and markers as LSL streams (LabRecorder records them)
    bands: bool = False  # also publish the band differential entropy, one sample per hop
    name_prefix: str = "neuromusic"  # streams are named <prefix>-<device>-score / -controls / -markers / -bands

    def validate(self) -> None:
        if not self.name_prefix or "'" in self.name_prefix:
            raise ValueError(f"lsl_out.name_prefix must be non-empty and hold no quote, got {self.name_prefix!r}")


@dataclass(frozen=True)
class LslMarkersConfig:
    name: str = ""  # an LSL marker stream (PsychoPy, OpenSesame) to record into the session; "" = none
    resolve_timeout_s: float = 5.0  # how long each look for the stream lasts before the session says it is missing

    def validate(self) -> None:
        if "'" in self.name:
            raise ValueError(f"lsl_markers.name cannot contain a quote, got {self.name!r}")
        if self.resolve_timeout_s < 1.0:
            raise ValueError(f"lsl_markers.resolve_timeout_s must be >= 1 second, got {self.resolve_timeout_s}")


def add_lab_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("lab (Lab Streaming Layer, XDF)")
    group.add_argument(
        "--lsl-out",
        action="store_true",
        help="publish the score, controls and markers as LSL streams for LabRecorder (TOML lsl_out.enabled)",
    )
    group.add_argument(
        "--lsl-out-bands",
        action="store_true",
        help="with --lsl-out: also publish the band differential entropy per hop (TOML lsl_out.bands)",
    )
    group.add_argument(
        "--lsl-markers",
        metavar="NAME",
        help="record the markers of this LSL stream (e.g. from PsychoPy) into the session (TOML lsl_markers.name)",
    )
    group.add_argument(
        "--stream",
        metavar="NAME",
        help="--board replay of an XDF file: the EEG stream's name (default: the only stream of type EEG) "
        "(TOML source.stream)",
    )


def lab_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """{"section.key": value} for the flags given; flags left out are None and do not override the TOML."""
    return {
        "lsl_out.enabled": True if getattr(args, "lsl_out", False) else None,
        "lsl_out.bands": True if getattr(args, "lsl_out_bands", False) else None,
        "lsl_markers.name": getattr(args, "lsl_markers", None),
        "source.stream": getattr(args, "stream", None),
    }
