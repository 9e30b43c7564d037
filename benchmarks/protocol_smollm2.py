"""The study's protocol end to end on the bundled SmolLM2-135M-Instruct (docs/protocols/smollm2-cpu.toml):
a fresh lake, the embedded situations and the study's human data ingested, then `run_protocol`, as
`emolake protocol --config ...` runs it. Prints the time of every step, the load average before and
after (the machine is shared), and the filled tables' row counts.

    PYTHONPATH=<folder holding emolake> python benchmarks/protocol_smollm2.py [--config FILE] [--threads 1] [--lake DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from emolake.extract.protocol import ProtocolRun, load_protocol  # noqa: E402
from emolake.warehouse.database import query  # noqa: E402
from emolake.warehouse.lake import Lake  # noqa: E402


def ingest_embedded(lake: Lake) -> None:
    from click.testing import CliRunner

    from emolake.cli import cli

    embedded = REPO / "ingest" / "embedded"
    for argv in (["init"],
                 ["ingest", "stimuli", str(embedded / "situations.csv"), "--layout", "table", "--text-col", "text",
                  "--label-col", "emotion", "--split-col", "split", "--id-col", "stimulus_id",
                  "--dataset", "emolake-situations"],
                 ["ingest", "attributes", str(embedded / "study_attributes.csv"), "--study", "li2024"],
                 ["ingest", "similarity", str(embedded / "study_similarity.csv"), "--study", "li2024"]):
        result = CliRunner().invoke(cli, ["--lake", str(lake.root), *argv])
        if result.exit_code:
            raise SystemExit(f"{' '.join(argv)}: {result.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "docs" / "protocols" / "smollm2-cpu.toml"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lake", default=None, help="lake folder (default: a fresh temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_protocol(args.config)
    root = Path(args.lake) if args.lake else Path(tempfile.mkdtemp(prefix="emolake-protocol-")) / "lake"
    lake = Lake(root)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} threads; load average before: {os.getloadavg()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    ingest_embedded(lake)
    began, cpu = time.perf_counter(), time.process_time()
    runner = ProtocolRun(lake, config, echo=print, progress=False)
    runner.run()
    total, total_cpu = time.perf_counter() - began, time.process_time() - cpu
    print(f"load average after: {os.getloadavg()}")
    print("\n| step | status | wall s | CPU s |\n|---|---|---|---|")
    for result in runner.results:
        print(f"| {result.step} | {result.status} | {result.seconds:.1f} | {result.cpu_seconds:.1f} |")
    print(f"| total (with loading the model) | | {total:.1f} | {total_cpu:.1f} |")
    run_set = config["protocol"]["name"]
    for name, sql in (("prompts", f"SELECT count(*) FROM prompts WHERE inference_id = '{runner.inference_id}'"),
                      ("runs", f"SELECT count(*) FROM runs WHERE run_set = '{run_set}'"),
                      ("searchlight", f"SELECT count(*) FROM searchlight WHERE run_set = '{run_set}'"),
                      ("attribute_neurons", f"SELECT count(*) FROM attribute_neurons WHERE run_set = '{run_set}'"),
                      ("ablation_summary", f"SELECT count(*) FROM ablation_summary WHERE run_set = '{run_set}'"),
                      ("min n_replicates", f"SELECT min(n_replicates) FROM ablation_summary WHERE run_set = '{run_set}'"),
                      ("importance_link", f"SELECT count(*) FROM importance_link WHERE run_set = '{run_set}'")):
        print(f"{name}: {query(lake, sql).column(0)[0].as_py()}")
    for key, value in runner.final_summary().items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
