"""Benchmark DuckDB's scan of activations in a lake on local disk against the same lake on a local S3 server.

Starts moto's S3 server as its own process on 127.0.0.1 (so it does not share this process's GIL),
writes the same synthetic activations (`--stimuli` x `--layers` x `--d-ff` float32, chunks of
`--chunk` stimuli, through `LakeTransaction` as `extract` writes them) into a local lake and into
`s3://bench/lake`, then times, alternating local and S3, `--repeat` times each:

- the `activation_vectors` view scanned whole (every stored byte read, through the commit-log filter);
- the long `activations` view, one layer averaged;
- `read_activation_matrix` (pyarrow, the analyses' path).

Prints medians, MB/s of stored Parquet and the S3 / local ratio. The server keeps objects in memory,
on loopback: this measures the s3fs/fsspec read path DuckDB uses, not a network.

    python benchmarks/s3_scan.py --stimuli 2000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUERIES = {
    "scan activation_vectors (all bytes)": "SELECT count(*), sum(len(activation)) FROM activation_vectors",
    "activations, one layer averaged": "SELECT avg(value) FROM activations WHERE layer = 0",
}


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def fill(lake, n_stimuli: int, n_layers: int, d_ff: int, chunk: int) -> int:
    """Write the activations; returns the stored bytes of the activation files."""
    from emolake.extract.store import activation_table, chunk_name

    rng = np.random.default_rng(0)
    lake.init()
    for start in range(0, n_stimuli, chunk):
        ids = [f"s{i:06d}" for i in range(start, min(start + chunk, n_stimuli))]
        with lake.transaction("bench") as txn:
            for layer in range(n_layers):
                values = rng.standard_normal((len(ids), d_ff), dtype=np.float32)  # [chunk, d_ff]
                txn.write("activations", activation_table(ids, values), {"run_id": "bench", "layer": layer},
                          part_name=chunk_name(start // chunk), replace=False)
    return sum(f.stat().st_size for f in Path(str(lake.root)).rglob("activations/run_id=bench/*/*.parquet")) \
        if lake.storage.local else 0


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stimuli", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--d-ff", type=int, default=1536)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    server, endpoint = start_server()
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")
    try:
        import s3fs

        from emolake.extract.store import read_activation_matrix
        from emolake.warehouse.database import connect
        from emolake.warehouse.lake import Lake

        with tempfile.TemporaryDirectory() as tmp:
            os.environ["EMOLAKE_CACHE"] = str(Path(tmp) / "cache")
            s3fs.S3FileSystem(use_listings_cache=False).mkdir("bench")
            lakes = {"local": Lake(Path(tmp) / "lake"), "s3": Lake("s3://bench/lake")}
            stored = fill(lakes["local"], args.stimuli, args.layers, args.d_ff, args.chunk)
            fill(lakes["s3"], args.stimuli, args.layers, args.d_ff, args.chunk)
            mb = stored / 1e6
            print(f"{args.stimuli} stimuli x {args.layers} layers x {args.d_ff} units = "
                  f"{args.stimuli * args.layers * args.d_ff / 1e6:.1f} M float32, {mb:.1f} MB stored in "
                  f"{args.layers * -(-args.stimuli // args.chunk)} files; load average {os.getloadavg()[0]:.1f}")
            tasks = {name: (lambda con, sql=sql: con.execute(sql).fetchall()) for name, sql in QUERIES.items()}
            results: dict[str, dict[str, float]] = {name: {} for name in [*tasks, "read_activation_matrix"]}
            for name in results:  # alternate local and S3 per task, each connection opened once
                for where, lake in lakes.items():
                    if name == "read_activation_matrix":
                        results[name][where] = median_seconds(lambda: read_activation_matrix(lake, "bench"), args.repeat)
                        continue
                    with connect(lake) as con:
                        tasks[name](con)  # views bound, files listed once
                        results[name][where] = median_seconds(lambda: tasks[name](con), args.repeat)
            print(f"{'task':40} {'local s':>9} {'S3 s':>9} {'local MB/s':>11} {'S3 MB/s':>9} {'S3/local':>9}")
            for name, t in results.items():
                print(f"{name:40} {t['local']:9.3f} {t['s3']:9.3f} {mb / t['local']:11.0f} {mb / t['s3']:9.0f} "
                      f"{t['s3'] / t['local']:9.1f}x")
            print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
