"""Transfer, few-shot and distribution-shift evaluation of a frozen backbone (main_transfer.py).

- many_shot: Ericsson et al.'s linear transfer (linusericsson/ssl-transfer, linear.py): frozen
  features of resized, centre-cropped images; scikit-learn's L2-regularised multinomial logistic
  regression with L-BFGS, one model warm-started through the whole search, C = 1 / wd over
  wd = torch.logspace(-6, 5, 45) in that order; the C with the best validation score (the first of
  equals) refit on train+val and scored on test with the data set's metric.
- few_shot: k labelled images per class (k in few_shot.shots) drawn with a seed from train+val,
  few_shot.draws draws, the same classifier at a fixed C (few_shot.C), scored on test: mean +- std.
- shift: the linear head main_linear.py wrote (linear_head.pt) on the backbone's features of
  ImageNet-V2 / -R / -A / -Sketch; -R and -A predict among their 200 classes only, as their
  authors' eval.py (the logits of those classes, argmax).

Features are computed once per checkpoint x data set x split and cached beside the checkpoint
(<checkpoint>.transfer/<data set>-<key>/<split>.pt, key = what they depend on); each data set's
result is written to <run>/transfer/<suite>/<data set>.json as soon as it is known, so a killed suite
resumes at the next data set.
"""

import copy
import hashlib
import io
import json
import statistics
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from zoo.atomic import atomic_write_bytes
from zoo.config import DataConfig
from zoo.data import data_spec
from zoo.data.loaders import worker_count
from zoo.data.transfer import drawn_validation, list_file, open_split, resolve, shift_dataset, transfer_transform
from zoo.errors import ZooError
from zoo.eval.features import extract_features

METRIC_NAMES = {"top1": "top-1", "mean_per_class": "mean per-class accuracy", "map11": "11-point mAP"}


# ---- metrics ---------------------------------------------------------------------------------
def top1_accuracy(labels, predictions):
    return float(np.mean(np.asarray(labels) == np.asarray(predictions)))


def mean_per_class_accuracy(labels, predictions):
    """The mean over the classes present in `labels` of the fraction of their images predicted
    right (ssl-transfer: the confusion matrix's diagonal over its row sums, averaged; equal whenever
    every predicted class occurs in `labels`, as on the real test splits)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return float(np.mean([np.mean(predictions[labels == c] == c) for c in np.unique(labels)]))


def voc11_average_precision(positives, scores):
    """PASCAL VOC 2007's 11-point interpolated average precision: the mean over recall thresholds
    t = 0, 0.1, ..., 1 of the largest precision at a recall >= t (0 if none), on the precision /
    recall curve of scikit-learn's precision_recall_curve (as ssl-transfer's voc_eval_cls)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(positives, scores)
    return float(sum(precision[recall >= t].max() if np.any(recall >= t) else 0.0 for t in np.linspace(0, 1, 11)) / 11)


# ---- the classifier ------------------------------------------------------------------------------
def c_grid(count=45):
    """ssl-transfer's regularisation constants: C = 1 / wd for wd in torch.logspace(-6, 5, count) (float32)."""
    return [1.0 / wd for wd in torch.logspace(-6, 5, count).tolist()]


class LogisticProbe:
    """ssl-transfer's LogisticRegression wrapper: one scikit-learn model (L-BFGS, L2, warm start, its
    default 100 iterations) fitted again for every C and the refit, scored with `metric`.

    top1 / mean_per_class: multinomial over the classes. map11 (VOC's 20 labels): one binary fit
    per class, scored on the decision function. ssl-transfer ran scikit-learn 0.22 with
    multi_class='multinomial', which on two classes fits a 2-class softmax: its minimiser is the
    binary logistic regression's at 2C (the softmax's two weight vectors are +-d/2, each paying half
    the penalty), with the same ranking of the test images, hence the same AP; later scikit-learn
    has no multi_class, so the binary fit runs at 2C."""

    def __init__(self, metric, max_iter=100):
        from sklearn.linear_model import LogisticRegression

        self.metric = metric
        self.model = LogisticRegression(solver="lbfgs", warm_start=True, max_iter=max_iter)

    def fit(self, C, x, y):
        """Fits on (x, y) at C; returns the fitted scikit-learn model(s) (one per class for map11)."""
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # as ssl-transfer (@ignore_warnings)
            if self.metric != "map11":
                self.model.set_params(C=C)
                return self.model.fit(x, y)
            self.model.set_params(C=2 * C)
            # one model through the classes too (each fit warm-starts from the previous class's); a
            # label without positives (or negatives) among the training images has no classifier
            return [copy.deepcopy(self.model.fit(x, y[:, c])) if len(np.unique(y[:, c])) == 2 else None
                    for c in range(y.shape[1])]

    def score(self, fitted, x, y):
        if self.metric == "map11":  # over the labels with a classifier and a positive test image (all 20 on VOC2007)
            return float(np.mean([voc11_average_precision(y[:, c], model.decision_function(x))
                                  for c, model in enumerate(fitted) if model is not None and y[:, c].any()]))
        predictions = fitted.predict(x)
        return top1_accuracy(y, predictions) if self.metric == "top1" else mean_per_class_accuracy(y, predictions)

    def fit_score(self, C, train_x, train_y, test_x, test_y):
        return self.score(self.fit(C, train_x, train_y), test_x, test_y)


