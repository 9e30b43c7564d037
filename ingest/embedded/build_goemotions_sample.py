"""Draw the embedded GoEmotions sample from the full data set (run once; output committed).

GoEmotions (Demszky et al., ACL 2020) is Apache-2.0, so a sample of its real Reddit comments may
ship inside the package for `emolake demo`. The sampling rule, applied to each file of the original
split (`train.tsv`, `dev.tsv`, `test.tsv`) on its own, so no comment changes split:

1. keep the comments with exactly one label id, and that label not `neutral` (the study's
   emotion profiles are means over single-label stimuli of the 27 emotions);
2. for each of the 27 emotions, rank its comments by `sha256(f"{SEED}/{split}/{comment_id}")`
   (hex, ascending) and keep the first `PER_EMOTION[split]`, or all of them when the split has
   fewer (GoEmotions test has 2 single-label `grief` comments, so the test file has 2 of grief);
3. write the kept lines byte for byte as they are in the source file, in the source file's order,
   with `labels.txt` copied unchanged, so `ingest stimuli` reads the sample as it reads the full set.

A hash rank rather than a random generator: the draw is the same on every platform and Python or
numpy version, and a comment's rank does not depend on which other comments are in the file.

    python ingest/embedded/build_goemotions_sample.py ../shared/data/goemotions
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "goemotions_sample"
SEED = 0
SPLITS = ("train", "dev", "test")
PER_EMOTION = {"train": 10, "dev": 2, "test": 4}  # comments per emotion per split, as the situations' 10/2/4
NEUTRAL = "neutral"


def read_labels(source: Path) -> list[str]:
    """The 28 label names of `labels.txt`, label id = line number - 1."""
    return [line.strip() for line in (source / "labels.txt").read_text(encoding="utf-8").splitlines() if line.strip()]


def rank_key(seed: int, split: str, comment_id: str) -> str:
    return hashlib.sha256(f"{seed}/{split}/{comment_id}".encode()).hexdigest()


def sample_lines(lines: list[bytes], labels: list[str], split: str, per_emotion: int, seed: int = SEED) -> list[bytes]:
    """The kept lines of one split's TSV (text, label ids, comment id), in their original order."""
    by_emotion: dict[str, list[tuple[str, int]]] = defaultdict(list)  # emotion -> [(rank key, line index)]
    for index, line in enumerate(lines):
        fields = line.rstrip(b"\r\n").decode("utf-8").split("\t")
        if len(fields) != 3:
            raise ValueError(f"{split}.tsv line {index + 1}: {len(fields)} tab-separated fields, expected 3")
        ids = fields[1].split(",")
        if len(ids) != 1 or labels[int(ids[0])] == NEUTRAL:
            continue
        by_emotion[labels[int(ids[0])]].append((rank_key(seed, split, fields[2].strip()), index))
    kept = sorted(index for ranked in by_emotion.values() for _, index in sorted(ranked)[:per_emotion])
    return [lines[index] for index in kept]


def build(source: Path, out: Path = OUT, seed: int = SEED, per_emotion: dict[str, int] | None = None) -> dict[str, int]:
    """Write `out/{train,dev,test}.tsv` and `out/labels.txt` from a GoEmotions folder; return rows per split."""
    per_emotion = per_emotion or PER_EMOTION
    labels = read_labels(source)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "labels.txt", out / "labels.txt")
    counts = {}
    for split in SPLITS:
        lines = (source / f"{split}.tsv").read_bytes().splitlines(keepends=True)
        kept = sample_lines(lines, labels, split, per_emotion[split], seed)
        (out / f"{split}.tsv").write_bytes(b"".join(kept))
        counts[split] = len(kept)
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python ingest/embedded/build_goemotions_sample.py GOEMOTIONS_DIR")
    print(build(Path(sys.argv[1])))
