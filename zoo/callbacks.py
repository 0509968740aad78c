"""What pretraining computes and writes around the harness (`zoo.train.harness.Pretrainer`): the validation
metrics (ValidationMetrics, from the harness's public `validation_output()`), atomic checkpoints and the
eigenvalue-spectrum and embedding figures; and how a run stops: on a non-finite loss or gradient
(DivergenceGuard) or a signal (StopOnSignal)."""

import io
import signal
import sys
import threading
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from zoo.atomic import atomic_write_bytes
from zoo.errors import ZooError
from zoo.loggers import log_spectra
from zoo.metrics.embedding import MAX_POINTS, plot_embedding, subsample
from zoo.metrics.health import collapse_indicator, health, lidar_of_views
from zoo.metrics.knn import knn_predict
from zoo.metrics.spectrum import attainable_eigenvalues, condition_number, covariance_eigenvalues, effective_rank
from zoo.metrics.stages import stage_measures
from zoo.nn.legacy import METHOD_PREFIX
from zoo.spectral import covariance
from zoo.train.harness import top_k_accuracy


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's own save goes through a temp file in /tmp and shutil.move, which is
    a copy (not atomic) when /tmp is another file system; this one renames in place."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):

        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())


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


def find_callback(trainer, kind):
    """The trainer's callback of class `kind` (None without one)."""
    return next((c for c in trainer.callbacks if isinstance(c, kind)), None)


def latest_metrics(trainer):
    """The latest validation's values ({} before the first, or without a ValidationMetrics callback)."""
    found = find_callback(trainer, ValidationMetrics)
    return found.latest if found is not None else {}


def method_named_parameters(pl_module):
    """The harness's (name, parameter) pairs, named as the method names them (without the harness's "method.")."""
    return ((name.removeprefix(METHOD_PREFIX), p) for name, p in pl_module.named_parameters())


class ValidationMetrics(L.Callback):
    """After each validation epoch, from the harness's `validation_output()`: online k-NN and probe accuracy
    (top-1 / top-5, without labels None), effective ranks and condition numbers of the backbone features and
    projector outputs, `output_std`, the method's transform diagnostics (whitening methods: `Method.transform`),
    the health values (`zoo.metrics.health`), each backbone stage's effective rank and RankMe
    (`zoo.metrics.stages`: stage<i>/effective_rank, stage<i>/rankme) and, given `lidar_views` (a
    `zoo.data.views.AugmentedViews`), LiDAR of the backbone features and projector outputs of those views (not
    during Lightning's sanity check). A value that cannot be computed is None, its reason printed once per run.
    Logged as val/<name> (val/knn_top1 on the progress bar); `latest` keeps them, eigenvalues included
    (the stages': `stage_eigenvalues`, with `stage_names`), and `step` the global step they evaluated."""

    def __init__(self, lidar_views=None):
        self.latest = {}
        self.step = None
        self.lidar_views = lidar_views
        self._said_missing = set()  # (metric, reason) pairs already printed: one line each per run

    def on_validation_epoch_end(self, trainer, pl_module):
        output = pl_module.validation_output()
        if output is None:
            return
        feats, labels, projections = output.features, output.labels, output.projections
        accuracies = dict.fromkeys(("knn_top1", "knn_top5", "linear_top1", "linear_top5"))  # None without labels
        if pl_module.labelled:
            num_classes = pl_module.num_classes
            known = output.bank_labels >= 0
            scores = knn_predict(output.bank_features[known], output.bank_labels[known], feats, num_classes,
                                 pl_module.knn_k, pl_module.knn_temperature)
            logits = pl_module.classifier(feats)
            top5 = min(5, num_classes)
            accuracies["knn_top1"], accuracies["knn_top5"] = (
                top_k_accuracy(scores, labels, num_classes, k).item() for k in (1, top5))
            accuracies["linear_top1"], accuracies["linear_top5"] = (
                top_k_accuracy(logits, labels, num_classes, k).item() for k in (1, top5))
        backbone_eigs, projector_eigs = covariance_eigenvalues(feats), covariance_eigenvalues(projections)
        self.latest = {
            **accuracies,
            "evaluated_images": len(feats),  # each validation image once, whatever the number of processes
            "effective_rank": effective_rank(backbone_eigs),
            "projector_effective_rank": effective_rank(projector_eigs),
            "backbone_condition_number": condition_number(backbone_eigs),
            "projector_condition_number": condition_number(projector_eigs),
            "output_std": collapse_indicator(projections).value,
            "backbone_eigenvalues": backbone_eigs.cpu(),
            "projector_eigenvalues": projector_eigs.cpu(),
        }
        self.latest.update(transform_diagnostics(pl_module.method, projections))
        self.latest.update(self.health_values(trainer, feats, projections, backbone_eigs, projector_eigs))
        stages, stage_spectra = stage_measures(output.stages)
        self.latest.update(self.reported(trainer, stages))
        self.latest.update(stage_names=[name for name, _ in output.stages], stage_eigenvalues=stage_spectra)
        if self.lidar_views is not None and not trainer.sanity_checking:
            chunks = self.lidar_views.batches(self.lidar_views.data.eval_batch_size)
            self.latest.update(self.reported(trainer, lidar_of_views(pl_module.evaluate_images, chunks)))
        self.step = trainer.global_step
        scalars = {f"val/{k}": v for k, v in self.latest.items() if isinstance(v, float)}
        if pl_module.labelled:
            pl_module.log("val/knn_top1", scalars.pop("val/knn_top1"), prog_bar=True)
        pl_module.log_dict(scalars)

    def health_values(self, trainer, feats, projections, backbone_eigs, projector_eigs):
        """`zoo.metrics.health.health` by name, None where a metric cannot be computed; its reason is printed
        once per run (a float is logged to metrics.csv, a None is not: summary.json holds null)."""
        return self.reported(trainer, health(feats, projections, backbone_eigs, projector_eigs))

    def reported(self, trainer, measures):
        """{name: Measure} -> {name: value}, the reason of a None printed once per run."""
        values = {}
        for name, (value, reason) in measures.items():
            values[name] = value
            if value is None and (name, reason) not in self._said_missing and trainer.global_rank == 0:
                self._said_missing.add((name, reason))
                print(f"warning: step {trainer.global_step}: val/{name} not computed: {reason}")
        return values


