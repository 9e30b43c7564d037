"""The searchlight's permutation null (`permutation_null_moments`): this tree's loop vs an earlier commit's.

The earlier function is read from git (`git show REV:analysis/searchlight.py`), imported beside this
one and run in the same process on the same random RDMs; the moments must be equal. Prints both
times, their ratio and each one's GFLOP/s (2 x neurons x permutations x attributes x pairs of pairs).

    PYTHONPATH=/tmp/ns python benchmarks/searchlight_null_loop.py [--rev 443a0f4] [--neurons 9216] [--permutations 500]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emolake.analysis.inference import label_permutations
from emolake.analysis.searchlight import permutation_null_moments


def earlier_function(rev: str):
    source = subprocess.run(["git", "show", f"{rev}:analysis/searchlight.py"], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parent.parent).stdout
    path = Path(tempfile.mkdtemp()) / "emolake_earlier_searchlight.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("emolake.analysis._earlier_searchlight", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its relative imports resolve against emolake.analysis
    spec.loader.exec_module(module)
    return module.permutation_null_moments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="443a0f4", help="the earlier commit")
    parser.add_argument("--neurons", type=int, default=9216)
    parser.add_argument("--permutations", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, y = rng.random((351, args.neurons)), rng.random((351, 14))
    perms = label_permutations(27, args.permutations, 0)
    flops = 2 * args.neurons * args.permutations * 14 * 61425
    results, seconds = {}, {}
    for name, function in (("earlier", earlier_function(args.rev)), ("this tree", permutation_null_moments)):
        start = time.perf_counter()
        results[name] = function(x, y, perms)
        seconds[name] = time.perf_counter() - start
        print(f"{name}: {seconds[name]:.1f} s, {flops / seconds[name] / 1e9:.0f} GFLOP/s")
    assert all(np.array_equal(a, b) for a, b in zip(results["earlier"], results["this tree"])), "moments differ"
    print(f"ratio earlier / this tree: {seconds['earlier'] / seconds['this tree']:.2f}x (moments equal)")


if __name__ == "__main__":
    main()
