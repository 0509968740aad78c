"""Where a pretraining run's metrics go: metrics.csv always, and W&B and / or TensorBoard when
`logger` names them (`logger=wandb`, `logger=tensorboard`, `logger=[wandb,tensorboard]`).

Every logger receives the same metrics (the loss and its parts, the online probe, k-NN, spectrum
statistics); the trackers also get each validation's eigenvalue spectra as histograms and the
spectrum.png figure as an image. A W&B run's id is kept in the run folder (`wandb_id`), so a
resumed run continues the same W&B run; `WANDB_MODE=offline` runs without a network.
"""

import csv
import secrets
from pathlib import Path

import numpy as np
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from zoo.atomic import atomic_write_bytes
from zoo.config import chosen_trackers

WANDB_ID_FILE = "wandb_id"


class _KeepingWriter(ExperimentWriter):
    """Appends to an existing metrics.csv instead of deleting it."""

    def _check_log_dir_exists(self):
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger deletes metrics.csv when its folder is not empty, so a resumed
    run would lose its history; this one keeps the rows and appends."""

    @property
    def experiment(self):
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(log_dir=self.log_dir)
        return self._experiment


def wandb_run_id(run_dir, is_global_zero):
    """The W&B run id of this run folder: the one kept there, or a new one written there (by rank 0)."""
    path = Path(run_dir) / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    if not is_global_zero:
        return None  # only rank 0 talks to W&B
    run_id = secrets.token_hex(6)  # W&B ids: letters and digits
    atomic_write_bytes(path, run_id.encode())
    return run_id


def run_loggers(cfg, run_dir):
    """The Lightning loggers of a pretraining run writing to `run_dir`: CSV first, then the trackers."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    run_dir = Path(run_dir)
    loggers = [ResumableCSVLogger(run_dir, name="", version="")]
    trackers = chosen_trackers(cfg.logger)
    if "tensorboard" in trackers:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version="", default_hp_metric=False))
    if "wandb" in trackers:
        from lightning.pytorch.loggers import WandbLogger

        loggers.append(WandbLogger(name=run_dir.name, save_dir=run_dir, id=wandb_run_id(run_dir, rank_zero_only.rank == 0),
                                   resume="allow", project=cfg.wandb.project, entity=cfg.wandb.entity,
                                   tags=list(cfg.wandb.tags) or None))
    return loggers


def log_spectra(loggers, spectra, figure_path, step):
    """Each validation's eigenvalue spectra (`{"backbone": eigenvalues, ...}`) as histograms of their
    log10 normalised values, and the spectrum figure as an image, to every tracker that has them."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    logged = {key: np.log10(np.clip(np.asarray(eigs) / max(np.sum(eigs), 1e-12), 1e-12, None)) for key, eigs in spectra.items()}
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment
            for key, values in logged.items():
                writer.add_histogram(f"spectrum/{key}", values, step)
            writer.add_image("spectrum", figure_pixels(figure_path), step, dataformats="HWC")
        elif isinstance(logger, WandbLogger):
            import wandb

            logger.experiment.log({**{f"spectrum/{key}": wandb.Histogram(values) for key, values in logged.items()},
                                   "spectrum": wandb.Image(str(figure_path)), "trainer/global_step": step})


def figure_pixels(path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