@torch.no_grad()
def transform_diagnostics(method, projections):
    """Spectrum of `method`'s transformed output on the first training-sized batch of validation
    projections, and how far its covariance (on the whitening axis) is from the identity."""
    if len(projections) < method.global_batch_size:
        return {}
    transformed = method.transform(projections[: method.global_batch_size])
    if transformed is None:
        return {}
    white, axis = transformed
    if not torch.isfinite(white).all():
        return {}  # the transform overflowed on this batch (e.g. lambda^-p of a ~0 eigenvalue): no diagnostics
    cov = covariance(white.double(), axis)
    eigs = attainable_eigenvalues(cov, observations=white.shape[-2] if axis == "batch" else white.shape[-1])
    identity = torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
    return {
        "transformed_identity_distance": float(torch.linalg.matrix_norm(cov - identity) / len(cov) ** 0.5),
        "transformed_effective_rank": effective_rank(eigs),
        "transformed_condition_number": condition_number(eigs),
        "transformed_eigenvalues": eigs.cpu(),
    }


SPECTRA = ("backbone", "projector", "transformed")


class SpectrumPlot(L.Callback):
    """After each validation, redraws `spectrum.png`: covariance eigenvalues (log scale) of
    backbone features, projector outputs and (whitening methods) the transformed output on
    the validation set, one line per validation epoch."""

    def __init__(self, path):
        self.path = Path(path)
        self.history = []  # (epoch, {"backbone": [...], "projector": [...]})

    def on_validation_end(self, trainer, pl_module):
        result = latest_metrics(trainer)
        if "backbone_eigenvalues" not in result or trainer.sanity_checking:
            return
        entry = {key: result[f"{key}_eigenvalues"].tolist() for key in SPECTRA if f"{key}_eigenvalues" in result}
        self.history.append((trainer.current_epoch, entry))
        if trainer.is_global_zero:
            plot_spectra(self.history, self.path, title=f"{pl_module.name}: covariance eigenvalues")
            log_spectra(trainer.loggers, entry, self.path, trainer.global_step)

    def state_dict(self):
        return {"history": self.history}

    def load_state_dict(self, state):
        self.history = [tuple(item) for item in state.get("history", [])]


class StageSpectraPlot(L.Callback):
    """After each validation, redraws `stage_spectra.png`: the covariance eigenvalues (log-log) of each backbone
    stage's pooled output (`zoo.metrics.stages`) on the validation images, one line per stage, of that validation."""

    def __init__(self, path):
        self.path = Path(path)

    def on_validation_end(self, trainer, pl_module):
        result = latest_metrics(trainer)
        if not result.get("stage_names") or trainer.sanity_checking or not trainer.is_global_zero:
            return
        plot_stage_spectra(result["stage_names"], result["stage_eigenvalues"], self.path,
                           f"{pl_module.name}: covariance eigenvalues of the backbone's stages, step {trainer.global_step}")


