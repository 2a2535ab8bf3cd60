"""The command line as a lab user meets it: a mistyped board answered at once with a suggestion, --version, where a
run recorded, sessions recorded with --session-dir found by `sessions`, `report` and `export`, output paths relative
to the working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from neuromusic.daemon.cli.run import resolve_output_paths
from neuromusic.models.sessions.index import INDEX_FILE, all_sessions, locate, register


def neuromusic(tmp_path: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "neuromusic.daemon.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env,
    )  # fmt: skip


def test_a_mistyped_board_is_answered_before_the_signal_maths_is_imported(tmp_path: Path) -> None:
    probe = (
        "import sys\nfrom neuromusic.daemon import cli\n"
        "code = cli.main(['run', '--board', 'cytn', '--duration', '1'])\n"
        "print(code, 'neuromusic.models.signal.calibration' in sys.modules, 'neuromusic.daemon.config' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout.split() == ["2", "False", "False"]
    assert "unknown board 'cytn'; did you mean cyton?" in done.stderr


def test_a_mistyped_board_in_the_toml_is_caught_too(tmp_path: Path) -> None:
    (tmp_path / "lab.toml").write_text('[source]\nboard = "simulatd"\n')
    done = neuromusic(tmp_path, "run", "--config", "lab.toml", "--duration", "1")
    assert done.returncode == 2 and "did you mean simulated?" in done.stderr


def test_version(tmp_path: Path) -> None:
    done = neuromusic(tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("neuromusic ") and len(done.stdout.split()) == 2


def test_run_says_where_it_records_and_session_dir_sessions_are_found(tmp_path: Path) -> None:
    elsewhere = tmp_path / "study" / "p01"
    run = neuromusic(
        tmp_path, "run", "--board", "simulated", "--script", "calm:1,stress:1", "--duration", "3", "--baseline", "1",
        "--window", "1", "--without", "player,telemetry", "--session-dir", "study/p01",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"neuromusic: recording to {elsewhere}" in run.stderr
    assert f"neuromusic: recorded to {elsewhere}" in run.stderr
    listed = neuromusic(tmp_path, "sessions", "--json")
    folders = [json.loads(line)["folder"] for line in listed.stdout.splitlines()]
    assert folders == [str(elsewhere)]
    table = neuromusic(tmp_path, "sessions")
    assert str(elsewhere) in table.stdout
    report = neuromusic(tmp_path, "report", "p01")
    assert report.returncode == 0, report.stderr
    assert Path(report.stdout.strip()) == elsewhere / "report" / "index.html"


def test_the_index_notes_a_folder_once_and_skips_removed_ones(tmp_path: Path) -> None:
    root = tmp_path / "root"
    inside = root / "20260101-000000-a"
    outside = tmp_path / "elsewhere" / "p02"
    assert register(root, inside) is False  # listed anyway: it lies in the root
    assert register(root, outside) is True and register(root, outside) is False
    assert len((root / INDEX_FILE).read_text().splitlines()) == 1
    assert all_sessions(root) == []  # noted, but it holds no session (yet, or any more)
    outside.mkdir(parents=True)
    (outside / "manifest.json").write_text("{}")
    assert all_sessions(root) == [outside.resolve()]
    assert locate("p02", root) == outside.resolve()
    with pytest.raises(Exception, match="no session 'p03'"):
        locate("p03", root)


def test_output_flags_are_relative_to_the_working_directory(tmp_path: Path) -> None:
    overrides = {"sinks.wav": Path("out.wav"), "sinks.midi_file": Path("/abs/x.mid"), "source.board": "synthetic"}
    resolved = resolve_output_paths(overrides, tmp_path)
    assert resolved["sinks.wav"] == tmp_path / "out.wav"
    assert resolved["sinks.midi_file"] == Path("/abs/x.mid")
    assert resolved["source.board"] == "synthetic"
