"""What a command imports decides how fast it starts: the score alone must never pay for torch and transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from neuromusic.daemon.cli import main
code = main(["run", "--board", "synthetic", "--without", "player", "--duration", "1.5", "--quiet", "--no-record"])
heavy = sorted(name for name in ("torch", "transformers", "music21") if name in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy) or "-")
"""


def test_run_without_player_never_imports_torch() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "EXIT 0 HEAVY -" in done.stdout, done.stdout + done.stderr


def test_the_probe_sees_torch_when_a_command_does_import_it(tmp_path: Path) -> None:
    out = tmp_path / "one.mid"
    probe = PROBE.replace(
        '["run", "--board", "synthetic", "--without", "player", "--duration", "1.5", "--quiet", "--no-record"]',
        f'["generate", "--bars", "1", "--seed", "1", "-o", {str(out)!r}]',
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "EXIT 0 HEAVY" in done.stdout, done.stdout + done.stderr
    assert "torch" in done.stdout.split("HEAVY", 1)[1], done.stdout


def test_the_composer_plays_from_the_checkpoint_without_importing_transformers() -> None:
    probe = """
import sys
from neuromusic.models.core.messages import Controls
from neuromusic.models.music.composer import Composer
from neuromusic.models.music.config import ComposerConfig
composer = Composer.load(ComposerConfig(seed=1))
bar = composer.next_bar(Controls(tempo=70.0, valence=0.8, energy=0.3))
print("NOTES", len(bar.notes), "TRANSFORMERS", "transformers" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "TRANSFORMERS False" in done.stdout and "NOTES 0 " not in done.stdout, done.stdout