class EmbeddingPlot(L.Callback):
    """At the end of a run, draws `embedding.png`: a 2-D t-SNE of the backbone's validation features
    coloured by class (zoo/metrics/embedding.py), from the validation that evaluated the final weights.

    The features are the harness's validation output (`Pretrainer.validation_output()`, what the online k-NN
    reads), which the module frees after the callbacks' on_validation_epoch_end. Each validation keeps a random
    subset of them on the CPU; the picture is drawn once, when fit ends on weights that validation saw, or
    after the separate validation of the final weights (`trainer.validate`)."""

    def __init__(self, path, max_points=None):
        self.path = Path(path)
        self.max_points = max_points or MAX_POINTS
        self.latest = None  # (global step, features, labels) of the latest validation

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        output = pl_module.validation_output()  # on every process: the first call gathers
        if output is None or not len(output.features):
            return
        features, labels = subsample(output.features, output.labels, self.max_points)
        self.latest = (trainer.global_step, features, labels)

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "validate":  # the run's separate evaluation of its final weights
            self.draw(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module):
        if self.latest is not None and self.latest[0] == trainer.global_step:
            self.draw(trainer, pl_module)

    def draw(self, trainer, pl_module):
        if trainer.is_global_zero and self.latest is not None:
            step, features, labels = self.latest
            plot_embedding(features, labels, self.path, f"{pl_module.name}, backbone features at step {step}")


def plot_spectra(history, path, title, label="epoch {}"):
    """`history`: [(epoch, {"backbone": eigenvalues, ...})], one line each, labelled `label` with the epoch."""
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
            ax.semilogy(range(1, len(eigs) + 1), eigs / eigs.sum(), color=colour, label=label.format(epoch))
        ax.set_title(f"{key} ({len(history[-1][1][key])} eigenvalues)")
        ax.set_xlabel("eigenvalue index")
        ax.set_ylabel("normalised eigenvalue")
    axes[-1].legend(fontsize=7, loc="lower left", ncol=2)
    fig.suptitle(title)
    save_figure(fig, path)


