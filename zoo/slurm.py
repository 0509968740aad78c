"""A table's steps as jobs through Hydra's submitit launcher (hydra-submitit-launcher, the `slurm` extra).

`hydra/launcher=submitit_slurm` with `hydra.launcher.KEY=VALUE` (partition, account, qos,
timeout_min, cpus_per_task, mem_gb, setup, additional_parameters, max_num_timeout, ...) is composed
by Hydra into the plugin's SlurmQueueConf; every unfinished step becomes one submitit job with those
settings and its recipe's GPUs and nodes (one task per GPU: Lightning reads its rank from SLURM), and
each step of a chain depends on the one before (`--dependency=afterok:<id>`). A job that reaches its
time limit is requeued by submitit (`max_num_timeout` times) and resumes where it stopped, as every
step does when run again. `hydra/launcher=submitit_local` runs the steps through submitit's local
executor, one after the other.
"""

import json
import math
import os
import subprocess
from pathlib import Path

from omegaconf import OmegaConf

from zoo.config import one_line_config_errors
from zoo.errors import ZooError

try:
    from submitit.helpers import Checkpointable
except ImportError:  # the `slurm` extra is not installed: launcher_config says so in one line
    Checkpointable = object

DEFAULT_REQUEUES = 20  # timeouts a step may be requeued after: every step resumes from where it stopped
MAX_TIMEOUT_MIN = 72 * 60  # a job's default time: its estimate x 1.5, at least an hour, at most this
ACTIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED")


