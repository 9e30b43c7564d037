"""The embedded default data set, shipped inside the package so `emolake demo` needs no download.

- `situations.csv` (`stimulus_id,text,emotion,split`): 16 short first-person situations per
  GoEmotions emotion (27 x 16 = 432), written by the project; split 10 train / 2 dev / 4 test
  per emotion (positions 1-10, 11-12, 13-16 of each emotion's list).
- `study_attributes.csv` (`emotion,attribute,value`): the study's published 27 x 14 attribute table.
- `study_similarity.csv` (`rater,emotion_a,emotion_b,distance`): its 351 mean human pair
  distances, rater `avg`.
- `goemotions_sample/` (`train.tsv`, `dev.tsv`, `test.tsv`, `labels.txt` in GoEmotions' own layout):
  430 real Reddit comments from GoEmotions (Demszky et al., ACL 2020; Apache-2.0, `LICENSE` and
  `NOTICE.md` in the folder), single-label, up to 10 train / 2 dev / 4 test per emotion, drawn by
  `build_goemotions_sample.py` with seed 0 (its docstring states the rule; it regenerates the
  folder bit-identically from the full data set).
The last two come from Li et al. (iScience 2024, arXiv 2302.09582; Apache-2.0): see `CITATION.md`
and `LICENSE-DATA` beside them, and `build_embedded.py`, which made them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DATASET = "emolake-situations"  # dataset name of the embedded stimuli in the lake
SAMPLE_DATASET = "goemotions-sample"  # dataset name of the embedded GoEmotions sample in the lake
STUDY = "li2024"  # the published figures load as the study's own id (see the shared contracts)


def _path(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))


def situations_path() -> Path:
    """The embedded stimuli CSV: `stimulus_id,text,emotion,split`."""
    return _path("situations.csv")


def attributes_path() -> Path:
    """The study's 27 x 14 attribute table, tidy: `emotion,attribute,value`."""
    return _path("study_attributes.csv")


def similarity_path() -> Path:
    """The study's 351 mean human pair distances, tidy: `rater,emotion_a,emotion_b,distance` (rater `avg`)."""
    return _path("study_similarity.csv")


def goemotions_sample_path() -> Path:
    """The embedded GoEmotions sample: a folder of `train/dev/test.tsv` + `labels.txt` in the original layout."""
    return _path("goemotions_sample")
