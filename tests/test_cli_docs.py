"""The CLI documents itself: every command (groups' subcommands included) is in README.md, has
`--help` with an `Example:` block naming real commands, and the exit codes are in the README.
The examples of the commands that need only a lake run as shown (as sqlite-utils' test_docs)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from emolake.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """(path, command) for every command under `group`, depth first; groups are listed too."""
    found = []
    for name, command in sorted(group.commands.items()):
        path = prefix + (name,)
        found.append((path, command))
        if isinstance(command, click.Group):
            found += walk(command, path)
    return found


COMMANDS = walk(cli)
IDS = [" ".join(path) for path, _ in COMMANDS]


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def examples(text: str) -> list[list[str]]:
    """The command lines of the `Example:` block of a help text, split like a shell would."""
    block = text.split("Example:", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if not line.strip():
            break
        lines.append(shlex.split(line.strip()))
    return lines


def test_walk_finds_the_foundation_commands():
    assert {"init", "status", "query", "export", "report"} <= set(IDS)


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=IDS)
def test_every_command_is_in_the_readme(path):
    name = " ".join(path)
    assert re.search(rf"`emolake {re.escape(name)}(`| )", README), f"`emolake {name}` is missing from README.md"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=IDS)
def test_every_command_has_an_example_of_itself(path):
    text = help_text(path)
    assert "Example:" in text, f"`emolake {' '.join(path)} --help` has no Example: block"
    lines = examples(text)
    assert lines, "the Example: block is empty"
    known = {p for p, _ in COMMANDS}
    runs = []
    for argv in lines:
        assert argv[0] in ("emolake", "python"), argv
        words = [w for w in argv[1:] if w != "cli.py"]
        while words and words[0].startswith("--"):  # group options: --lake DIR
            words = words[2:]
        assert (words[0],) in known, f"example {' '.join(argv)!r} names no command"  # a follow-up query is fine
        runs.append(tuple(words[:len(path)]) == path)
    assert any(runs), f"no example runs `emolake {' '.join(path)}`"


def test_exit_codes_are_documented():
    assert re.search(r"Exit codes: 0 ok, 2 bad input .*1 internal error", README, re.S)


def test_bad_input_exits_2_and_names_the_problem(tmp_path):
    result = CliRunner().invoke(cli, ["--lake", str(tmp_path / "none"), "status"])
    assert result.exit_code == 2
    assert "is not an emolake lake" in result.output


LAKE_ONLY = ("init", "status", "query", "export", "report")  # examples that need nothing but a lake


@pytest.mark.parametrize("name", LAKE_ONLY)
def test_lake_only_examples_run_as_shown(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["--lake", "lake", "init"]).exit_code == 0
    for argv in examples(help_text((name,))):
        result = runner.invoke(cli, argv[1:])
        assert result.exit_code == 0, f"{' '.join(argv)}: {result.output}"


def test_readme_sections_are_not_duplicated():
    headings = re.findall(r"(?m)^## .*$", README)
    assert len(headings) == len(set(headings)), sorted(h for h in headings if headings.count(h) > 1)


def test_readme_embedded_data_commands_run_as_shown(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parent.parent
    section = README.split("## Embedded default data", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in re.findall(r"```bash\n(.*?)```", section, re.S)[0].splitlines() if line.strip()]
    assert len(lines) == 3
    monkeypatch.chdir(repo)  # the paths are relative to the root of a clone
    runner = CliRunner()
    lake = tmp_path / "lake"
    assert runner.invoke(cli, ["--lake", str(lake), "init"]).exit_code == 0
    for line in lines:
        argv = shlex.split(line)
        assert argv[:3] == ["emolake", "--lake", "lake"], line
        result = runner.invoke(cli, ["--lake", str(lake), *argv[3:]])
        assert result.exit_code == 0, f"{line}: {result.output}"


def test_readme_lake_shell_examples_run_as_shown(tmp_path):
    """The DuckDB shell lines of "The lake": one from inside the lake, one from the folder above it
    (the root of a clone) with `SET file_search_path`; both print the human RDM's pair count."""
    import os
    import shutil
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    duckdb = shutil.which("duckdb", path=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]))
    if duckdb is None:
        pytest.skip("the DuckDB shell is not installed (pip install duckdb-cli)")
    section = README.split("## The lake", 1)[1].split("\n## ", 1)[0]
    lines = [line for block in re.findall(r"```bash\n(.*?)```", section, re.S) for line in block.splitlines()
             if line.strip()]
    assert len(lines) == 2 and "SET file_search_path = 'lake'" in lines[1]
    similarity = Path(__file__).resolve().parent.parent / "ingest" / "embedded" / "study_similarity.csv"
    runner = CliRunner()
    lake = str(tmp_path / "lake")
    assert runner.invoke(cli, ["--lake", lake, "init"]).exit_code == 0
    result = runner.invoke(cli, ["--lake", lake, "ingest", "similarity", str(similarity), "--study", "li2024"])
    assert result.exit_code == 0, result.output
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(duckdb).parent), os.environ.get("PATH", "")])}
    for line in lines:
        shell = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=60)
        assert shell.returncode == 0, f"{line}: {shell.stderr}"
        assert re.search(r"li2024\s*│\s*351", shell.stdout), shell.stdout


DESIGN = (Path(__file__).resolve().parent.parent / "docs" / "DESIGN.md")


def test_the_design_doc_the_readme_cites_exists_with_its_sections():
    assert "`docs/DESIGN.md`" in README
    text = DESIGN.read_text()
    for heading in ("## Architecture", "## Data flow, from `cli.py` down", "## The lake's layout",
                    "## Commit protocol", "## Analyses"):
        assert heading in text, heading
    assert "docs/RELIABILITY.md" in text.split("## Commit protocol", 1)[1].split("\n## ", 1)[0]


def test_the_design_doc_names_only_code_that_exists_and_every_sql_file():
    repo = DESIGN.parent.parent
    text = DESIGN.read_text()
    named = set(re.findall(r"`?\b((?:analysis|extract|ingest|warehouse|sql|tests|benchmarks)/[\w/]+\.(?:py|sql))", text))
    assert named, "no code paths found"
    missing = sorted(path for path in named if not (repo / path).exists())
    assert not missing, f"docs/DESIGN.md names files that do not exist: {missing}"
    sql_files = {f"`{p.name}`" for p in (repo / "sql").glob("*.sql")}
    assert not [f for f in sql_files if f not in text], "a sql/ file is missing from docs/DESIGN.md"
