"""Extraction memory: peak RSS on 500 vs 5,000 real GoEmotions stimuli should be flat.

Each size runs in a fresh process (the bundled all-MiniLM-L6-v2, default template, mask read-out,
default chunking) and reports its peak RSS, with the RSS right after loading the model as the
baseline. Streaming chunks mean the activations of only one chunk are ever in memory.

    python benchmarks/extract_memory.py [--sizes 500,5000] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import pyarrow as pa
from emolake.extract.models.loading import load_model
from emolake.extract.prompts import DEFAULT_TEMPLATE
from emolake.extract.run import ExtractSettings, extract_run
from emolake.warehouse.lake import Lake

root, data, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
lines = (data / "goemotions" / "test.tsv").read_text(encoding="utf-8").splitlines()
texts = [lines[i % len(lines)].split("\t")[0] for i in range(n)]
lake = Lake(root); lake.init()
with lake.transaction("benchmark") as txn:
    txn.write("stimuli", pa.table({"split": ["test"] * n, "stimulus_id": [f"s{i:05d}" for i in range(n)],
        "text": texts, "emotion": ["joy"] * n, "n_labels": [1] * n, "source_row": list(range(n))}), {"dataset": "bench"})
loaded = load_model()
after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
summary = extract_run(lake, ExtractSettings(dataset="bench", position="mask", template=DEFAULT_TEMPLATE), loaded=loaded)
print(json.dumps({"n": n, "seconds": time.perf_counter() - start, "chunk_size": n if summary["chunks"] == 1 else None,
                  "chunks": summary["chunks"], "rss_after_load_mb": after_load / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,5000")
    parser.add_argument("--data", default=os.environ.get("EMOLAKE_SHARED_DATA", "../shared/data"))
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    results = []
    for n in [int(x) for x in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, str(Path(tmp) / "lake"), str(Path(args.data).resolve()),
                                  str(n)], env=env, capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{n:6d} stimuli: {result['chunks']} chunks, {n / result['seconds']:.1f} prompts/s, "
              f"RSS after model load {result['rss_after_load_mb']:.0f} MB, peak RSS {result['peak_rss_mb']:.0f} MB")
    if len(results) >= 2:
        first, last = results[0], results[-1]
        print(f"peak RSS ratio {last['n']} vs {first['n']} stimuli: {last['peak_rss_mb'] / first['peak_rss_mb']:.2f} "
              f"(stimuli x{last['n'] / first['n']:.0f}); growth above the loaded model: "
              f"{last['peak_rss_mb'] - last['rss_after_load_mb']:.0f} vs {first['peak_rss_mb'] - first['rss_after_load_mb']:.0f} MB")


if __name__ == "__main__":
    main()
