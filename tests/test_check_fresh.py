"""scripts/check-fresh: what a machine has beyond the base image and the project's list, on the real dpkg database."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="check-fresh reads dpkg's database")


def installed() -> list[str]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Package}\n"], capture_output=True, text=True, check=True
    ).stdout
    return sorted({line.split()[1] for line in out.splitlines() if line.startswith("ii")})


def check(base: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts/check-fresh"), "--base", str(base)], capture_output=True, text=True, timeout=120
    )


def section(output: str, title: str) -> list[str]:
    lines = output.split(f"== {title}", 1)[1].splitlines()[1:]
    return [line.strip() for line in lines[: next((i for i, x in enumerate(lines) if x.startswith("==")), len(lines))]]


def test_a_package_beyond_the_base_image_is_listed_and_the_projects_are_checked(tmp_path: Path) -> None:
    packages = installed()
    assert "make" in packages  # in the base image, and no dependency of the project's packages
    everything = tmp_path / "base.txt"
    everything.write_text("\n".join(packages) + "\n")
    same = check(everything)
    assert section(same.stdout, "installed beyond") == ["none"]
    project = section(same.stdout, "the project's system packages")
    assert "installed  fluid-soundfont-gm" in project and "installed  timgm6mb-soundfont" in project
    fewer = tmp_path / "fewer.txt"  # the tab-separated form of a package list works too
    fewer.write_text("".join(f"apt\t{name}\t1.0\n" for name in packages if name != "make"))
    extra = check(fewer)
    assert extra.returncode == 1
    assert section(extra.stdout, "installed beyond") in (["manual     make"], ["automatic  make"])
    assert check(tmp_path / "missing.txt").returncode == 2
