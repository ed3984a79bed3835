"""The Dask clusters the grid runs on (Dask and dask-jobqueue are optional:
``pip install "mvbook[cluster]"``; imported here only when a cluster is asked for):

* ``local``: a cluster of worker processes on this machine, scheduler, workers
  and dashboard on 127.0.0.1 only; one worker per GPU (worker i sees only its
  GPU through ``CUDA_VISIBLE_DEVICES`` and declares ``GPU=1``), or N CPU workers;
* ``dask``: an existing cluster, by its scheduler's address (its workers
  declare a ``GPU`` resource; ``tls://`` addresses use Dask's security config);
* ``slurm``: dask-jobqueue's ``SLURMCluster`` configured by
  ``~/.config/dask/jobqueue.yaml``, adapting between 0 and N worker jobs.

Chapter: *Running the grid on a cluster*.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time

from ..errors import ConfigError

__all__ = ["ENGINES", "THREAD_VARIABLES", "thread_env", "visible_gpus", "local_cluster", "slurm_cluster", "open_engine",
           "check_engine", "SlurmWatch"]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
ENGINES = ("serial", "local", "dask", "slurm")


def check_engine(engine: str, scheduler_address=None, jobs=None, threads: int = 1, workers=None, warn=None) -> None:
    """Refuse, before any work, an engine that cannot start: an unknown one, a
    missing optional package (Dask; dask-jobqueue for ``slurm``), ``dask``
    without a scheduler's address, ``slurm`` without ``jobs`` or without a
    jobqueue profile (cores and memory per job), ``threads`` or ``workers`` < 1.
    More ``threads`` than this machine has cores is a warning (``warn``, default
    stderr): a cell may run elsewhere, but here it is many times slower."""
    import importlib.util
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    if not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"--threads {threads}: a cell needs at least one thread")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers {workers}: a cluster needs at least one worker (leave it out for the "
                          "default: one per GPU, else one per core)")
    cores = os.cpu_count() or 1
    if engine in ("serial", "local") and threads > cores:
        (warn or (lambda m: print(m, file=sys.stderr, flush=True)))(
            f"warning: --threads {threads} is more than the {cores} cores of this machine: each cell's math "
            f"libraries then compete for the cores and run many times slower; --threads {cores} or fewer is faster")
    wanted = {"serial": (), "local": ("distributed",), "dask": ("distributed",),
              "slurm": ("distributed", "dask_jobqueue")}[engine]
    missing = [m for m in wanted if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"--engine {engine} needs {' and '.join(m.replace('_', '-') for m in missing)}: "
                          "pip install \"mvbook[cluster]\" (dask[distributed], dask-jobqueue)")
    if engine == "dask" and not scheduler_address:
        raise ConfigError("--engine dask needs --scheduler-address (tcp://host:8786 or tls://…)")
    if engine == "slurm" and not jobs:
        raise ConfigError("--engine slurm needs --jobs N (the most worker jobs at once)")
    if engine == "slurm":
        import dask
        unset = [k for k in ("cores", "memory") if not dask.config.get(f"jobqueue.slurm.{k}", None)]
        if unset:
            raise ConfigError(f"--engine slurm needs a dask-jobqueue profile: jobqueue.slurm.{' and '.join(unset)} "
                              "not set (the cores and memory of each worker job); set them in "
                              "~/.config/dask/jobqueue.yaml or as DASK_JOBQUEUE__SLURM__CORES and "
                              "DASK_JOBQUEUE__SLURM__MEMORY")


def thread_env(threads: int) -> dict:
    """Environment variables that cap the math libraries at ``threads`` threads."""
    return {v: str(threads) for v in THREAD_VARIABLES}


def visible_gpus() -> list:
    """GPU ids this process may use: ``$CUDA_VISIBLE_DEVICES`` when set, else
    those ``nvidia-smi`` lists (no CUDA context is made in the driver)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip().isdigit()]


