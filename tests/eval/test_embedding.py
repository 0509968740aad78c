"""embedding.png: a 2-D embedding of the validation features coloured by class, written at the end
of pretraining (zoo.callbacks.EmbeddingPlot) and by main_knn.py."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from pretrain_helpers import TINY, pretrain_in_process

from zoo.callbacks import EmbeddingPlot
from zoo.metrics.embedding import plot_embedding, project_2d, subsample
from zoo.train.harness import ValidationOutput


def clustered_features(classes=4, per_class=30, dim=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = 5 * torch.randn(classes, dim, generator=generator)
    labels = torch.arange(classes).repeat_interleave(per_class)
    return centres[labels] + torch.randn(len(labels), dim, generator=generator), labels


def assert_picture(path, min_colours=5):
    """A PNG that decodes and shows several colours (points of several classes, not a blank figure)."""
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 300
        colours = np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) >= min_colours


@pytest.mark.parametrize("projection", ["tsne", "pca"])
def test_separated_classes_stay_separated_in_two_dimensions(projection):
    features, labels = clustered_features()
    coordinates = torch.as_tensor(project_2d(features.double().numpy(), projection))
    assert coordinates.shape == (len(labels), 2)
    distances = torch.cdist(coordinates, coordinates).fill_diagonal_(float("inf"))
    assert (labels[distances.argmin(dim=1)] == labels).float().mean() > 0.95  # each point's neighbour is of its class


def test_tsne_runs_its_500_iterations(monkeypatch):
    """The iterations scikit-learn's fit ran (`n_iter_`), not the constant: half its default of 1,000."""
    import sklearn.manifold

    fits = []

    class RecordingTSNE(sklearn.manifold.TSNE):
        def fit_transform(self, X, y=None):
            fits.append(self)
            return super().fit_transform(X)

    monkeypatch.setattr(sklearn.manifold, "TSNE", RecordingTSNE)
    features, _ = clustered_features()
    project_2d(features.double().numpy(), "tsne")
    assert len(fits) == 1 and fits[0].max_iter == 500 and fits[0].n_iter_ in (499, 500)


def test_subsample_is_seeded_random_and_drops_non_finite_rows():
    features, labels = torch.arange(100.0).unsqueeze(1).repeat(1, 3), torch.arange(100) // 10  # ordered by class
    features[3, 1] = float("nan")
    kept, kept_labels = subsample(features, labels, max_points=50)
    again, _ = subsample(features, labels, max_points=50)
    assert kept.shape == (50, 3) and np.array_equal(kept, again) and np.isfinite(kept).all()
    assert len(np.unique(kept_labels)) == 10  # not the first 50 rows: every class is there
    assert plot_embedding(features[:1], labels[:1], "unused.png", "one point") == 0


def test_callback_draws_once_from_the_validation_of_the_final_weights(tmp_path):
    features, labels = clustered_features()
    path = tmp_path / "embedding.png"
    callback = EmbeddingPlot(path)
    output = ValidationOutput(features, labels, torch.zeros(len(features), 8), torch.zeros(2, 64), torch.zeros(2))
    module = SimpleNamespace(name="intl", validation_output=lambda: output)
    trainer = SimpleNamespace(sanity_checking=False, global_step=5, is_global_zero=True, state=SimpleNamespace(fn="fit"))
    callback.on_validation_epoch_end(trainer, module)
    callback.on_validation_end(trainer, module)  # a validation during fit: the weights may train on
    assert not path.exists()
    trainer.global_step = 7  # fit ended after more steps than that validation saw: trainer.validate draws it
    callback.on_fit_end(trainer, module)
    assert not path.exists()
    trainer.global_step = 5
    callback.on_fit_end(trainer, module)
    assert_picture(path)


def test_a_digits_run_and_main_knn_write_the_embedding(tmp_path, monkeypatch, capsys):
    """One epoch, validated only after fit (validation every 5 epochs): the separate validation
    of the final weights draws it; main_knn draws its own next to its summary (both entry points called
    in this process)."""
    from zoo.eval.cli import main_knn

    run_dir = tmp_path / "run"
    args = [arg for arg in TINY if not arg.startswith("trainer.check_val_every_n_epoch")]
    code, _, err = pretrain_in_process(monkeypatch, capsys, *args, "trainer.max_epochs=1", f"run_dir={run_dir}")
    assert code == 0, err[-3000:]
    assert_picture(run_dir / "embedding.png", min_colours=10)

    out = tmp_path / "knn"
    main_knn(["--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--k", "5", "--temperatures", "0.1", "--bank-size", "200",
              "--out", str(out), "data.num_workers=0"])
    assert f"embedding of the validation features written to {out / 'embedding.png'}" in capsys.readouterr().out
    assert (out / "summary.json").is_file()
    assert_picture(out / "embedding.png", min_colours=10)
