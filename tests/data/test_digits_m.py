"""The embedded digits_m data set: a deterministic build, disjoint photographs, a cache that is rebuilt
when stale or corrupt, and the statistics the data set's normalisation uses."""

import subprocess
import sys

import numpy as np
import pytest

from zoo.catalog import dataset_info
from zoo.data import digits_m

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built():
    return digits_m.build(seed=0)


def test_the_build_is_deterministic_and_the_seed_changes_it(built):
    again = digits_m.build(seed=0)
    assert digits_m.checksum(again) == digits_m.checksum(built)
    assert digits_m.checksum(digits_m.build(seed=1, composites=1)) != digits_m.checksum(digits_m.build(seed=0, composites=1))


def test_every_digit_has_several_evaluation_composites_and_the_first_trains():
    """EVAL_COMPOSITES composites of each digit in both splits, each with its own placement and patch; the
    first ones (and the pretraining digits' masks and colours) are what a one-composite build draws."""
    import torch

    from zoo.data.datasets import Source, build_dataset

    built = digits_m.build(seed=0, composites=3)
    first = digits_m.build(seed=0, composites=1)
    for key in ("train_masks", "train_colours", "train_labels", "val_labels"):
        np.testing.assert_array_equal(built[key], first[key])
    for split in ("train", "val"):
        images = built[f"{split}_images"]
        assert images.shape[0] == 3 and images.dtype == np.uint8
        np.testing.assert_array_equal(images[0], first[f"{split}_images"][0])
        assert all((images[k] != images[0]).any(axis=(1, 2, 3)).mean() > 0.99 for k in (1, 2))  # other draws
        flat, labels = digits_m.evaluation_images(built, split)
        assert flat.shape == (3 * images.shape[1], 3, 32, 32) and labels.shape == (len(flat),)
        np.testing.assert_array_equal(flat[images.shape[1] + 5], images[1, 5])
        np.testing.assert_array_equal(labels[images.shape[1] + 5], built[f"{split}_labels"][5])
    # What the evaluation and pretraining loaders read (from the default build's cache).
    source = Source(name="digits_m")
    n_train, n_val = len(built["train_labels"]), len(built["val_labels"])
    identity = lambda image: image
    assert len(build_dataset(source, "train", identity)) == n_train
    assert len(build_dataset(source, "train_labeled", identity)) == digits_m.EVAL_COMPOSITES * n_train
    val = build_dataset(source, "val", identity)
    assert len(val) == digits_m.EVAL_COMPOSITES * n_val and torch.is_tensor(val[0][0])


def test_the_splits_keep_the_digits_split_and_use_disjoint_photographs(built):
    from zoo.data.datasets import load_digits_split

    (_, train_labels), (_, val_labels) = load_digits_split(8, 0.25)
    composites = digits_m.EVAL_COMPOSITES
    assert built["train_images"].shape == (composites, len(train_labels), 3, 32, 32) and built["train_images"].dtype == np.uint8
    assert built["val_images"].shape == (composites, len(val_labels), 3, 32, 32)
    np.testing.assert_array_equal(built["train_labels"], train_labels.numpy())
    np.testing.assert_array_equal(built["val_labels"], val_labels.numpy())
    assert not set(digits_m.TRAIN_PHOTOS) & set(digits_m.VAL_PHOTOS)
    for name in digits_m.TRAIN_PHOTOS + digits_m.VAL_PHOTOS:
        assert (digits_m.photo_folder() / name).is_file(), name


def test_each_image_is_a_photo_patch_with_the_digit_blended_in():
    """With a blank digit the image is the photo patch itself; with the digit the patch changes where
    the digit is, as |patch - colour x digit|, and the mask and colour the build keeps recompose it."""
    photos = [digits_m.load_photo("coffee.png")]
    blank, _, _ = digits_m.compose(np.zeros((1, 8, 8)), photos, np.random.default_rng(7))
    full, masks, colours = digits_m.compose(np.full((1, 8, 8), 16.0), photos, np.random.default_rng(7))
    changed = (blank != full).any(axis=1)[0]
    rows, cols = np.nonzero(changed)
    side = rows.max() - rows.min() + 1
    assert digits_m.DIGIT_SIDE[0] - 1 <= side <= digits_m.DIGIT_SIDE[1] and cols.max() - cols.min() + 1 == side
    assert changed.mean() < 1.0  # the background shows around the digit
    assert ((digits_m.COLOUR[0] <= colours) & (colours <= digits_m.COLOUR[1])).all()
    expected = np.abs(blank[0].transpose(1, 2, 0).astype(np.float32) - masks[0][..., None] * colours[0])
    assert np.abs(full[0].transpose(1, 2, 0).astype(np.float32) - expected).max() <= 1.0  # uint8 rounding of the patch


