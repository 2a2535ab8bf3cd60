"""[lsl_out] and [lsl_markers] configuration (their flags are tables in daemon/cli/run_options.py).

Kept free of heavy imports: `neuromusic run --help` and the configuration loader read this module; pylsl is imported
only by the services that open outlets or inlets (daemon/services/lsl_out.py, daemon/services/lsl_markers.py).
"""

from __future__ import annotations

from dataclasses import dataclass


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
