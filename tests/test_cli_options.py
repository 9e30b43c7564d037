"""One meaning per flag name across every command (sqlite-utils' model): a flag used by several
commands says what it is in the same words everywhere (the first clause of its help), `--format`
is always an output format (input files have `--layout`), `--study` is required the same way,
`--device` has one default, and `neurons` and `ablate` share their k default so that running
both with defaults works."""

from __future__ import annotations

import re
from collections import defaultdict

import click
import pytest

from emolake.cli import cli
from test_cli_docs import COMMANDS

# The report only shows results; it chooses a study and a run set from what the lake holds.
DISPLAY_COMMANDS = {("report",)}


def meaning(help_text: str | None) -> str:
    """What a flag is: its help text up to the first ':', ';', '.', ' (' or ' ['."""
    return re.split(r":|;|\.(?:\s|$)| \(| \[", help_text or "", maxsplit=1)[0].strip()


def options_by_flag() -> dict[str, list[tuple[tuple[str, ...], click.Option]]]:
    found: dict[str, list] = defaultdict(list)
    for path, command in COMMANDS:
        if isinstance(command, click.Group):
            continue
        for param in command.params:
            if isinstance(param, click.Option):
                for flag in param.opts:
                    if flag.startswith("--"):
                        found[flag].append((path, param))
    return dict(found)


FLAGS = options_by_flag()
SHARED = sorted(flag for flag, uses in FLAGS.items() if len(uses) > 1)


def test_the_meaning_rule_reads_the_first_clause():
    assert meaning("Output format: a table, CSV or JSON.") == "Output format"
    assert meaning("Study id (the partition replaced).") == "Study id"
    assert meaning("Seeds the draws. Recorded.") == "Seeds the draws"
    assert meaning("Texts per pass [default: 32]") == "Texts per pass"
    assert meaning(None) == ""


def test_flags_shared_by_several_commands_exist():
    assert {"--format", "--study", "--device", "--k", "--run-set", "--json"} <= set(SHARED)


@pytest.mark.parametrize("flag", SHARED)
def test_a_shared_flag_means_the_same_everywhere(flag):
    uses = FLAGS[flag]
    meanings = {" ".join(path): meaning(option.help) for path, option in uses}
    assert all(meanings.values()), f"{flag} has no help text in: {[c for c, m in meanings.items() if not m]}"
    assert len(set(meanings.values())) == 1, f"{flag} means different things: {meanings}"
    kinds = {" ".join(path): (option.is_flag, option.multiple) for path, option in uses}
    assert len(set(kinds.values())) == 1, f"{flag} is a switch in some commands and takes values in others: {kinds}"


def test_format_is_an_output_format_and_input_files_have_a_layout():
    assert {meaning(option.help) for _, option in FLAGS["--format"]} == {"Output format"}
    assert {meaning(option.help) for _, option in FLAGS["--layout"]} == {"Input layout"}


def test_study_is_required_wherever_a_command_computes_or_loads_a_study():
    optional = [" ".join(path) for path, option in FLAGS["--study"]
                if not option.required and path not in DISPLAY_COMMANDS]
    assert not optional, f"--study is optional in {optional} but required elsewhere"


def test_device_has_one_default_and_one_set_of_choices():
    settings = {" ".join(path): (option.default, tuple(option.type.choices)) for path, option in FLAGS["--device"]}
    assert len(settings) >= 3  # extract, infer, ablate
    assert len(set(settings.values())) == 1, settings


def test_neurons_and_ablate_default_to_the_same_set_sizes():
    defaults = {" ".join(path): option.default for path, option in FLAGS["--k"] if path in (("neurons",), ("ablate",))}
    assert len(defaults) == 2 and len(set(defaults.values())) == 1, defaults