def grid_search(train, val, trainval, test, metric, grid, max_iter=100):
    """ssl-transfer's validate() then evaluate(): every C of `grid` fitted on `train` (features,
    labels) in order and scored on `val`; the first C with the best score (strictly above 0, as
    theirs: else the first C) refit on `trainval`, scored on `test`."""
    probe = LogisticProbe(metric, max_iter)
    val_scores, best, best_C = [], 0.0, grid[0]
    for C in grid:
        score = probe.fit_score(C, *train, *val)
        val_scores.append(score)
        if score > best:
            best, best_C = score, C
    return {"score": probe.fit_score(best_C, *trainval, *test), "C": best_C, "val_score": max(val_scores),
            "val_scores": val_scores}


def few_shot_indices(labels, shots, seed):
    """`shots` indices of each class of `labels` (all of a smaller class), drawn without replacement
    with numpy's generator seeded `seed`, in class order."""
    generator = np.random.RandomState(seed)
    labels = np.asarray(labels)
    chosen = [generator.choice(np.flatnonzero(labels == c), min(shots, int(np.sum(labels == c))), replace=False)
              for c in np.unique(labels)]
    return np.concatenate(chosen)


# ---- features, cached beside the checkpoint -----------------------------------------------------
def cache_folder(ckpt_path, dataset, key_parts):
    """<checkpoint>.transfer/<data set>-<hash of what the features depend on>."""
    ckpt = Path(ckpt_path).resolve()
    stat = ckpt.stat()
    key = json.dumps([stat.st_size, stat.st_mtime_ns, *key_parts], sort_keys=True, default=str)
    return ckpt.parent / f"{ckpt.name}.transfer" / f"{dataset}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def save_atomically(path, value):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class FeatureCache:
    """The backbone's features of every split a suite needs, computed once (with a progress bar per
    data set and split) and kept as <folder>/<split>.pt."""

    def __init__(self, backbone, ckpt_path, cfg, device):
        self.backbone, self.ckpt_path, self.cfg, self.device = backbone, ckpt_path, cfg, device
        self.transform = transfer_transform(cfg.image_size, cfg.normalise)

    def features(self, dataset, split, build, key_parts):
        """(features float32 (N, D), labels) of `split`; `build()` makes the torch Dataset when not cached."""
        path = cache_folder(self.ckpt_path, dataset, key_parts) / f"{split}.pt"
        if self.cfg.cache and path.is_file():
            cached = torch.load(path, map_location="cpu", weights_only=True)
            return cached["features"], cached["labels"]
        images = build()
        if len(images) == 0:
            raise ZooError(f"{dataset} {split}: no images")
        (features,), labels = extract_features(lambda batch: (self.backbone(batch),), images, self.cfg.batch_size,
                                               worker_count(self.cfg.num_workers), self.device,
                                               progress=f"{dataset} {split}" if self.cfg.progress else None)
        features, labels = features.cpu(), labels.cpu()
        if self.cfg.cache:
            save_atomically(path, {"features": features, "labels": labels})
        return features, labels

    def splits(self, dataset):
        """{train, val, trainval, test}: (features, labels) as numpy arrays, with ssl-transfer's splits."""
        cfg = self.cfg
        spec, folder = resolve(dataset, cfg.root)
        key = [str(folder.resolve()), cfg.image_size, cfg.normalise]

        def read(split):
            return self.features(dataset, split, lambda: open_split(dataset, cfg.root, split, self.transform, cfg.download), key)

        train = read("train")
        if spec.has_val:
            val = read("val")
            trainval = tuple(torch.cat(pair) for pair in zip(train, val))
        else:
            train_index, val_index = drawn_validation(len(train[1]), cfg.val_fraction, cfg.split_seed)
            trainval = train
            train, val = tuple(t[train_index] for t in trainval), tuple(t[val_index] for t in trainval)
        test = read("test")
        as_numpy = lambda pair: (pair[0].numpy(), pair[1].numpy())
        return {"train": as_numpy(train), "val": as_numpy(val), "trainval": as_numpy(trainval), "test": as_numpy(test),
                "metric": spec.metric}


# ---- the suites -------------------------------------------------------------------------------
def many_shot(cache, dataset, cfg):
    data = cache.splits(dataset)
    result = grid_search(data["train"], data["val"], data["trainval"], data["test"], data["metric"],
                         c_grid(cfg.transfer.c_grid), cfg.transfer.max_iter)
    return {"dataset": dataset, "metric": data["metric"], "score": result["score"], "C": result["C"],
            "val_score": result["val_score"], "train_images": len(data["train"][1]), "val_images": len(data["val"][1]),
            "test_images": len(data["test"][1])}