def plot_stage_spectra(names, spectra, path, title):
    """One line per stage: its normalised covariance eigenvalues (`spectra`: descending eigenvalues per stage, None
    for a stage without them) against their index, both in log10 (stages differ in width by 8x and more). Drawn as
    log10 values on linear axes: matplotlib's log axes took 4x as long (130 against 70 ms on one core), and the
    picture is redrawn at every validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    colours = plt.cm.viridis([i / max(len(names) - 1, 1) for i in range(len(names))])
    for index, (colour, name, eigs) in enumerate(zip(colours, names, spectra), start=1):
        if eigs is None or not len(eigs) or not float(eigs.sum()) > 0:
            continue
        eigs = torch.as_tensor(eigs, dtype=torch.float64)
        ax.plot(torch.arange(1, len(eigs) + 1).log10().numpy(), (eigs / eigs.sum()).clamp_min(1e-12).log10().numpy(),
                color=colour, label=f"stage {index} ({name}, {len(eigs)}): effective rank {effective_rank(eigs):.1f}")
    ax.set_xlabel("log10 eigenvalue index")
    ax.set_ylabel("log10 normalised eigenvalue")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path, tight=False)


def save_figure(fig, path, tight=True):
    """A matplotlib figure as a PNG at `path`, written atomically; the figure is closed. `tight`: matplotlib's
    tight layout (a third of a small figure's drawing time), else fixed margins."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    else:
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


class Diverged(ZooError):
    """The run met a non-finite loss or gradient (one `error:` line; the run folder keeps the capture)."""


def _parts_text(losses):
    """The non-finite entries of each micro-batch's {part: 0-d tensor}, e.g. 'loss=nan, invariance=nan'."""
    texts = []
    for parts in losses:
        bad = {name: value.item() for name, value in parts.items() if not torch.isfinite(value).all()}
        if bad:
            texts.append(", ".join(f"{name}={value:g}" for name, value in bad.items()))
    return " | ".join(dict.fromkeys(texts))


def _nonfinite_text(named_tensors):
    """'backbone, projector: 12 tensors, first backbone.conv1.weight' for the non-finite ones of (name, tensor)
    pairs; '' if all are finite (one host-device sync)."""
    named_tensors = list(named_tensors)
    if not named_tensors or torch.stack([torch.isfinite(t).all() for _, t in named_tensors]).all():
        return ""
    bad = [name for name, t in named_tensors if not torch.isfinite(t).all()]
    modules = ", ".join(dict.fromkeys(name.split(".")[0] for name in bad))
    return f"{modules}: {len(bad)} tensor{'s' * (len(bad) > 1)}, first {bad[0]}"


def nonfinite_gradients(pl_module, optimizer):
    """Which optimiser groups hold non-finite gradients, with their modules and first parameter; '' if none."""
    names = {id(p): name for name, p in method_named_parameters(pl_module)}
    grads = [(index, names.get(id(p), "?"), p.grad) for index, group in enumerate(optimizer.param_groups)
             for p in group["params"] if p.grad is not None]
    text = _nonfinite_text((name, grad) for _, name, grad in grads)
    if not text:
        return ""
    groups = list(dict.fromkeys(str(index) for index, _, grad in grads if not torch.isfinite(grad).all()))
    return f"optimizer group{'s' * (len(groups) > 1)} {', '.join(groups)} ({text})"


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value


class DivergenceGuard(L.Callback):
    """Checks every optimiser step, before the weights change, that the loss (each of its parts and the
    online probe's) and the gradients are finite, with one host-device sync per step (the gradients by their
    total norm; under a 16-bit GradScaler, which skips non-finite gradients itself, the losses only).

    A non-finite step stops the run with one `error:` line (Diverged: the step, the loss parts and the
    optimiser groups), before any checkpoint of it, and writes `capture_path`: a checkpoint-shaped file
    (zoo.build.load_method reads it) with the weights before the step (BatchNorm statistics after its
    forward), the step's batch (its crops and labels: the sample indices alone would not reproduce the
    random crops), the losses and the latest validation's spectra. With `skip_nonfinite_steps` > 0, that many isolated non-finite steps (the step
    before each finite, the model's buffers finite) are skipped instead: no update, a warning, a count in
    summary.json.

    After each validation it flags a collapsed representation: the backbone's effective rank or the
    projector output's `output_std` (`zoo.metrics.health.collapse_indicator`) under the thresholds."""

    def __init__(self, capture_path, skip_nonfinite_steps=0, collapse_effective_rank=2.0, collapse_output_std=0.1):
        self.capture_path = Path(capture_path)
        self.skip_limit = skip_nonfinite_steps
        self.min_rank, self.min_std = collapse_effective_rank, collapse_output_std
        self.skipped = []  # steps skipped
        self.collapsed = None  # why the latest validation looks collapsed
        self._losses, self._batch = [], None  # this optimiser step's micro-batches

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._batch = batch

    def on_before_backward(self, trainer, pl_module, loss):
        self._losses.append(getattr(pl_module, "step_losses", None) or {"loss": loss.detach()})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        losses, self._losses = self._losses, []
        checks = [value.float().reshape(-1) for parts in losses for value in parts.values()]
        if getattr(trainer.precision_plugin, "scaler", None) is None:
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if grads:
                checks.append(torch.nn.utils.get_total_norm(grads).reshape(1).float())
        if not checks:
            return
        bad = (~torch.isfinite(torch.cat([check.to(checks[0].device) for check in checks]))).any()
        if trainer.world_size > 1:  # every rank stops (or skips) together
            bad = trainer.strategy.reduce(bad.float(), reduce_op="sum") > 0
        if not bad:
            return
        parts, groups = _parts_text(losses), nonfinite_gradients(pl_module, optimizer)
        if not parts and not groups and trainer.world_size == 1:
            return  # only the total norm overflowed: every gradient is finite
        step = trainer.global_step
        what = " and ".join(filter(None, [parts and f"non-finite loss ({parts})", groups and f"non-finite gradients in {groups}"]))
        what = what or "another process met a non-finite loss or gradient"
        isolated = not self.skipped or self.skipped[-1] != step - 1
        buffers_finite = all(torch.isfinite(b).all() for b in pl_module.buffers() if b.is_floating_point())
        if len(self.skipped) < self.skip_limit and isolated and buffers_finite:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None  # optimisers leave parameters without a gradient as they are
            self.skipped.append(step)
            if trainer.is_global_zero:
                print(f"warning: step {step}: {what}; step skipped ({len(self.skipped)} of divergence.skip_nonfinite_steps="
                      f"{self.skip_limit})", file=sys.stderr)
            return
        if trainer.is_global_zero:
            self.capture(trainer, pl_module, losses, what)
        why = "" if not self.skip_limit else (
            ", not skipped: " + ("the step before it was skipped" if not isolated else "non-finite buffers" if not
                                 buffers_finite else f"{len(self.skipped)} steps skipped already"))
        raise Diverged(
            f"method {pl_module.name} diverged at step {step}: {what}{why}; training stopped, the last checkpoint "
            f"(before this step) kept, the step's weights and batch in {self.capture_path} for replay; lower "
            "optimizer.lr (or raise method.eps for whitening methods)"
            + ("" if self.skip_limit else ", or skip isolated steps with divergence.skip_nonfinite_steps=N")
        )

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        # finite gradients can still step the weights past float range: such weights never replace a checkpoint
        bad = _nonfinite_text(method_named_parameters(pl_module))
        if bad:
            raise Diverged(
                f"method {pl_module.name} diverged by step {trainer.global_step}: non-finite weights ({bad}); training "
                "stopped before writing them, the last checkpoint kept; lower optimizer.lr (or raise method.eps for "
                "whitening methods)"
            )

    def capture(self, trainer, pl_module, losses, what):
        """The replay capture, in a checkpoint's shape (`hyper_parameters`, `state_dict`)."""
        result = latest_metrics(trainer)
        capture = {
            "hyper_parameters": dict(pl_module.hparams),
            "state_dict": _to_cpu(pl_module.state_dict()),
            "batch": _to_cpu(self._batch),
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "reason": what,
            "losses": [{name: value.item() for name, value in parts.items()} for parts in losses],
            "spectra": {key: value for key, value in result.items() if key.endswith("_eigenvalues")},
        }
        buffer = io.BytesIO()
        torch.save(capture, buffer)
        atomic_write_bytes(self.capture_path, buffer.getvalue())

    def on_validation_end(self, trainer, pl_module):
        result = latest_metrics(trainer)
        if trainer.sanity_checking or "effective_rank" not in result:
            return
        reasons = []
        if result["effective_rank"] < self.min_rank:
            reasons.append(f"backbone effective rank {result['effective_rank']:.2f} < {self.min_rank:g}")
        if result.get("output_std") is not None and result["output_std"] < self.min_std:
            reasons.append(f"output std x sqrt(dim) {result['output_std']:.3f} < {self.min_std:g}")
        self.collapsed = "; ".join(reasons) or None
        if self.collapsed and trainer.is_global_zero:
            print(f"warning: step {trainer.global_step}: the representation looks collapsed ({self.collapsed}; "
                  "thresholds: divergence.collapse_*)", file=sys.stderr)

    def state_dict(self):
        return {"skipped": self.skipped, "collapsed": self.collapsed}

    def load_state_dict(self, state):
        self.skipped, self.collapsed = list(state.get("skipped", [])), state.get("collapsed")


class StopOnSignal(L.Callback):
    """SIGTERM (a scheduler stopping the job) or SIGINT (Ctrl-C): the step in progress finishes, last.ckpt
    is written where the periodic checkpoints are (at a batch end, so it resumes as they do)
    and Lightning's loops stop with SIGTERMException, which zoo.pretrain turns into a one-line notice, an
    unfinished summary and a non-zero exit. Lightning's own SIGTERM handling (and SLURM's requeue signal)
    stays as it is: SIGINT is routed through it too, and a second Ctrl-C stops at once."""

    def __init__(self, last_ckpt):
        self.last_ckpt = Path(last_ckpt)
        self.received = None  # the signal's name
        self._saved_step = None

    def on_train_start(self, trainer, pl_module):
        if threading.current_thread() is not threading.main_thread():
            return
        lightning_handler = signal.getsignal(signal.SIGTERM)  # registered by the trainer; restored at its teardown

        def stop(signum, frame):
            if self.received and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.received = signal.Signals(signum).name
            if callable(lightning_handler):
                lightning_handler(signal.SIGTERM, frame)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.received_sigterm:
            self.save(trainer)

    def on_exception(self, trainer, pl_module, exception):
        # stopped outside a training step (a validation during fit); the final validation has a checkpoint already
        if isinstance(exception, SIGTERMException) and trainer.state.fn == TrainerFn.FITTING:
            self.save(trainer)

    def save(self, trainer):
        if self._saved_step != trainer.global_step:
            trainer.save_checkpoint(self.last_ckpt)
            self._saved_step = trainer.global_step
