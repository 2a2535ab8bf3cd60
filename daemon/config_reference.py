"""The configuration reference, generated from the dataclasses themselves: every key, its type, default and comment.

The comment of a key is the one on its line (`window_s: float = 2.0  # DE is computed over ...`) or the comment
lines just above it. `docs/configuration.md` is this module's output (`neuromusic config --reference`); a test keeps
the committed page equal to it, so the reference can never fall behind the code.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import textwrap
import tokenize
import typing
from pathlib import Path
from typing import Any

from neuromusic.daemon.config import Config

HEADER = """# Configuration reference

Every option of the TOML file given with `--config`, section by section. A key left out keeps its default; an
unknown key or a wrong type stops the daemon with a message that names the key and what is allowed. Command-line
flags override the file (`neuromusic run --help` lists them, each with the key it sets). A complete example file,
with every section, is `deploy/neuromusic.example.toml`.

This page is generated from the code (`neuromusic config --reference`).
"""


def field_comments(cls: type[Any]) -> dict[str, str]:
    """Map each field of dataclass `cls` to the comment on its line, else the comment lines right above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    lines = source.splitlines()
    by_row = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    comments: dict[str, str] = {}
    group = ""  # a comment block above a run of fields (no blank line between) speaks for each of them
    for row, line in enumerate(lines, start=1):
        if not line.strip():
            group = ""
            continue
        is_field = line.startswith("    ") and not line.startswith("     ") and ":" in line
        name = line.split(":", 1)[0].strip() if is_field else ""
        if name not in names:
            continue
        above: list[str] = []
        previous = row - 1
        while previous >= 1 and lines[previous - 1].strip().startswith("#"):
            above.insert(0, by_row.get(previous, ""))
            previous -= 1
        if above:
            group = " ".join(above)
        if row in by_row:
            comments[name] = by_row[row]
        elif group:
            comments[name] = group
    return comments


def type_name(hint: Any) -> str:
    text = str(hint) if not isinstance(hint, type) else hint.__name__
    for noise in ("typing.", "pathlib.", "<class '", "'>"):
        text = text.replace(noise, "")
    return text.replace("NoneType", "None")


def default_text(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "(required)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "unset"
    if isinstance(value, str | Path):
        return f'"{value}"'
    if isinstance(value, tuple):
        value = list(value)
    return str(value).replace("'", '"').replace("(", "[").replace(")", "]")


def section_rows(cls: type[Any], prefix: str) -> tuple[list[str], list[tuple[str, type[Any]]]]:
    """Markdown rows for the plain keys of `cls`, and the nested sections to document after it."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    rows: list[str] = []
    nested: list[tuple[str, type[Any]]] = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            nested.append((f"{prefix}.{field.name}", hint))
            continue
        comment = comments.get(field.name, "").replace("|", "\\|")
        kind = type_name(hint).replace("|", "\\|")
        rows.append(f"| `{field.name}` | `{kind}` | `{default_text(field)}` | {comment} |")
    return rows, nested


def render_markdown() -> str:
    parts = [HEADER]
    queue: list[tuple[str, type[Any]]] = []
    hints = typing.get_type_hints(Config)
    for field in dataclasses.fields(Config):
        queue.append((field.name, hints[field.name]))
    while queue:
        name, cls = queue.pop(0)
        doc = inspect.getdoc(cls) or ""
        first = doc.split("\n\n", 1)[0].replace("\n", " ") if doc and not doc.startswith(cls.__name__ + "(") else ""
        rows, nested = section_rows(cls, name)
        parts.append(f"\n## `[{name}]`\n")
        if first:
            parts.append(f"\n{first}\n")
        parts.append("\n| key | type | default | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")
        queue[0:0] = nested
    return "".join(parts)
