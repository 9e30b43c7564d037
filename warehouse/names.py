"""Names that become paths: the one check for every hive partition value and file name in the lake.

A study, dataset, run set, run id, instrument (or any other value that ends up as `key=value` in a
folder name or as part of a file name) must be a *name*: 1 to 128 characters from
`A-Z a-z 0-9 . _ -`, starting with a letter or digit, without `..`. That rules out path separators,
`=`, NUL, the empty string, the seed partitions (`_empty`, `-1`) and anything a file system or a
hive reader could read as something else. Integer partition keys (`layer`, `k`) take integers >= 0.

`check_name` is applied at the root (`warehouse.lake.partition_path` and the lake's write path);
`guard_name_options` applies the same check to every CLI flag that takes a name, so the error
names the flag. `inside_lake` is the second line of defence: every path the lake writes or deletes
must resolve (symlinks followed) inside the lake root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from .errors import BadInputError, quote

NAME_ALPHABET = "A-Z a-z 0-9 . _ -"
NAME_MAX = 128
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}" % (NAME_MAX - 1))
NAME_RULE = (f"a name of 1-{NAME_MAX} characters from {NAME_ALPHABET}, starting with a letter or digit, "
             "without '..'")
# CLI options (by parameter name) whose value becomes a partition value or a file name.
NAME_OPTIONS = ("study", "dataset", "run_set", "run_id", "instrument", "attributes_study")


class BadNameError(BadInputError):
    """A value that would become a partition folder or file name is not a valid name."""


def name_problem(value: object) -> str | None:
    """Why `value` is not a valid name (None when it is)."""
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    if value == "":
        return "empty"
    if "\0" in value:
        return "contains a NUL byte"
    if len(value) > NAME_MAX:
        return f"{len(value)} characters long (at most {NAME_MAX})"
    for bad, what in (("/", "a '/'"), ("\\", "a '\\'"), ("=", "an '='")):
        if bad in value:
            return f"contains {what}"
    if ".." in value:
        return "contains '..'"
    if not NAME_PATTERN.fullmatch(value):
        if not value[0].isascii() or not value[0].isalnum():
            return f"starts with {value[0]!r}"
        odd = next(c for c in value if not re.fullmatch(r"[A-Za-z0-9._-]", c))
        return f"contains {odd!r}"
    return None


def check_name(value: object, what: str = "name", *, file: str | None = None) -> str:
    """`value` if it is a valid name, else BadNameError naming `what` (a partition key or a flag)."""
    problem = name_problem(value)
    if problem is not None:
        raise BadNameError(f"bad {what}: {problem}", file=file, column=what, expected=NAME_RULE, found=value)
    return value  # type: ignore[return-value]


def check_partition_value(key: str, value: object, integer: bool) -> str:
    """The folder text of one partition value: a valid name, or for integer keys an integer >= 0."""
    if integer:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
            raise BadNameError(f"bad {key}: not an integer", column=key, expected="an integer >= 0", found=value)
        if int(value) < 0:
            raise BadNameError(f"bad {key}: negative", column=key, expected="an integer >= 0", found=value)
        return str(int(value))
    return check_name(value, key)


def name_from_text(text: str, fallback: str = "part") -> str:
    """A valid name derived from free text (a file name): other characters become '-'."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).replace("..", "-").strip("-._")[:NAME_MAX]
    return slug if slug else fallback


def inside_lake(root: Path, path: Path) -> Path:
    """`path` if it resolves (symlinks followed) inside `root`, else BadInputError: nothing escapes the lake."""
    real_root = Path(os.path.realpath(root))
    try:
        real = Path(os.path.realpath(path, strict=False))
    except OSError as exc:  # a symlink loop on the way (Python >= 3.13 raises; 3.11 returns it)
        raise BadInputError(f"cannot resolve a lake path ({exc.strerror})", file=str(path)) from exc
    if real != real_root and real_root not in real.parents:
        raise BadInputError("refusing to write or delete outside the lake (a symlink or '..' leads out)",
                            file=str(path), expected=f"a path inside {real_root}", found=str(real))
    return path


class NameParam(click.ParamType):
    """Click type for a flag whose value becomes a partition or file name: the error names the flag."""

    name = "name"

    def convert(self, value, param, ctx):
        if value is None:
            return value
        problem = name_problem(value)
        if problem is not None:
            self.fail(f"{problem}; expected {NAME_RULE}; found {quote(value)}", param, ctx)
        return value


def guard_name_options(command: click.Command) -> None:
    """Give every option in NAME_OPTIONS of `command` and its subcommands the NameParam check."""
    for param in command.params:
        if isinstance(param, click.Option) and param.name in NAME_OPTIONS and param.type is click.STRING:
            param.type = NameParam()
    for sub in getattr(command, "commands", {}).values():
        guard_name_options(sub)
