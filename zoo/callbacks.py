"""Run outputs that Lightning does not write the way we need: atomic
checkpoints, a metrics.csv that survives a resume, and the eigenvalue-spectrum figure."""

import csv
import io
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.plugins.io import TorchCheckpointIO


def atomic_write_bytes(path, data):
    """Write `data` next to `path`, fsync, then rename over it: readers see the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's own save goes through a temp file in /tmp and shutil.move, which is
    a copy (not atomic) when /tmp is another file system; this one renames in place."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):

        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())


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


def checkpoint_callbacks(run_dir, every_n_steps, keep_every_n_epochs=0):
    """last.ckpt every `every_n_steps` steps and every epoch; a kept copy every n epochs."""
    directory = Path(run_dir) / "checkpoints"
    common = {"dirpath": directory, "save_last": True, "enable_version_counter": False}
    callbacks = [
        ModelCheckpoint(every_n_train_steps=every_n_steps, save_top_k=0, **common),
        ModelCheckpoint(every_n_epochs=1, save_top_k=0, save_on_train_epoch_end=True, **common),
    ]
    if keep_every_n_epochs > 0:
        callbacks.append(
            ModelCheckpoint(dirpath=directory, filename="epoch{epoch:04d}", auto_insert_metric_name=False,
                            every_n_epochs=keep_every_n_epochs, save_top_k=-1, enable_version_counter=False)
        )
    return callbacks


SPECTRA = ("backbone", "projector", "transformed")


class SpectrumPlot(L.Callback):
    """After each validation, redraws `spectrum.png`: covariance eigenvalues (log scale) of
    backbone features, projector outputs and (whitening methods) the transformed output on
    the validation set, one line per validation epoch."""

    def __init__(self, path):
        self.path = Path(path)
        self.history = []  # (epoch, {"backbone": [...], "projector": [...]})

    def on_validation_end(self, trainer, pl_module):
        result = getattr(pl_module, "last_eval", {})
        if "backbone_eigenvalues" not in result or trainer.sanity_checking:
            return
        entry = {key: result[f"{key}_eigenvalues"].tolist() for key in SPECTRA if f"{key}_eigenvalues" in result}
        self.history.append((trainer.current_epoch, entry))
        if trainer.is_global_zero:
            plot_spectra(self.history, self.path, title=f"{pl_module.name}: covariance eigenvalues")
            from zoo.loggers import log_spectra  # the trackers' copies (zoo.loggers imports this module)

            log_spectra(trainer.loggers, entry, self.path, trainer.global_step)

    def state_dict(self):
        return {"history": self.history}

    def load_state_dict(self, state):
        self.history = [tuple(item) for item in state.get("history", [])]


class EmbeddingPlot(L.Callback):
    """At the end of a run, draws `embedding.png`: a 2-D t-SNE of the backbone's validation features
    coloured by class (zoo/eval/embedding.py), from the validation that evaluated the final weights.

    The features are the ones the online k-NN gathers: this callback's on_validation_epoch_end runs
    before the module's, which concatenates and then frees them. Each validation keeps a random
    subset of this process's share on the CPU; the picture is drawn once, when fit ends on weights
    that validation saw, or after the separate validation of the final weights (`trainer.validate`)."""

    def __init__(self, path, max_points=None):
        from zoo.eval.embedding import MAX_POINTS

        self.path = Path(path)
        self.max_points = max_points or MAX_POINTS
        self.latest = None  # (global step, features, labels) of the latest validation

    def on_validation_epoch_end(self, trainer, pl_module):
        from zoo.eval.embedding import subsample

        store = getattr(pl_module, "_val_outputs", {}).get(pl_module.evaluated_loader)  # the validation images
        if trainer.sanity_checking or not store or not store["features"]:
            return
        features, labels = subsample(torch.cat(store["features"]), torch.cat(store["labels"]), self.max_points)
        self.latest = (trainer.global_step, features, labels)

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "validate":  # the run's separate evaluation of its final weights
            self.draw(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module):
        if self.latest is not None and self.latest[0] == trainer.global_step:
            self.draw(trainer, pl_module)

    def draw(self, trainer, pl_module):
        from zoo.eval.embedding import plot_embedding

        if trainer.is_global_zero and self.latest is not None:
            step, features, labels = self.latest
            plot_embedding(features, labels, self.path, f"{pl_module.name}, backbone features at step {step}")


def plot_spectra(history, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [key for key in SPECTRA if key in history[-1][1]]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    axes = axes[0]
    colours = plt.cm.viridis([i / max(len(history) - 1, 1) for i in range(len(history))])
    for ax, key in zip(axes, keys):
        for colour, (epoch, spectra) in zip(colours, history):
            if key not in spectra:
                continue
            eigs = torch.tensor(spectra[key]).clamp_min(1e-12)
            ax.semilogy(range(1, len(eigs) + 1), eigs / eigs.sum(), color=colour, label=f"epoch {epoch}")
        ax.set_title(f"{key} ({len(history[-1][1][key])} eigenvalues)")
        ax.set_xlabel("eigenvalue index")
        ax.set_ylabel("normalised eigenvalue")
    axes[-1].legend(fontsize=7, loc="lower left", ncol=2)
    fig.suptitle(title)
    fig.tight_layout()

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
