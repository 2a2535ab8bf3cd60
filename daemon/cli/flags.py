"""Command-line flags as tables: one table per configuration section, each flag one TOML key.

A table drives both the parser (the section's flags in one help group, every flag's help ending in its
`[section.key]`) and the overrides handed to the configuration loader, so no flag can silently do nothing and none
sits among another section's flags. A flag not given overrides nothing: the TOML file (or the default) stays.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Flag:
    flag: str
    key: str  # the option within the table's section, as in the TOML file
    help: str
    type: Callable[[str], Any] | None = str  # None: a switch that takes no value
    metavar: str | None = None
    const: Any = None  # for switches: the value the key takes when the flag is given
    # For a flag that sets several keys at once (--mqtt HOST[:PORT]): its value -> {option: value}
    expand: Callable[[Any], dict[str, Any]] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class FlagTable:
    section: str  # the TOML section, e.g. "source"
    title: str  # what the section is about, for the help
    flags: tuple[Flag, ...]

    def find(self, flag: str) -> Flag | None:
        return next((f for f in self.flags if f.flag == flag), None)


def add_table(
    parser: argparse.ArgumentParser,
    table: FlagTable,
    *,
    only: Iterable[str] | None = None,
    helps: dict[str, str] | None = None,
    keys: bool = True,
) -> None:
    """The table's flags as one help group. `only`: just these flags; `helps`: other help texts (a command with
    no configuration file); `keys`: end each help with the flag's [section.key]."""
    group = parser.add_argument_group(f"{table.title} [{table.section}]" if keys else table.title)
    wanted = set(only) if only is not None else None
    for flag in table.flags:
        if wanted is not None and flag.flag not in wanted:
            continue
        text = (helps or {}).get(flag.flag, flag.help)
        if keys:
            text = f"{text} [{table.section}.{flag.key}]"
        if flag.type is None:
            group.add_argument(flag.flag, dest=flag.dest, action="store_const", const=flag.const, help=text)
        else:
            metavar = flag.metavar or flag.flag.lstrip("-").split("-")[-1].upper()
            group.add_argument(flag.flag, dest=flag.dest, type=flag.type, metavar=metavar, help=text)


def table_overrides(args: argparse.Namespace, tables: Iterable[FlagTable]) -> dict[str, Any]:
    """{"section.key": value} for every flag of these tables given on the command line."""
    overrides: dict[str, Any] = {}
    for table in tables:
        for flag in table.flags:
            value = getattr(args, flag.dest, None)
            if value is None:
                continue
            keys = flag.expand(value) if flag.expand is not None else {flag.key: value}
            overrides.update({f"{table.section}.{key}": item for key, item in keys.items()})
    return overrides