def test_pretraining_views_share_the_digit_on_their_own_backgrounds(built):
    """Every view of a training digit is the digit on another random patch; torch's seed fixes the patches."""
    import torch

    from zoo.config import CropGroup
    from zoo.data.augment import MultiViewTransform

    identity = CropGroup(size=32, scale=[1.0, 1.0], ratio=[1.0, 1.0], flip_p=0.0, jitter_p=0.0, gray_p=0.0)
    dataset = digits_m.FreshBackgrounds(built, MultiViewTransform([identity, identity], [0.0] * 3, [1.0] * 3))
    assert len(dataset) == len(built["train_labels"])
    torch.manual_seed(0)
    (first, second), label = dataset[3]
    assert label == built["train_labels"][3] and first.shape == (3, 32, 32)
    assert not torch.equal(first, second)
    torch.manual_seed(0)
    (again, _), _ = dataset[3]
    assert torch.equal(first, again)
    # On a plain grey photograph every view is the build's digit (its mask, colour, scale, position) on grey.
    dataset.photos = [np.full((64, 64, 3), 10, np.uint8)]
    (first, second), _ = dataset[3]
    grey = np.full((32, 32, 3), 10, np.float32)
    expected = torch.from_numpy(digits_m.blend(grey, built["train_masks"][3], built["train_colours"][3])).float() / 255
    assert torch.equal(first, second) and torch.allclose(first, expected)
    one_view = digits_m.FreshBackgrounds(built, lambda image: image)  # a plain transform: one composite
    image, _ = one_view[3]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)


def test_the_normalisation_is_the_pretraining_digits_statistics(built):
    """The channel statistics of the pretraining digits' composites (the first of each, version 1's whole
    training set); the further evaluation composites move them by less than 0.01."""
    info = dataset_info("digits_m")
    pixels = built["train_images"][0].transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    np.testing.assert_allclose(info.mean, pixels.mean(axis=1), atol=1e-3)
    np.testing.assert_allclose(info.std, pixels.std(axis=1), atol=1e-3)
    every = built["train_images"].transpose(2, 0, 1, 3, 4).reshape(3, -1) / 255.0
    np.testing.assert_allclose(info.mean, every.mean(axis=1), atol=1e-2)


def test_the_cache_is_reused_and_a_corrupt_or_stale_cache_is_rebuilt(tmp_path, capsys, monkeypatch, built):
    builds = []
    monkeypatch.setattr(digits_m, "build", lambda seed, test_fraction: builds.append(seed) or built)
    first = digits_m.load(tmp_path)
    path = digits_m.cache_path(tmp_path, 0, 0.25)
    assert path.is_file() and builds == [0] and capsys.readouterr().out == ""
    second = digits_m.load(tmp_path)
    assert builds == [0] and digits_m.checksum(second) == digits_m.checksum(first)

    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a cut-off file
    digits_m.load(tmp_path)
    assert builds == [0, 0] and capsys.readouterr().out.count("notice: rebuilding the digits_m cache") == 1

    with np.load(path) as stored:  # a changed image under a valid archive: the checksum catches it
        arrays = {key: stored[key] for key in stored.files}
    arrays["train_images"] = arrays["train_images"].copy()
    arrays["train_images"][0, 0, 0, 0, 0] ^= 1
    np.savez(path, **arrays)
    digits_m.load(tmp_path)
    assert builds == [0, 0, 0] and "checksum" in capsys.readouterr().out

    arrays.update(version=digits_m.VERSION - 1, sha256=digits_m.checksum(first))
    arrays["train_images"] = first["train_images"]
    np.savez(path, **arrays)
    digits_m.load(tmp_path)
    assert builds == [0, 0, 0, 0] and f"this is version {digits_m.VERSION}" in capsys.readouterr().out
    digits_m.load(tmp_path)  # rebuilt caches are valid again
    assert builds == [0, 0, 0, 0]


def test_an_unwritable_cache_folder_costs_only_the_rebuild(tmp_path, capsys, monkeypatch, built):
    monkeypatch.setattr(digits_m, "build", lambda seed, test_fraction: built)
    blocker = tmp_path / "file"
    blocker.write_text("")
    arrays = digits_m.load(blocker / "cache")  # a folder below a file cannot be made
    assert digits_m.checksum(arrays) == digits_m.checksum(built)
    assert "notice: cannot cache digits_m" in capsys.readouterr().out


def test_a_missing_scikit_image_is_one_error_line(tmp_path):
    code = ("import sys; sys.modules['skimage'] = None\n"
            "from zoo.errors import exit_on_user_error\n"
            "from zoo.data import digits_m\n"
            f"exit_on_user_error(digits_m.load)({str(tmp_path)!r})\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: data.name=digits_m needs scikit-image, a core dependency: pip install -e . (or pip install scikit-image)"]
