"""The embedded GoEmotions sample: the documented rule redraws it bit-identically from the full data
set, it ships its Apache-2.0 licence and citation, and it has the stated counts per emotion and split."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from emolake.ingest import embedded
from emolake.ingest.embedded import build_goemotions_sample as sample
from emolake.ingest.emotions import GOEMOTIONS_27

SPLITS = ("train", "dev", "test")


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_sample_has_the_stated_counts_single_labels_and_no_neutral():
    folder = embedded.goemotions_sample_path()
    labels = sample.read_labels(folder)
    assert len(labels) == 28 and labels[27] == "neutral" and sorted(labels[:27]) == sorted(GOEMOTIONS_27)
    ids = []
    for split in SPLITS:
        rows = _rows(folder / f"{split}.tsv")
        assert all(len(r) == 3 and "," not in r[1] for r in rows), split
        per_emotion = Counter(labels[int(r[1])] for r in rows)
        expected = {e: sample.PER_EMOTION[split] for e in GOEMOTIONS_27}
        if split == "test":
            expected["grief"] = 2  # GoEmotions test has only 2 single-label grief comments
        assert per_emotion == expected, split
        ids += [r[2] for r in rows]
    assert len(ids) == len(set(ids)) == 430


def test_sample_ships_its_licence_and_citation():
    folder = embedded.goemotions_sample_path()
    licence = (folder / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    notice = (folder / "NOTICE.md").read_text(encoding="utf-8")
    assert "Demszky" in notice and "ACL 2020" in notice and "sha256" in notice and "seed 0" in notice


def test_rule_keeps_the_lowest_hash_ranks_per_emotion_in_source_order():
    labels = ["joy", "fear", "neutral"]
    lines = [f"text {i}\t{lab}\tc{i}\n".encode() for i, lab in enumerate(["0", "0", "1", "0", "0,1", "2", "0", "1"])]
    kept = sample.sample_lines(lines, labels, "train", per_emotion=2, seed=7)
    key = lambda cid: hashlib.sha256(f"7/train/{cid}".encode()).hexdigest()  # noqa: E731, the documented rank
    joy = sorted(["c0", "c1", "c3", "c6"], key=key)[:2]
    expected = sorted(joy + ["c2", "c7"], key=lambda c: int(c[1:]))  # fear has 2: both kept; c4 two labels, c5 neutral
    assert [line.decode().split("\t")[2].strip() for line in kept] == expected
    assert sample.sample_lines(lines, labels, "train", 2, seed=7) == kept  # deterministic


def test_sample_regenerates_bit_identically_from_the_full_data(shared_data, tmp_path):
    source = shared_data / "goemotions"
    if not source.is_dir():
        pytest.skip(f"GoEmotions not found at {source}")
    counts = sample.build(source, tmp_path)
    assert counts == {"train": 270, "dev": 54, "test": 106}
    for name in (*(f"{s}.tsv" for s in SPLITS), "labels.txt"):
        assert (tmp_path / name).read_bytes() == (embedded.goemotions_sample_path() / name).read_bytes(), name
    other = sample.build(source, tmp_path / "seed1", seed=1)
    assert other == counts and (tmp_path / "seed1" / "train.tsv").read_bytes() != (tmp_path / "train.tsv").read_bytes()


def test_readme_loads_the_sample_as_goemotions_and_the_wheel_declares_it(lake, monkeypatch):
    import re
    import shlex
    import tomllib

    from click.testing import CliRunner

    from emolake.cli import cli
    from emolake.warehouse.database import query

    repo = Path(__file__).resolve().parent.parent
    section = (repo / "README.md").read_text().split("## Embedded default data", 1)[1].split("\n## ", 1)[0]
    line = next(b for b in re.findall(r"```bash\n(.*?)```", section, re.S) if "goemotions_sample" in b).strip()
    argv = shlex.split(line)
    assert argv[:3] == ["emolake", "--lake", "lake"]
    monkeypatch.chdir(repo)  # the path is relative to the root of a clone
    result = CliRunner().invoke(cli, ["--lake", str(lake.root), *argv[3:]])
    assert result.exit_code == 0, result.output
    rows = query(lake, "SELECT split, count(*) AS n, count(DISTINCT emotion) AS e, max(n_labels) AS labels "
                       f"FROM stimuli WHERE dataset = '{embedded.SAMPLE_DATASET}' GROUP BY split ORDER BY split")
    assert rows.to_pylist() == [{"split": "dev", "n": 54, "e": 27, "labels": 1},
                                {"split": "test", "n": 106, "e": 27, "labels": 1},
                                {"split": "train", "n": 270, "e": 27, "labels": 1}]
    package_data = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "goemotions_sample/*" in package_data["emolake.ingest.embedded"]