def local_cluster(workers=None, gpus_per_cell: int = 1, gpus=None, threads: int = 1, resources=None,
                  dashboard_address: str = "127.0.0.1:8787"):
    """A cluster on this machine, everything on 127.0.0.1. With GPUs (``gpus``,
    default :func:`visible_gpus`) and ``gpus_per_cell`` > 0: one worker per
    ``gpus_per_cell`` GPUs (``workers`` of them, default as many as fit), each
    seeing only its own through ``CUDA_VISIBLE_DEVICES`` and declaring
    ``GPU=gpus_per_cell``; else ``workers`` CPU workers (default one per core
    / ``threads``). Each worker runs one cell at a time, its math libraries
    capped at ``threads`` threads; ``resources`` overrides what workers declare."""
    from distributed import Nanny, Scheduler, SpecCluster
    gpus = visible_gpus() if gpus is None else list(gpus)
    groups = []
    if gpus_per_cell:
        groups = [gpus[i:i + gpus_per_cell] for i in range(0, len(gpus) - gpus_per_cell + 1, gpus_per_cell)]
        if not groups and resources is None:
            raise ConfigError(f"--gpus-per-cell {gpus_per_cell}, but {len(gpus)} GPU(s) visible; "
                              "--gpus-per-cell 0 runs CPU workers")
    n = workers or len(groups) or max(1, (os.cpu_count() or 1) // threads)
    spec = {}
    for i in range(n):
        env = thread_env(threads)
        if groups:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(groups[i % len(groups)])
        declared = resources if resources is not None else ({"GPU": gpus_per_cell} if groups else None)
        spec[f"worker-{i}"] = {"cls": Nanny, "options": {
            "nthreads": 1, "host": "127.0.0.1", "env": env, "resources": declared, "memory_limit": 0}}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": dashboard_address}}
    return SpecCluster(workers=spec, scheduler=scheduler, name="mvbook-local")


def _declared_gpus(worker_args) -> int:
    """The ``GPU=n`` a worker command line declares (``--resources GPU=1``), or 0."""
    m = re.search(r"\bGPU=(\d+)", " ".join(map(str, worker_args or ())))
    return int(m.group(1)) if m else 0


def slurm_cluster(jobs: int, **options):
    """dask-jobqueue's ``SLURMCluster`` (``options`` over
    ``~/.config/dask/jobqueue.yaml``), adapting between 0 and ``jobs`` worker
    jobs. Cells are declared long (an unknown task is taken to last an hour),
    so the scheduler asks for every job it may at once, and idle jobs are let go.
    The cluster's ``jobs`` (worker name → SLURM job id) and ``refused`` (sbatch's
    messages) are what :class:`SlurmWatch` reads."""
    import dask
    from dask_jobqueue import SLURMCluster
    from dask_jobqueue.slurm import SLURMJob
    from distributed.core import Status
    started, refused = {}, []

    class WatchedJob(SLURMJob):
        async def start(self):
            try:
                await super().start()
            except Exception as e:          # dask-jobqueue only logs it, and adapt asks again and again
                refused.append(_sbatch_message(str(e)))
                self.status = Status.failed     # so that the cluster closes without complaint
                raise
            started[self.name] = self.job_id

    with dask.config.set({"distributed.scheduler.unknown-task-duration": "1h"}):
        # dask-jobqueue hints job_cls as a Job where it takes a Job class; jobs and refused are ours
        cluster = SLURMCluster(job_cls=WatchedJob, **options)  # type: ignore[arg-type]
    cluster.jobs, cluster.refused = started, refused  # type: ignore[attr-defined]
    cluster.adapt(minimum_jobs=0, maximum_jobs=jobs)
    return cluster


def _sbatch_message(error: str) -> str:
    """The scheduler's own words in a failed submission's error (its stderr), on one line."""
    text = error.split("stderr:", 1)[-1]
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or error.strip()


def _queued_jobs() -> set | None:
    """The ids of the jobs SLURM lists now (``squeue``), or None when it cannot say."""
    try:
        out = subprocess.run(["squeue", "-h", "-o", "%i", "-u", os.environ.get("USER", "")],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode:
        return None
    return {line.split()[0] for line in out.stdout.splitlines() if line.split() and line.split()[0].isdigit()}


class SlurmWatch:
    """What makes a SLURM grid unable to go on, checked while it waits: a
    worker job SLURM refused (the scheduler's message), or a job that ended
    before its worker ever connected (its worker died at once). Called with no
    argument: that problem as a sentence, or None."""

    def __init__(self, cluster, client):
        self.cluster, self.client, self.seen = cluster, client, set()

    def __call__(self) -> str | None:
        if self.cluster.refused:
            return (f"SLURM refused the worker job: {self.cluster.refused[-1]}; fix the job settings "
                    "(jobqueue.yaml: queue, account, memory, job-extra-directives) and run the grid again")
        self.seen |= {w.get("name") for w in self.client.scheduler_info().get("workers", {}).values()}
        waiting = {name: job for name, job in dict(self.cluster.jobs).items() if name not in self.seen}
        if not waiting:
            return None
        queued = _queued_jobs()
        gone = sorted(job for job in waiting.values() if queued is not None and job not in queued)
        if gone:
            return (f"SLURM job {gone[0]} ended before its worker connected to the scheduler (its worker died at "
                    f"once): its log (slurm-{gone[0]}.out, or in jobqueue.yaml's log-directory) says why")
        return None


def _worker_gpus(client) -> int:
    """The largest ``GPU`` resource a worker of ``client``'s cluster declares now."""
    workers = client.scheduler_info().get("workers", {}).values()
    return int(max((w.get("resources", {}).get("GPU", 0) for w in workers), default=0))


@contextlib.contextmanager
def open_engine(engine: str, *, workers=None, scheduler_address=None, jobs=None, gpus_per_cell=None, threads=1,
                log=print, dashboard_address="127.0.0.1:8787", slurm_options=None):
    """(client, gpus per cell, watch) of a started ``engine``; closes what it
    started. ``watch()``: why the grid cannot go on (:class:`SlurmWatch`), or None."""
    import dask
    from distributed import Client
    t = time.time()
    watch = None
    with contextlib.ExitStack() as stack:
        if engine == "local":
            gpc = gpus_per_cell if gpus_per_cell is not None else (1 if visible_gpus() else 0)
            cluster = stack.enter_context(local_cluster(workers, gpc, threads=threads,
                                                        dashboard_address=dashboard_address))
            client = stack.enter_context(Client(cluster))
            client.wait_for_workers(len(cluster.worker_spec), timeout=300)
        elif engine == "dask":
            client = stack.enter_context(Client(scheduler_address, timeout="60s"))
            gpc = gpus_per_cell if gpus_per_cell is not None else (1 if _worker_gpus(client) else 0)
        elif engine == "slurm":
            slurm_options = dict(slurm_options or {})
            extra = slurm_options.get("worker_extra_args", dask.config.get("jobqueue.slurm.worker-extra-args", []))
            gpc = gpus_per_cell if gpus_per_cell is not None else min(1, _declared_gpus(extra))
            cluster = stack.enter_context(slurm_cluster(jobs, **slurm_options))
            client = stack.enter_context(Client(cluster))
            watch = SlurmWatch(cluster, client)
        else:
            raise ConfigError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
        n = len(client.scheduler_info().get("workers", {}))
        log(f"{engine} engine: scheduler {client.scheduler.address}, {n} worker(s) up, "
            f"started in {time.time() - t:.1f} s; {gpc} GPU(s) per cell")
        dash = client.scheduler_info().get("services", {}).get("dashboard")
        if dash:
            log(f"dashboard: {client.dashboard_link}")
        yield client, gpc, watch or (lambda: None)
