"""Reading zoo pretraining checkpoints (Lightning `.ckpt` files), and the run folder that holds them:
its lock, and the checks before a run writes into it or resumes from it."""

import fcntl
import os
import socket
import zipfile
from pathlib import Path

import torch
import yaml
from omegaconf import OmegaConf

from zoo.arguments import check_checkpoint_file
from zoo.atomic import writing_error
from zoo.config import PretrainConfig
from zoo.errors import ZooError
from zoo.nn.legacy import method_state
from zoo.registry import get_method

BACKBONE_PREFIX = "backbone."


def read_checkpoint(path):
    """Return `{"config": dict, "backbone": state_dict, "state_dict": ..., "num_classes": int, "world_size": int}`.

    The backbone state dict has the timm model's own key names (the
    `backbone.` prefix stripped); `config` is the resolved run config as stored;
    `state_dict` is the method's (`zoo.methods.base.Method`: the harness's "method." prefix stripped, no
    probe), under today's names (`zoo.nn.legacy`: checkpoints of earlier layouts load too).
    """
    path = Path(path)
    check_checkpoint_file(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a non-checkpoint file
        raise ZooError(f"cannot read checkpoint {path}: {type(err).__name__} (is it a file written by main_pretrain.py?)") from err
    config = ckpt.get("hyper_parameters", {}).get("cfg") if isinstance(ckpt, dict) else None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if config is None or state is None:
        raise ZooError(f"{path} is not a zoo pretraining checkpoint (no 'cfg' hyper-parameters or no state_dict)")
    state = method_state(state)
    backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    if not backbone:
        raise ZooError(f"{path} holds no backbone weights (no '{BACKBONE_PREFIX}*' keys)")
    hparams = ckpt["hyper_parameters"]
    return {"config": config, "backbone": backbone, "state_dict": state, "num_classes": hparams.get("num_classes"),
            "world_size": hparams.get("world_size") or 1}


def complete_config(config):
    """A stored run config on top of today's schema, so keys added since it was written take
    their defaults (a DictConfig in struct mode)."""
    schema = OmegaConf.structured(PretrainConfig)
    schema.method = OmegaConf.structured(get_method(config["method"]["name"]).Config)
    stored = {key: value for key, value in config.items() if key != "run_dir"}  # run_dir's default needs Hydra
    merged = OmegaConf.merge(schema, stored)
    merged.run_dir = config.get("run_dir", "")
    return merged


def check_run_folder(run_dir, method, backbone):
    """A run folder that holds another method's (or backbone's) run is refused before anything in it is
    overwritten (resuming from it would fail on the weights' shapes)."""
    config_path = Path(run_dir) / "config.yaml"
    if not config_path.is_file():
        return
    try:
        stored = yaml.safe_load(config_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ZooError(f"cannot read {config_path} ({err}): repair or delete it, or pass another run_dir=...") from None
    theirs = ((stored.get("method") or {}).get("name"), (stored.get("backbone") or {}).get("name"))
    if theirs != (method, backbone):
        raise ZooError(
            f"run folder {run_dir} holds a {theirs[0]} run with backbone {theirs[1]} (its config.yaml), not {method} with "
            f"{backbone}: pass another run_dir=... (or delete that folder to start over)"
        )


def check_writable_folder(folder):
    """The folder, or its nearest existing parent, is a folder this process may write: checked from the
    arguments, before Hydra creates the run folder and its log there."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        raise ZooError(f"cannot write {folder}: {path} is a file, not a folder: pass another run_dir=...")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ZooError(f"cannot write {folder}: {path} is read-only: make it writable, or pass another run_dir=...")


class RunFolderLock:
    """An exclusive lock on a run folder (`run_dir/.lock`, flock): a second process on the folder is refused
    with one line naming the holder. The kernel drops the lock when its process ends, however it ends, so a
    lock file left by a dead process is simply taken over. Use as a context manager."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / ".lock"
        self.file = None

    def __enter__(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "a+")
        except OSError as err:
            raise writing_error(self.path.parent, err) from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise ZooError(f"run folder {self.path.parent} is in use by {holder}: wait for it to finish, or pass another "
                           "run_dir=...") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.close()  # releases the lock (the file stays: removing it would race with a waiting process)


def check_resumable(path):
    """A checkpoint to resume from is a complete archive (torch.save's zip), checked from its directory at the
    end without reading the weights: a truncated or overwritten file is named with the fix."""
    try:
        with zipfile.ZipFile(path) as archive:
            complete = any(name.endswith("data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        complete = False
    if not complete:
        raise ZooError(f"cannot resume from {path}: the file is truncated or corrupt; delete it to start the run over "
                       "(or restore it from a copy)")
