"""Configuration: TOML + flags -> Config; every `run` flag reaches its key; bad input names the key (exit 2)."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from neuromusic.daemon import cli
from neuromusic.daemon.cli.flags import Flag
from neuromusic.daemon.cli.run import add_arguments
from neuromusic.daemon.cli.run_options import RUN_TABLES, run_overrides
from neuromusic.daemon.config import Config, load_config
from neuromusic.models.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "deploy" / "neuromusic.example.toml"

# One sample per flag, chosen unlike the default so the test shows the flag changed something.
SAMPLES: dict[str, tuple[list[str], Any]] = {
    "--board": (["lsl"], "lsl"),
    "--serial-port": (["/dev/ttyUSB7"], "/dev/ttyUSB7"),
    "--mac-address": (["00:11:22:33:44:55"], "00:11:22:33:44:55"),
    "--ip-address": (["10.0.0.9"], "10.0.0.9"),
    "--ip-port": (["6677"], 6677),
    "--ip-protocol": (["2"], 2),
    "--serial-number": (["SN42"], "SN42"),
    "--other-info": (["extra"], "extra"),
    "--board-timeout": (["15"], 15),
    "--file": (["rec.csv"], Path("rec.csv")),
    "--master-board": (["cyton"], "cyton"),
    "--playback-loop": ([], True),
    "--lsl-name": (["OpenBCI"], "OpenBCI"),
    "--lsl-type": (["ExG"], "ExG"),
    "--lsl-source-id": (["cyton-1"], "cyton-1"),
    "--resolve-timeout": (["2.5"], 2.5),
    "--script": (["calm:10,stress:10"], "calm:10,stress:10"),
    "--listener": (["me.toml"], Path("me.toml")),
    "--seed": (["9"], 9),
    "--stale-after": (["1.5"], 1.5),
    "--window": (["4"], 4.0),
    "--hop": (["0.5"], 0.5),
    "--notch": (["50"], 50.0),
    "--baseline": (["12"], 12.0),
    "--duration": (["7.5"], 7.5),
    "--json": ([], "json"),
    "--quiet": ([], "quiet"),
    "--profile": (["alice.json"], Path("alice.json")),
    "--session-dir": (["out/s1"], Path("out/s1")),
    "--stop-timeout": (["3"], 3.0),
    "--without": (["player, recorder"], ("player", "recorder")),
    "--speed": (["4"], 4.0),
    "--stream": (["EEG-2"], "EEG-2"),
    "--policy": (["target"], "target"),
    "--synth": (["none"], "none"),
    "--audio-driver": (["alsa"], "alsa"),
    "--soundfont": (["gm.sf2"], Path("gm.sf2")),
    "--midi-out": (["virtual"], "virtual"),
    "--wav": (["out.wav"], Path("out.wav")),
    "--midi-file": (["out.mid"], Path("out.mid")),
    "--sessions-root": (["/srv/sessions"], Path("/srv/sessions")),
    "--no-record": ([], False),
    "--flush-interval": (["0.5"], 0.5),
    "--mqtt": (["broker.lab"], "broker.lab"),
    "--mqtt-user": (["lab"], "lab"),
    "--mqtt-password": (["secret", "--mqtt-user", "lab"], "secret"),
    "--mqtt-tls": ([], True),
    "--mqtt-password-file": (["/run/pw", "--mqtt-user", "lab"], Path("/run/pw")),
    "--mqtt-ca-file": (["/etc/ca.pem"], Path("/etc/ca.pem")),
    "--mqtt-cert-file": (["/etc/c.pem"], Path("/etc/c.pem")),
    "--mqtt-key-file": (["/etc/k.pem", "--mqtt-cert-file", "/etc/c.pem"], Path("/etc/k.pem")),
    "--device-id": (["eeg-2"], "eeg-2"),
    "--ha-discovery": ([], True),
    "--no-remote-control": ([], False),
    "--lsl-out": ([], True),
    "--lsl-out-bands": ([], True),
    "--lsl-markers": (["PsychoPy"], "PsychoPy"),
}
# What the TOML file says in the test that the flag wins over it, where a plain string would not load
TOML_VALUES = {
    "session.output": '"view"',
    "features.hop_s": "1.0",  # the window must be a whole number of hops
    "policy.name": '"bandit"',
    "sinks.synth": '"fluidsynth"',
    "recording.flush_interval_s": "0.75",
}
NEEDS_A_USER = {"mqtt.password", "mqtt.password_file"}  # a password alone is refused: no TOML-only check


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def lookup(config: Config, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def keyed_flags() -> dict[str, str]:
    """Every run flag -> its "section.key"."""
    return {flag.flag: f"{table.section}.{flag.key}" for table in RUN_TABLES for flag in table.flags}


def test_every_flag_has_a_sample() -> None:
    assert set(keyed_flags()) == set(SAMPLES), "add a sample (and so a test) for every new run flag"


def test_one_table_per_section_and_each_flag_in_its_own_sections_help() -> None:
    sections = [table.section for table in RUN_TABLES]
    assert len(sections) == len(set(sections)) and all(isinstance(f, Flag) for t in RUN_TABLES for f in t.flags)
    assert all(hasattr(Config(), section) for section in sections)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    groups = {group.title: [a.option_strings[0] for a in group._group_actions] for group in parser._action_groups}
    for table in RUN_TABLES:
        listed = next(flags for title, flags in groups.items() if title and title.endswith(f"[{table.section}]"))
        assert listed == [flag.flag for flag in table.flags]
    assert keyed_flags()["--policy"] == "policy.name" and keyed_flags()["--speed"] == "source.replay_speed"


@pytest.mark.parametrize("flag", sorted(SAMPLES))
def test_flag_sets_its_key_and_overrides_the_toml(flag: str, tmp_path: Path) -> None:
    dotted = keyed_flags()[flag]
    values, expected = SAMPLES[flag]
    default = lookup(Config(), dotted)
    assert default != expected
    assert lookup(load_config(None, run_overrides(parse([flag, *values]))), dotted) == expected
    # The flag wins over the TOML file, which wins over the default.
    section, key = dotted.split(".")
    toml_value = TOML_VALUES.get(dotted, {str: '"from-toml"', int: "3", float: "2.0"}.get(type(expected)))
    if toml_value is not None and dotted not in NEEDS_A_USER:
        path = tmp_path / "c.toml"
        path.write_text(f"[{section}]\n{key} = {toml_value}\n")
        assert lookup(load_config(path, {}), dotted) == tomllib.loads(path.read_text())[section][key]
        assert lookup(load_config(path, run_overrides(parse(["--config", str(path), flag, *values]))), dotted) == (
            expected
        )


def test_flags_not_given_leave_the_toml_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[source]\nboard = "simulated"\n[features]\nhop_s = 0.5\n[session]\nduration_s = 4.0\n')
    config = load_config(path, run_overrides(parse(["--config", str(path)])))
    assert (config.source.board, config.features.hop_s, config.session.duration_s) == ("simulated", 0.5, 4.0)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[source\nboard = 1", "not valid TOML"),
        ("[session]\nduraton_s = 3\n", "session.duraton_s"),
        ("[sesion]\nduration_s = 3\n", "sesion"),
        ('[session]\nduration_s = "soon"\n', "session.duration_s"),
        ('[session]\noutput = "xml"\n', "session.output"),
        ("[session]\nstop_timeout_s = -1\n", "stop_timeout_s"),
        ("[session]\nreconnect_base_s = 60\n", "reconnect_base_s"),
        ("[features]\nwindow_s = true\n", "features.window_s"),
        ("[source]\nip_port = 1.5\n", "source.ip_port"),
        ("session = 3\n", "session"),
    ],
)
def test_bad_toml_is_a_config_error_naming_the_key(text: str, names: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")) as caught:
        load_config(path)
    assert caught.value.exit_code == 2


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Path("/nonexistent/neuromusic.toml"))


def test_bad_config_on_the_command_line_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[session]\nduration_s = 'soon'\n")
    done = subprocess.run(  # once as a real process: the console script's exit code and stderr
        [sys.executable, "-m", "neuromusic.daemon.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "session.duration_s" in done.stderr and "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    ("argv", "names"),
    [(["--notch", "55"], "--notch"), (["--hop", "x"], "--hop"), (["--duration", "-1"], "duration_s")],
)
def test_bad_flags_exit_2_naming_the_flag(argv: list[str], names: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli.main(["run", *argv])
    except SystemExit as exit_:  # argparse rejects a malformed value itself, with its usage line
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert code == 2 and names in err and "Traceback" not in err and out == ""


def test_example_config_loads_and_documents_the_session_options() -> None:
    config = load_config(EXAMPLE)
    assert isinstance(config, Config)
    text = EXAMPLE.read_text()
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in text, section.name
    # Every [session] option appears, as a value or as a commented-out line with its explanation above it.
    for option in dataclasses.fields(config.session):
        assert f"\n{option.name} =" in text or f"\n# {option.name} =" in text, f"session.{option.name}"


COMPOSER_SAMPLES: dict[str, tuple[str, Any]] = {
    "--seed": ("5", 5),
    "--checkpoint": ("ckpt", Path("ckpt")),
    "--temperature": ("0.7", 0.7),
    "--top-k": ("8", 8),
    "--top-p": ("0.5", 0.5),
    "--candidates": ("3", 3),
    "--meter": ("3/4", "3/4"),
    "--tonic": ("F#", "F#"),
    "--threads": ("2", 2),
}


@pytest.mark.parametrize("flag", sorted(COMPOSER_SAMPLES))
def test_generate_takes_the_composer_table(flag: str) -> None:
    from neuromusic.daemon.cli import generate
    from neuromusic.daemon.cli.composer_options import COMPOSER

    assert {f.flag for f in COMPOSER.flags} | {"--seed"} == set(COMPOSER_SAMPLES)
    spec = COMPOSER.find(flag) if flag != "--seed" else Flag("--seed", "seed", "")
    assert spec is not None
    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    value, expected = COMPOSER_SAMPLES[flag]
    config = generate.load(parser.parse_args([flag, value]))
    assert getattr(config.composer, spec.key) == expected
    assert generate.load(parser.parse_args([])).composer.seed == 0  # reproducible without a flag
