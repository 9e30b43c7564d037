"""`extract --ray`: the shards of one extraction run as Ray tasks, one model per worker (and GPU).

`extract_ray(lake, settings, workers=N)` submits shards 0/N .. N-1/N of the run
(`extract.run.Shard`) as N Ray tasks; each loads the model once on its worker (`num_gpus` GPUs
each; Ray sets CUDA_VISIBLE_DEVICES, so `--device auto` finds them) and runs `extract_run` for its
shard against the same lake. Everything that makes shards safe is in `extract.run`: fixed chunk
file names written once per run, per-shard locks, and the last shard to commit marking the run
'complete'. A shard whose worker dies (kill -9, a lost node) or raises anything but an emolake
error is retried by Ray (`max_retries`); the retry resumes the shard, writing only the chunks the
lake does not hold, so nothing is duplicated. Emolake errors (bad input, a lock held by another
process) are returned, not raised, so Ray does not retry them, and re-raised here.

Where: a running cluster when `address` or `RAY_ADDRESS` names one (the lake must then be a path
every worker sees, e.g. a shared file system, and emolake installed on every node); else a local
Ray instance on 127.0.0.1 without dashboard, sized for the workers, stopped again at the end. An
instance that this process already started (`ray.init` in a notebook or a test) is used as it is.
The driver's `EMOLAKE_*` environment variables are passed to the workers (cache folder, fault
injection). Progress: each shard reports to a small actor that the driver reads twice a second.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from emolake.extract.run import ExtractSettings, Shard, extract_run, read_manifest
from emolake.warehouse.errors import BadInputError, EmolakeError
from emolake.warehouse.lake import Lake

ADDRESS_ENV = "RAY_ADDRESS"
MAX_RETRIES = 3  # attempts after the first for a shard whose worker died or raised
POLL_SECONDS = 0.5
# Test hook: "<shard>:<batch>:<marker file>" SIGKILLs the worker of that shard after that many
# batches, once per marker file (the retried attempt finds the file and runs through).
KILL_ONCE_ENV = "EMOLAKE_RAY_KILL_ONCE"


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise BadInputError("--ray needs the ray package", column="ray",
                            expected="pip install 'emolake[ray]' (or pip install ray)", found="ray not installed") from exc
    return ray


class _Progress:
    """Per shard (total, done) prompts; a retried shard starts its count again from what the lake holds."""

    def __init__(self) -> None:
        self.shards: dict[int, list[int]] = {}

    def start(self, shard: int, total: int, done: int) -> None:
        self.shards[shard] = [total, done]

    def advance(self, shard: int, n: int) -> None:
        self.shards.setdefault(shard, [0, 0])[1] += n

    def snapshot(self) -> tuple[int, int, int]:
        """(total prompts of the shards started, prompts done, shards started)."""
        return (sum(t for t, _ in self.shards.values()), sum(d for _, d in self.shards.values()), len(self.shards))


def _kill_hook(shard: Shard) -> Callable[[], None]:
    """The `KILL_ONCE_ENV` test hook for this shard (a no-op unless the variable names it)."""
    spec = os.environ.get(KILL_ONCE_ENV, "")
    parts = spec.split(":", 2)
    if len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) != shard.index:
        return lambda: None
    after, marker = int(parts[1]), parts[2]
    batches = [0]

    def hook() -> None:
        batches[0] += 1
        if batches[0] == after:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def run_shard(root: str, settings: ExtractSettings, progress, num_cpus: float) -> dict | EmolakeError:
    """One shard on a Ray worker: the summary, or the emolake error (returned, so Ray does not retry it)."""
    import torch

    torch.set_num_threads(max(1, int(num_cpus)))
    shard = settings.shard
    kill = _kill_hook(shard)

    def on_start(total: int, done: int) -> None:
        progress.start.remote(shard.index, total, done)

    def on_progress(n: int) -> None:
        progress.advance.remote(shard.index, n)
        kill()

    try:
        return extract_run(Lake(root), settings, on_start=on_start, on_progress=on_progress,
                           command=f"extract --ray --shard {shard}")
    except EmolakeError as exc:
        return exc


def extract_ray(
    lake: Lake,
    settings: ExtractSettings,
    workers: int,
    num_gpus: float = 0,
    num_cpus: float = 1,
    address: str | None = None,
    max_retries: int = MAX_RETRIES,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run `settings`' extraction as `workers` shards on Ray; returns the run's summary.

    `on_progress(total, done)` (prompts of the shards started so far) twice a second while they run.
    """
    if workers < 1:
        raise BadInputError("--workers must be at least 1", column="workers", found=workers)
    if not settings.shard.whole:
        raise BadInputError("--ray runs every shard itself; drop --shard", column="shard", found=str(settings.shard))
    lake.require()
    ray = _ray()
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get(ADDRESS_ENV) or None
        if address:
            ray.init(address=address, log_to_driver=True)
        else:  # a local instance for this run, loopback only
            ray.init(address="local", num_cpus=max(1, int(workers * max(num_cpus, 1))), include_dashboard=False,
                     _node_ip_address="127.0.0.1", log_to_driver=True)
        started = True
    try:
        return _run(ray, lake, settings, workers, num_gpus, num_cpus, max_retries, on_progress)
    finally:
        if started:
            ray.shutdown()


def _run(ray, lake: Lake, settings: ExtractSettings, workers: int, num_gpus: float, num_cpus: float,
         max_retries: int, on_progress: Callable[[int, int], None] | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k.startswith("EMOLAKE_")}
    progress = ray.remote(num_cpus=0)(_Progress).remote()
    task = ray.remote(run_shard).options(
        num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries, retry_exceptions=True,
        runtime_env={"env_vars": env} if env else None)
    root = str(Path(lake.root))
    refs = {task.remote(root, replace(settings, shard=Shard(i, workers)), progress, num_cpus): i
            for i in range(workers)}
    pending = list(refs)
    results: dict[int, dict | EmolakeError] = {}
    failures: dict[int, BaseException] = {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
        for ref in ready:
            try:
                results[refs[ref]] = ray.get(ref)
            except Exception as exc:  # retries exhausted (ray.exceptions.RayTaskError, WorkerCrashedError, ...)
                failures[refs[ref]] = exc
        if on_progress:
            total, done, _ = ray.get(progress.snapshot.remote())
            on_progress(total, done)
    errors = {i: r for i, r in results.items() if isinstance(r, EmolakeError)}
    if errors:
        raise errors[min(errors)]
    if failures:
        i = min(failures)
        raise EmolakeError(f"shard {i}/{workers} failed after {max_retries} retries: {failures[i]} "
                           "(rerun the same command: finished chunks are kept)")
    summaries = [results[i] for i in range(workers)]
    first = summaries[0]
    manifest = read_manifest(lake, first["run_id"])
    written = sum(s.get("chunks_written", 0) for s in summaries)
    status = manifest["status"] if manifest else "unknown"
    summary = {k: first[k] for k in ("run_id", "n_stimuli", "chunks", "n_layers", "d_ff", "n_neurons", "model",
                                     "position", "neuron") if k in first}
    summary.update(status=status, workers=workers, chunks_written=written,
                   shards={s.get("shard", f"{i}/{workers}"): s["status"] for i, s in enumerate(summaries)})
    if all(s["status"] == "already complete" for s in summaries):
        summary.update(status="already complete", message=f"run {first['run_id']} is already complete: nothing to do")
    return summary
