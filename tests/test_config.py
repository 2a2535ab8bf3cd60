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
from neuromusic.daemon.cli.run import add_arguments
from neuromusic.daemon.cli.run_options import GROUPS, run_overrides
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
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def lookup(config: Config, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def test_every_flag_has_a_sample() -> None:
    flags = {flag.flag for flags in GROUPS.values() for flag in flags}
    assert flags == set(SAMPLES), "add a sample (and so a test) for every new run flag"


@pytest.mark.parametrize("flag", sorted(SAMPLES))
def test_flag_sets_its_key_and_overrides_the_toml(flag: str, tmp_path: Path) -> None:
    spec = next(f for flags in GROUPS.values() for f in flags if f.flag == flag)
    values, expected = SAMPLES[flag]
    default = lookup(Config(), spec.key)
    assert default != expected
    assert lookup(load_config(None, run_overrides(parse([flag, *values]))), spec.key) == expected
    # The flag wins over the TOML file, which wins over the default.
    section, key = spec.key.split(".")
    toml_value = {str: '"from-toml"', int: "3", float: "2.0"}.get(type(expected))
    if spec.key == "session.output":
        toml_value = '"view"'
    if spec.key == "features.hop_s":
        toml_value = "1.0"  # the window must be a whole number of hops
    if toml_value is not None:
        path = tmp_path / "c.toml"
        path.write_text(f"[{section}]\n{key} = {toml_value}\n")
        assert lookup(load_config(path, {}), spec.key) == tomllib.loads(path.read_text())[section][key]
        assert lookup(load_config(path, run_overrides(parse(["--config", str(path), flag, *values]))), spec.key) == (
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
