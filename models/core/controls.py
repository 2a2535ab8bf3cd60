"""The control table: every musical control the policies steer and the composer hears, one row each.

A row says everything the generic parts of the daemon need to know about a control: its legal range, the default
safe bounds and per-bar step, the hysteresis deadband, where the guard starts, the edges that turn a value into the
composer's control token, and how telemetry, views and plots show it. `Controls` (models/core/messages.py), the
bounds and the guard, the policies' anchors, the tokenizer, MQTT, the terminal, the dashboard and the report all
loop over `CONTROLS`; the order of the rows is the order of the values everywhere (tuples, arrays, plots).

Adding a control is a row here, a field of the same name on `Controls`, `ControlBounds` (`<name>_min`, `<name>_max`,
`max_<name>_step`), `GuardConfig` (`<name>_deadband`, `start_<name>`), `MappingConfig` (`calm_<name>`,
`tense_<name>`) and the simulated listener's `ResponseConfig` (`preferred_<name>`, `<name>_width`), plus the places
that give the control its meaning in the music (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ControlSpec:
    """One musical control. Values are floats; `low`..`high` is what any Controls may hold."""

    name: str  # the field name on Controls and the key in every payload
    label: str  # what views call it
    low: float  # the legal range of the control
    high: float
    bounds: tuple[float, float]  # the default safe range every policy stays in (ControlBounds)
    step: float  # the default largest change from one bar to the next
    deadband: float  # the default hysteresis: a wanted change smaller than this is ignored
    start: float  # the default value before the first usable score
    grid_step: float  # the spacing of the fixed settings a simulation compares the policies with
    token: str  # the letter of the composer's control token: <T0>, <T1>, ...
    token_edges: tuple[float, ...]  # value >= edges[i] reaches token level i + 1
    unit: str = ""  # telemetry unit ("" for a unitless 0..1 control)
    lsl_unit: str = "normalized"  # the unit an LSL stream declares (XDF channel metadata)
    decimals: int = 2  # how views and telemetry sensors round it
    colour: str = "#444444"  # its colour in plots
    icon: str = "mdi:tune"  # its icon as a Home Assistant sensor
    help: str = ""  # what its values mean, for command-line help

    @property
    def step_limit(self) -> float:
        """The largest per-bar step any configuration may allow: more is a jump across the whole range."""
        return self.high - self.low

    @property
    def levels(self) -> int:
        """How many control tokens the composer knows for this control."""
        return len(self.token_edges) + 1

    def level(self, value: float) -> int:
        """The token level of a value: how many edges it has reached."""
        return sum(value >= edge for edge in self.token_edges)

    def tokens(self) -> list[str]:
        return [f"<{self.token}{i}>" for i in range(self.levels)]

    def within(self, low: float, high: float) -> bool:
        """True when low..high is a non-empty range inside the legal one."""
        return self.low <= low <= high <= self.high

    def range_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.low:g}..{self.high:g}{unit}"

    def show(self, value: float) -> str:
        """The value as views print it, unit included."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{value:.{self.decimals}f}{unit}"

    def lsl_channel(self) -> tuple[str, str, str]:
        """(label, unit, type) of its channel in an LSL stream or an XDF file."""
        return self.name, self.lsl_unit, self.name

    def describe(self) -> dict[str, object]:
        """The row as JSON, for the dashboard and anything else that draws controls without knowing them."""
        return {
            "name": self.name,
            "label": self.label,
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "decimals": self.decimals,
            "colour": self.colour,
        }


CONTROLS: tuple[ControlSpec, ...] = (
    ControlSpec(
        name="tempo",
        label="tempo",
        low=20.0,
        high=300.0,
        bounds=(50.0, 90.0),
        step=4.0,
        deadband=1.5,
        start=72.0,
        grid_step=5.0,
        token="T",
        token_edges=(80.0, 120.0),
        unit="BPM",
        lsl_unit="bpm",
        decimals=0,
        colour="#ef6c00",
        icon="mdi:metronome",
        help="BPM, 20..300",
    ),
    ControlSpec(
        name="valence",
        label="valence",
        low=0.0,
        high=1.0,
        bounds=(0.0, 1.0),
        step=0.25,
        deadband=0.04,
        start=0.5,
        grid_step=0.1,
        token="V",
        token_edges=(0.5,),
        colour="#00838f",
        icon="mdi:emoticon-happy-outline",
        help="0 (minor, sad) .. 1 (major, happy)",
    ),
    ControlSpec(
        name="energy",
        label="energy",
        low=0.0,
        high=1.0,
        bounds=(0.0, 1.0),
        step=0.2,
        deadband=0.04,
        start=0.4,
        grid_step=0.1,
        token="E",
        token_edges=(1 / 3, 2 / 3),
        colour="#6d4c41",
        icon="mdi:lightning-bolt-outline",
        help="0 (few long notes) .. 1 (many short notes)",
    ),
)

CONTROL_NAMES: tuple[str, ...] = tuple(spec.name for spec in CONTROLS)
BY_NAME: dict[str, ControlSpec] = {spec.name: spec for spec in CONTROLS}


def control_spec(name: str) -> ControlSpec:
    """The row of a control by name; KeyError names the known controls."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown control {name!r}; known: {', '.join(CONTROL_NAMES)}") from None


def describe_all() -> list[dict[str, object]]:
    return [spec.describe() for spec in CONTROLS]
