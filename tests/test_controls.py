"""The control table: the typed classes carry exactly its rows, and what loops over it behaves as each row says."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from neuromusic.daemon.dashboard import payloads
from neuromusic.daemon.mqtt import ha_discovery
from neuromusic.daemon.session.control import SessionControl
from neuromusic.drivers.listener_response import ResponseConfig, appeal, distance, response_fields
from neuromusic.models.core.clock import VirtualClock
from neuromusic.models.core.controls import CONTROL_NAMES, CONTROLS, ControlSpec, control_spec
from neuromusic.models.core.messages import Controls
from neuromusic.models.music.checkpoint import SHIPPED
from neuromusic.models.music.controls import special_tokens, tokens_for
from neuromusic.policies.base import ControlBounds, bound_fields
from neuromusic.policies.bounds import ControlGuard, check_within, clamp_controls, step_toward, validate_bounds
from neuromusic.policies.config import GuardConfig, MappingConfig
from neuromusic.policies.mapping import anchor_controls


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


# every typed class with fields per control, and the fields one control needs in it
PER_CONTROL: dict[type, Callable[[str], tuple[str, ...]]] = {
    Controls: lambda n: (n,),
    ControlBounds: bound_fields,
    GuardConfig: lambda n: (f"{n}_deadband", f"start_{n}"),
    MappingConfig: lambda n: (f"calm_{n}", f"tense_{n}"),
    ResponseConfig: response_fields,  # the simulated listener's preference: a meaning no loop can invent
}


def missing_fields(names: tuple[str, ...]) -> list[str]:
    """`Class.field` for every field a table with these rows needs and a typed class lacks."""
    return [
        f"{cls.__name__}.{name}"
        for cls, needs in PER_CONTROL.items()
        for n in names
        for name in needs(n)
        if name not in field_names(cls)
    ]


def test_the_typed_classes_have_exactly_the_tables_fields() -> None:
    assert missing_fields(CONTROL_NAMES) == []
    assert field_names(Controls) == list(CONTROL_NAMES)
    expected = [f"{n}_{end}" for n in CONTROL_NAMES for end in ("min", "max")]
    assert field_names(ControlBounds) == expected + [f"max_{n}_step" for n in CONTROL_NAMES]
    assert {name for n in CONTROL_NAMES for name in bound_fields(n)} == set(field_names(ControlBounds))
    response = [name for name in field_names(ResponseConfig) if name.startswith("preferred_") or "_width" in name]
    assert sorted(response) == sorted(name for n in CONTROL_NAMES for name in response_fields(n))


def test_a_fourth_row_without_its_fields_is_caught_in_every_class() -> None:
    brightness = ControlSpec(
        name="brightness",
        label="brightness",
        low=0.0,
        high=1.0,
        bounds=(0.0, 1.0),
        step=0.2,
        deadband=0.04,
        start=0.5,
        grid_step=0.1,
        token="B",
        token_edges=(0.5,),
    )
    missing = missing_fields((*CONTROL_NAMES, brightness.name))
    assert missing == [
        "Controls.brightness",
        "ControlBounds.brightness_min",
        "ControlBounds.brightness_max",
        "ControlBounds.max_brightness_step",
        "GuardConfig.brightness_deadband",
        "GuardConfig.start_brightness",
        "MappingConfig.calm_brightness",
        "MappingConfig.tense_brightness",
        "ResponseConfig.preferred_brightness",
        "ResponseConfig.brightness_width",
    ]
    # the listener's response reads one preference and one width per row: a row without them cannot be heard
    with pytest.raises(AttributeError, match="preferred_brightness"):
        getattr(ResponseConfig(), response_fields(brightness.name)[0])


def test_the_listeners_response_loops_over_the_rows() -> None:
    config = ResponseConfig()
    liked = Controls.from_values(config.preferred())
    assert appeal(config, liked) == 1.0
    for i, spec in enumerate(CONTROLS):
        one_width = list(config.preferred())
        one_width[i] += config.widths()[i] if one_width[i] + config.widths()[i] <= spec.high else -config.widths()[i]
        assert appeal(config, Controls.from_values(one_width)) == pytest.approx(math.exp(-0.5))
        span = spec.bounds[1] - spec.bounds[0]
        moved = list(liked.values())
        moved[i] = spec.bounds[0] if moved[i] - spec.bounds[0] >= span / 2 else spec.bounds[1]
        assert distance(liked, Controls.from_values(moved)) == pytest.approx(abs(moved[i] - liked.values()[i]) / span)
        preferred, width = response_fields(spec.name)
        with pytest.raises(ValueError, match=rf"response\.{width} must be positive"):
            dataclasses.replace(config, **{width: 0.0}).validate()
        with pytest.raises(ValueError, match=rf"response\.{preferred} must be within {spec.low:g}\.\.{spec.high:g}"):
            dataclasses.replace(config, **{preferred: spec.high + 1.0}).validate()


def test_defaults_come_from_the_table() -> None:
    bounds, guard = ControlBounds(), GuardConfig()
    for spec in CONTROLS:
        assert bounds.range(spec.name) == spec.bounds and bounds.step(spec.name) == spec.step
        assert guard.deadband(spec.name) == spec.deadband
    assert guard.start() == tuple(spec.start for spec in CONTROLS)
    assert ControlGuard(bounds, guard).hold().values() == tuple(
        min(max(spec.start, spec.bounds[0]), spec.bounds[1]) for spec in CONTROLS
    )


@pytest.mark.parametrize("spec", CONTROLS, ids=CONTROL_NAMES)
def test_controls_refuse_values_outside_each_rows_range(spec: object) -> None:
    assert isinstance(spec, type(CONTROLS[0]))
    good = {s.name: s.start for s in CONTROLS}
    for bad in (spec.low - 1e-6, spec.high + 1e-6, math.nan, math.inf):
        with pytest.raises(ValueError, match=spec.name):
            Controls(**(good | {spec.name: bad}))
    edge = Controls(**(good | {spec.name: spec.high}))
    assert edge.as_dict()[spec.name] == spec.high
    assert Controls.from_values(edge.values()) == edge == Controls.from_mapping(edge.as_dict())


def test_bounds_validation_names_the_row_and_its_limits() -> None:
    for spec in CONTROLS:
        low_field, high_field, step_field = bound_fields(spec.name)
        with pytest.raises(ValueError, match=f"{spec.name} bounds must satisfy {spec.low:g} <= "):
            validate_bounds(dataclasses.replace(ControlBounds(), **{low_field: spec.low - 1}))
        with pytest.raises(ValueError, match=f"{spec.name} bounds"):
            validate_bounds(dataclasses.replace(ControlBounds(), **{low_field: spec.bounds[1], high_field: spec.low}))
        with pytest.raises(ValueError, match=f"{step_field} must be positive and at most {spec.step_limit:g}"):
            validate_bounds(dataclasses.replace(ControlBounds(), **{step_field: spec.step_limit * 1.5}))
        middle = (spec.bounds[0] + spec.bounds[1]) / 2
        narrow = dataclasses.replace(ControlBounds(), **{low_field: middle, high_field: middle})
        with pytest.raises(ValueError, match=f"{spec.name} bounds may only narrow the configured range"):
            check_within(ControlBounds(), narrow)


def test_the_guard_clamps_and_steps_each_control_by_its_own_row() -> None:
    bounds = ControlBounds()
    config = dataclasses.replace(GuardConfig(), **{f"{n}_deadband": 0.0 for n in CONTROL_NAMES})
    guard = ControlGuard(bounds, config)
    start = guard.hold().values()
    far = [spec.high for spec in CONTROLS]  # every wish beyond the bounds' top
    moved = guard.apply(*far).values()
    for spec, before, after in zip(CONTROLS, start, moved, strict=True):
        assert after == pytest.approx(min(before + spec.step, spec.bounds[1]))
    assert clamp_controls(bounds, *far).values() == tuple(spec.bounds[1] for spec in CONTROLS)
    stepped = step_toward(bounds, Controls.from_values(start), Controls.from_values(far)).values()
    assert stepped == moved
    with pytest.raises(TypeError, match="one wanted value per control"):
        guard.apply(*far[:-1])


def test_mapping_anchors_are_one_value_per_row() -> None:
    mapping = MappingConfig()
    assert anchor_controls(mapping, 0.0) == mapping.anchor("tense")
    assert anchor_controls(mapping, 1.0) == mapping.anchor("calm")
    assert len(mapping.anchor("calm")) == len(CONTROLS)
    with pytest.raises(ValueError, match=r"mapping\.calm_valence must be within 0\.\.1"):
        dataclasses.replace(mapping, calm_valence=1.5).validate()


def test_token_edges_come_from_the_table_and_the_vocabulary_is_unchanged() -> None:
    # The shipped checkpoint's special tokens, ids included: the table must reproduce its vocabulary exactly.
    shipped = json.loads((SHIPPED / "tokenizer.json").read_text())["added_tokens"]
    assert special_tokens() == [token["content"] for token in sorted(shipped, key=lambda t: t["id"])]
    assert (
        special_tokens()[-8:]
        == [s for c in CONTROLS for s in c.tokens()]
        == ["<T0>", "<T1>", "<T2>", "<V0>", "<V1>", "<E0>", "<E1>", "<E2>"]
    )
    tempo, valence, energy = (control_spec(n) for n in ("tempo", "valence", "energy"))
    assert (tempo.token_edges, valence.token_edges) == ((80.0, 120.0), (0.5,))
    for t, level in ((79.9, 0), (80.0, 1), (119.9, 1), (120.0, 2)):
        assert tokens_for(Controls(t, 0.5, 0.4), "4/4")[1] == f"<T{level}>"
    assert tokens_for(Controls(70, 0.49, energy.token_edges[1]), "3/4") == ["<M:3/4>", "<T0>", "<V0>", "<E2>"]


def test_payloads_views_and_sensors_follow_the_table() -> None:
    clean = payloads.controls({"tempo": 72.5, "valence": 1.5, "energy": "loud", "unix": 1.7e9})
    assert clean == {"tempo": 72.5, "valence": None, "energy": None, "unix": 1.7e9}
    assert [row["name"] for row in payloads.CONTROL_TABLE] == list(CONTROL_NAMES)
    json.dumps(payloads.CONTROL_TABLE)  # served to the page as JSON
    for spec in CONTROLS:
        _, topic, template, unit, _ = ha_discovery.SENSORS[spec.name]
        assert topic == "controls" and f"value_json.{spec.name} | round({spec.decimals})" in template
        assert unit == (spec.unit or None)
    assert control_spec("tempo").show(72.4) == "72 BPM" and control_spec("energy").show(0.4) == "0.40"
    with pytest.raises(KeyError, match="known: tempo, valence, energy"):
        control_spec("brightness")


def test_operator_controls_are_refused_per_control_outside_the_bounds() -> None:
    control = SessionControl(VirtualClock(), lambda _: None, "mapping", ControlBounds())
    inside = {spec.name: spec.bounds[0] for spec in CONTROLS}
    assert control.check_controls(inside).as_dict() == inside
    for spec in CONTROLS:
        low, high = spec.bounds
        with pytest.raises(ValueError, match=f"{spec.name} is outside the control bounds {low:g}..{high:g}"):
            control.check_controls(inside | {spec.name: spec.high + 1})
        with pytest.raises(ValueError, match=f"missing control '{spec.name}'"):
            control.check_controls({k: v for k, v in inside.items() if k != spec.name})
    with pytest.raises(ValueError, match="unknown control 'mood'"):
        control.check_controls(inside | {"mood": 0.5})


def test_the_fixed_settings_grid_has_one_axis_per_row_at_its_grid_step() -> None:
    from neuromusic.daemon.session.simulation import fixed_grid

    bounds = ControlBounds()
    grid = fixed_grid(bounds)
    assert grid.shape[1] == len(CONTROLS)
    for i, spec in enumerate(CONTROLS):
        axis = np.unique(grid[:, i])
        assert (axis[0], axis[-1]) == bounds.range(spec.name)
        assert np.diff(axis) == pytest.approx(spec.grid_step)
    assert len(grid) == math.prod(len(np.unique(grid[:, i])) for i in range(len(CONTROLS)))


def test_the_population_draws_a_preference_and_a_width_per_row_inside_the_box() -> None:
    from neuromusic.drivers.listener_population import WIDTH, draw_population
    from neuromusic.drivers.listener_response import NATURAL_RANGE

    box = tuple((spec.bounds[0], (spec.bounds[0] + spec.bounds[1]) / 2) for spec in CONTROLS)  # lower halves
    for config in draw_population(20, seed=2, box=box):
        for spec, (low, high), span, preferred, width in zip(
            CONTROLS, box, NATURAL_RANGE, config.preferred(), config.widths(), strict=True
        ):
            assert low <= preferred <= high, spec.name
            assert WIDTH[0] * span <= width <= WIDTH[1] * span, spec.name
    with pytest.raises(ValueError, match="one \\(low, high\\) per control"):
        draw_population(1, box=box[:-1])


def test_a_bandit_observation_is_one_value_per_row_then_f_and_its_variance() -> None:
    from neuromusic.policies.bandit_memory import STATE_VERSION, read_state

    setting = [spec.bounds[0] for spec in CONTROLS]
    (row,), _, _ = read_state({"version": STATE_VERSION, "observations": [[*setting, 0.1, 0.5]]}, 2.0, 10)
    assert row == (*setting, 0.1, 1.0)
    with pytest.raises(ValueError, match=", ".join(CONTROL_NAMES) + ", value, variance"):
        read_state({"version": STATE_VERSION, "observations": [[*setting, 0.1]]}, 2.0, 10)


def test_the_bandits_listener_model_spans_one_axis_per_row() -> None:
    """The bandit's models of a listener live in the unit box of the bounds, one axis per control: a row added
    without teaching them its axis fails here."""
    from neuromusic.policies.opening import opening_tour
    from neuromusic.policies.peak_model import PeakModel, PeakPrior
    from neuromusic.policies.response_model import Features

    n = len(CONTROLS)
    assert Features().centres()[0].shape[1] == n
    assert PeakModel(PeakPrior(), 0.01, 3.0).centres.shape[1] == n
    tour = opening_tour(np.full(n, 0.5), 4, np.full(n, 0.1))
    assert all(point.shape == (n,) for point in tour)