def few_shot(cache, dataset, cfg):
    data = cache.splits(dataset)
    if data["metric"] == "map11":
        raise ZooError(f"{dataset} is multi-label: k images per class is not defined for it; leave it out of the few_shot suite")
    pool_x, pool_y = data["trainval"]
    rows = {}
    for shots in cfg.few_shot.shots:
        scores = []
        for draw in range(cfg.few_shot.draws):
            index = few_shot_indices(pool_y, shots, cfg.few_shot.seed + draw)
            probe = LogisticProbe(data["metric"], cfg.transfer.max_iter)
            scores.append(probe.fit_score(cfg.few_shot.C, pool_x[index], pool_y[index], *data["test"]))
        rows[str(shots)] = {"mean": statistics.fmean(scores), "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                            "scores": scores}
    return {"dataset": dataset, "metric": data["metric"], "shots": rows, "test_images": len(data["test"][1])}


def load_head(path):
    """The linear head main_linear.py wrote: (nn.Linear, its class names, the data config it was trained with)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"linear head not found: {path} (run main_linear.py --ckpt PATH on ImageNet first, or pass "
                       "shift.head=PATH to its linear_head.pt)")
    head = torch.load(path, map_location="cpu", weights_only=False)
    if not head.get("classes"):
        raise ZooError(f"{path} has no class names (its data set has none): the shift suite needs a head trained on ImageNet folders")
    linear = torch.nn.Linear(head["weight"].shape[1], head["weight"].shape[0])
    linear.load_state_dict({"weight": head["weight"], "bias": head["bias"]})
    return linear, list(head["classes"]), head["data"]


def shift(cache, dataset, cfg, head):
    """top-1 of the head on an ImageNet shift set, predicting among the classes of its subset."""
    linear, classes, data_cfg = head
    transform = data_spec(OmegaConf.merge(OmegaConf.structured(DataConfig), data_cfg)).eval_transform()
    images, subset = shift_dataset(dataset, cfg.transfer.root, transform)
    key = [str(Path(cfg.transfer.root).expanduser().resolve()), json.dumps(data_cfg, sort_keys=True, default=str)]
    features, labels = cache.features(dataset, "test", lambda: images, key)
    wnids = list_file("imagenet_wnids.txt")
    column = {wnid: i for i, wnid in enumerate(classes)}
    kept = [wnid for wnid in subset if wnid in column]
    if not kept:
        raise ZooError(f"the linear head's classes hold none of {dataset}'s: it needs a head trained on ImageNet (wnid folders)")
    true = np.array([wnids[label] for label in labels.tolist()])
    inside = np.isin(true, kept)
    with torch.no_grad():
        logits = linear(features[torch.from_numpy(inside)])[:, [column[w] for w in kept]]
    predicted = np.array(kept)[logits.argmax(dim=1).numpy()]
    return {"dataset": dataset, "metric": "top1", "score": top1_accuracy(true[inside], predicted), "classes": len(kept),
            "test_images": int(inside.sum()), "images_outside_head": int((~inside).sum())}


# ---- tables ------------------------------------------------------------------------------------
def reference_columns(targets):
    """{reference model: {data set: percent}} of the many-shot targets (protocol transfer-linear/<data set>)."""
    columns = {}
    for target in targets:
        if str(target.get("protocol", "")).startswith("transfer-linear/"):
            columns.setdefault(target["method"], {})[target["protocol"].split("/", 1)[1]] = target["top1"]
    return columns


def markdown(header, rows):
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows])


def table(suite, rows, targets=()):
    """One markdown table: a row per data set and their mean, scores in percent (many_shot: with the
    C chosen and the published numbers of the reference models beside them)."""
    if suite == "few_shot":
        shots = list(rows[0]["shots"]) if rows else []
        body = [[row["dataset"], METRIC_NAMES[row["metric"]],
                 *[f"{100 * row['shots'][k]['mean']:.2f} ± {100 * row['shots'][k]['std']:.2f}" for k in shots]] for row in rows]
        body.append(["mean", "", *[f"{100 * statistics.fmean(row['shots'][k]['mean'] for row in rows):.2f}" for k in shots]])
        return markdown(["dataset", "metric", *[f"{k}-shot" for k in shots]], body)
    references = reference_columns(targets) if suite == "many_shot" else {}
    chosen_c = ["C"] if suite == "many_shot" else []
    body = []
    for row in rows:
        cells = [row["dataset"], METRIC_NAMES[row["metric"]], f"{100 * row['score']:.2f}", *[f"{row['C']:.3g}" for _ in chosen_c]]
        body.append(cells + [f"{paper[row['dataset']]:.2f}" if row["dataset"] in paper else "–" for paper in references.values()])
    mean = f"{100 * statistics.fmean(row['score'] for row in rows):.2f}" if rows else "–"
    body.append(["mean", "", mean, *["" for _ in chosen_c], *["" for _ in references]])
    return markdown(["dataset", "metric", "score", *chosen_c, *[f"{name} (paper)" for name in references]], body)


SUITES = {"many_shot": many_shot, "few_shot": few_shot, "shift": shift}
