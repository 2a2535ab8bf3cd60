"""benchmarks/policies.py's options: `--config` benchmarks a TOML file's settings, `--listeners` picks shipped
listeners by name, `--shipped-loop` chooses the shipped part's loop (short direct-loop runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "policies.py"
SHORT = ["--parts", "shipped", "--listeners", "default", "--shipped-seeds", "1", "--minutes", "8"]
SHORT += ["--policies", "bandit", "--shipped-loop", "direct"]


def run_benchmark(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCHMARK), *args], capture_output=True, text=True, timeout=120)


def table_rows(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("| default ")]


def test_config_file_changes_the_benchmarked_bandit(tmp_path: Path) -> None:
    rows = {}
    for model in ("peak", "bumps"):
        config = tmp_path / f"{model}.toml"
        config.write_text(f'[policy.bandit]\nmodel = "{model}"\n', encoding="utf-8")
        done = run_benchmark(*SHORT, "--config", str(config))
        assert done.returncode == 0, done.stderr
        rows[model] = table_rows(done.stdout)
        assert len(rows[model]) == 1  # only the default listener, only the bandit
        assert "direct loop" in done.stdout
    assert rows["peak"] != rows["bumps"]


def test_bad_config_and_unknown_listener_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[policy.bandit]\nmodel = "nonsense"\n', encoding="utf-8")
    done = run_benchmark(*SHORT, "--config", str(config))
    assert done.returncode != 0
    assert "nonsense" in done.stderr and "Traceback" not in done.stderr
    done = run_benchmark("--parts", "shipped", "--listeners", "default,nobody")
    assert done.returncode != 0
    assert "nobody" in done.stderr and "melancholic" in done.stderr


def test_population_part_reports_listeners_and_sessions_served() -> None:
    done = run_benchmark("--parts", "population", "--population", "3", "--seeds", "2", "--minutes", "12")
    assert done.returncode == 0, done.stderr
    assert "3 listeners x 2 seeds" in done.stdout
    served = {}
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3 and cells[1] in ("mapping", "bandit"):
            served[cells[1]] = (float(cells[2].rstrip("%")), float(cells[3].rstrip("%")))
    assert set(served) == {"mapping", "bandit"}
    for listeners, sessions in served.values():
        # listeners are counted in thirds, sessions (3 x 2) in sixths
        assert min(abs(listeners - 100 * k / 3) for k in range(4)) < 0.6
        assert min(abs(sessions - 100 * k / 6) for k in range(7)) < 0.6
    assert served["bandit"][1] > served["mapping"][1]


def test_seed_counts_below_one_are_refused() -> None:
    for option in ("--seeds", "--session-seeds", "--shipped-seeds"):
        done = run_benchmark("--parts", "population", option, "0")
        assert done.returncode != 0
        assert option in done.stderr and "at least 1" in done.stderr and "Traceback" not in done.stderr