def launcher_config(launcher_overrides, root):
    """hydra.launcher as Hydra composes it for the command's `hydra/launcher=...` and `hydra.launcher.*`."""
    try:
        import hydra_plugins.hydra_submitit_launcher  # noqa: F401
    except ImportError:
        raise ZooError("hydra/launcher=submitit_* needs hydra-submitit-launcher: pip install -e '.[slurm]'") from None
    from hydra import compose, initialize_config_module

    ours = [f"hydra.launcher.submitit_folder={Path(root) / '.submitit' / '%j'}", "hydra.launcher.name=zoo"]
    chosen = [o for o in launcher_overrides if o.startswith("hydra/launcher=")]
    with one_line_config_errors(), initialize_config_module("zoo.configs.tables", version_base="1.3"):
        cfg = compose("launcher", overrides=[*chosen, *ours, *(o for o in launcher_overrides if o not in chosen)],
                      return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def cluster_of(launcher):
    return "slurm" if launcher["_target_"].endswith("SlurmLauncher") else "local"


def executor_for(launcher, step, given, dependency=None):
    """A submitit executor with the launcher's settings and the step's GPUs, nodes and tasks; the
    parameter names mapped to submitit's as the plugin's launcher maps them."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cluster = cluster_of(launcher)
    params = {k: v for k, v in launcher.items() if k not in ("_target_", "submitit_folder", "max_num_timeout")}
    params["name"] = f"zoo-{step.kind}"
    if cluster == "slurm":
        params.update(gpus_per_node=step.gpus, tasks_per_node=step.tasks_per_node, nodes=step.nodes)
        if "timeout_min" not in given:
            wall_min = step.gpu_hours / (step.gpus * step.nodes) * 60 * 1.5
            params["timeout_min"] = int(min(max(60, math.ceil(wall_min)), MAX_TIMEOUT_MIN))
        if dependency:
            params["additional_parameters"] = {**params.get("additional_parameters", {}), "dependency": f"afterok:{dependency}"}
    base = set(BaseQueueConf.__dataclass_fields__)
    params = {k if k in base else f"{cluster}_{k}": v for k, v in params.items()}
    init = {}
    if cluster == "slurm":
        init["slurm_max_num_timeout"] = launcher["max_num_timeout"] if "max_num_timeout" in given else DEFAULT_REQUEUES
    try:
        executor = submitit.AutoExecutor(folder=launcher["submitit_folder"], cluster=cluster, **init)
    except RuntimeError as err:  # submitit finds no srun
        raise ZooError(f"hydra/launcher=submitit_slurm: {err} (run it on the cluster's login node, or use "
                       "hydra/launcher=submitit_local on this machine)") from None
    executor.update_parameters(**params)
    return executor


def step_environment(step):
    """What the step's command reads to use the job's GPUs: the recipes' NUM_GPUS / NUM_NODES, run.sh's NPROC."""
    if step.kind == "detection":
        return {"NPROC": str(step.gpus)}
    return {"NUM_GPUS": str(step.gpus if step.tasks_per_node > 1 else 1), "NUM_NODES": str(step.nodes)}


class StepJob(Checkpointable):
    """One step's command as a submitit job; after a timeout submitit requeues it as it is, and the
    command resumes where it stopped."""

    def __init__(self, argv, env, cwd):
        self.argv, self.env, self.cwd = argv, env, cwd

    def __call__(self):
        code = subprocess.run(self.argv, cwd=self.cwd, env={**os.environ, **self.env}, check=False).returncode
        if code:
            raise RuntimeError(f"exit code {code}: {' '.join(self.argv)}")


def record_path(chain, step):
    return chain.run_dir / ".jobs" / f"{step.name.replace('/', '-').replace(' ', '_')}.json"


def queued_job(launcher, chain, step):
    """The id of this step's job when an earlier command submitted it and SLURM still has it queued or running."""
    import submitit

    path = record_path(chain, step)
    if not path.is_file():
        return None
    job_id = json.loads(path.read_text())["job_id"]
    state = submitit.SlurmJob(folder=launcher["submitit_folder"], job_id=job_id).state
    return job_id if state.split()[0] in ACTIVE_STATES else None


def submit_chains(all_chains, overrides, root, repo):
    """Submit every unfinished step, each to run in the folder `repo`; True when they have all finished (the local
    executor), False when they were queued on SLURM (the same command, run again once they are done, prints the table)."""
    launcher = launcher_config(overrides.launcher, root)
    given = {o.split("=", 1)[0].removeprefix("hydra.launcher.") for o in overrides.launcher if o.startswith("hydra.launcher.")}
    cluster = cluster_of(launcher)
    submitted = []
    for chain in all_chains:
        previous = None
        for step in chain.steps:
            label = f"[{chain.recipe} seed {chain.seed}] {step.name}"
            if step.is_done():
                print(f"{label}: done ({step.done}), skipped", flush=True)
                continue
            if cluster == "slurm" and (queued := queued_job(launcher, chain, step)):
                print(f"{label}: already queued as job {queued}", flush=True)
                previous = queued
                continue
            executor = executor_for(launcher, step, given, dependency=previous)
            env = step_environment(step) if cluster == "slurm" else {}  # locally: this machine's devices, as run_locally
            job = executor.submit(StepJob(step.argv, env, str(repo)))
            print(f"{label}: submitted as {cluster} job {job.job_id}: {step.command()}", flush=True)
            if cluster == "local":
                from submitit.core.utils import FailedJobError, UncompletedJobError

                try:
                    job.result()
                except (FailedJobError, UncompletedJobError):  # with the job's whole log
                    raise ZooError(f"{step.name} of {chain.recipe} (seed {chain.seed}) failed, its log: {job.paths.stderr}; "
                                   "fix it and run the same command again: finished steps are skipped") from None
                continue
            record_path(chain, step).parent.mkdir(parents=True, exist_ok=True)
            record_path(chain, step).write_text(json.dumps({"job_id": job.job_id, "command": step.command()}))
            previous = job.job_id
            submitted.append(job.job_id)
    if all(step.is_done() for chain in all_chains for step in chain.steps):
        return True
    if submitted:
        print(f"submitted {len(submitted)} jobs ({', '.join(submitted)})")
    print(f"once the jobs have finished, the same command skips every step and prints the table (or: python -m zoo.report {root})")
    return False
