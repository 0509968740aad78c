"""Datasets, the augmentation spec on the torchvision path, and the loader choice."""

import numpy as np
import pytest
import torch
from image_probes import blur_probe, line_sigma
from omegaconf import OmegaConf
from PIL import Image, ImageFilter

from zoo.catalog import DATASETS, DatasetInfo, register_dataset
from zoo.config import CropGroup, DataConfig
from zoo.data import build_loaders, choose_loader, data_spec
from zoo.data.augment import MultiViewTransform, applied_blur, torchvision_view
from zoo.data.datasets import ImageTensors, load_digits_split
from zoo.errors import ZooError


def data_config(**overrides):
    cfg = OmegaConf.structured(DataConfig)
    cfg.merge_with_dotlist([f"{k}={v}" for k, v in overrides.items()])
    return cfg


def test_digits_split_is_fixed_stratified_and_real():
    (train_x, train_y), (_, test_y) = load_digits_split(16, 0.25)
    (train_x2, _), _ = load_digits_split(16, 0.25)
    assert torch.equal(train_x, train_x2)  # the same split every time
    assert len(train_y) + len(test_y) == 1797 and len(test_y) == 450
    assert train_x.dtype == torch.uint8 and train_x.shape[1:] == (3, 16, 16)
    assert torch.bincount(test_y).min() >= 40  # stratified: every digit in the test split


def test_multi_crop_groups_give_their_sizes_in_order():
    groups = [CropGroup(size=24, count=2, scale=[0.2, 1.0]), CropGroup(size=12, count=3, scale=[0.05, 0.4])]
    views = MultiViewTransform(groups, [0.5] * 3, [0.5] * 3)(torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8))
    assert [v.shape[-1] for v in views] == [24, 24, 12, 12, 12]
    assert all(v.dtype == torch.float32 for v in views)


def test_asymmetric_views_apply_their_own_probabilities():
    image = torch.full((3, 32, 32), 200, dtype=torch.uint8)
    plain = CropGroup(size=32, scale=[1.0, 1.0], ratio=[1.0, 1.0], jitter_p=0.0, gray_p=0.0, flip_p=0.0)
    solarized = CropGroup(**{**plain.__dict__, "solarize_p": 1.0})
    first, second = MultiViewTransform([plain, solarized], [0.0] * 3, [1.0] * 3)(image)
    assert torch.allclose(first, torch.full_like(first, 200 / 255))
    assert torch.allclose(second, torch.full_like(second, 55 / 255))  # 255 - 200: solarized at threshold 128


@pytest.mark.parametrize("size", [32, 96, 224])
def test_blur_is_pillows_gaussian_blur_at_every_crop_size(size):
    # The official pipelines blur with PIL's GaussianBlur(radius=sigma) whatever the crop size;
    # a window of 10% of the crop capped sigma near 0.8 px at 32 px.
    group = CropGroup(
        size=size, scale=[1.0, 1.0], ratio=[1.0, 1.0], flip_p=0.0, jitter_p=0.0, gray_p=0.0, blur_p=1.0, blur_sigma=[2.0, 2.0]
    )
    pixels = blur_probe(size)
    levels = torchvision_view(group, [0.0] * 3, [1 / 255] * 3)(torch.from_numpy(pixels).permute(2, 0, 1))
    ours = levels.round().permute(1, 2, 0).numpy().astype(np.uint8)
    pillows = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius=2.0)))
    assert line_sigma(ours) == pytest.approx(line_sigma(pillows), rel=0.01)
    assert np.array_equal(ours, pillows)  # Pillow itself: identical pixels
    assert line_sigma(pillows) == pytest.approx(applied_blur(group).effective_sigma[1], rel=0.01)


def test_applied_blur_reports_the_sigma_range_and_window_at_the_crop_size():
    for size in (32, 96, 224):
        blur = applied_blur(CropGroup(size=size, blur_p=0.5))  # the default range, U(0.1, 2.0), as the official code
        assert blur.size == size and blur.p == 0.5 and blur.sigma == (0.1, 2.0)
        assert blur.effective_sigma == pytest.approx((0.1, 2.0), rel=1e-4)
        assert (blur.box_width, blur.window) == (5, 13)  # Pillow's three boxes at sigma 2
    with pytest.raises(ZooError, match="blur_sigma"):
        applied_blur(CropGroup(size=32, blur_sigma=[2.0, 0.1]))
    with pytest.raises(ZooError, match="crop size"):
        applied_blur(CropGroup())


def test_digits_loaders_yield_two_views_and_labels():
    loaders = build_loaders(data_spec(data_config(batch_size=16, num_workers=0)))
    crops, labels = next(iter(loaders.train))
    assert len(crops) == 2 and crops[0].shape == (16, 3, 16, 16) and labels.shape == (16,)
    assert loaders.num_classes == 10 and loaders.loader == "torchvision"
    assert len(loaders.val.dataset) == 450


def make_folder(root, bad=False):
    for split in ("train", "val"):
        for cls in ("ant", "bee"):
            (root / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (20, 20), (i * 40, 80, 120)).save(root / split / cls / f"{i}.jpg")
    if bad:
        data = (root / "train" / "ant" / "0.jpg").read_bytes()
        (root / "train" / "ant" / "cut.jpg").write_bytes(data[: len(data) // 2])


def test_folder_dataset_reads_classes_from_folders_and_skips_a_truncated_jpeg(tmp_path):
    make_folder(tmp_path, bad=True)
    with pytest.warns(UserWarning, match=r"skipping 1 unreadable image.*cut\.jpg \(truncated JPEG"):
        train = data_spec(data_config(name="folder", root=str(tmp_path))).dataset("train", transform=None)
    assert train.classes == ["ant", "bee"] and len(train.samples) == 6 and len(train.targets) == 6


def test_auto_loader_picks_torchvision_for_non_folder_data():
    assert choose_loader(data_spec(data_config(name="digits"))) == "torchvision"
    with pytest.raises(ZooError, match="reads the ImageFolder layout only"):
        choose_loader(data_spec(data_config(name="digits", loader="dali")))


# ---- a new data set: one catalog entry, and every loader builds it -------------------------------
TOY_MEAN, TOY_STD = (0.25, 0.5, 0.75), (0.5, 0.25, 0.125)


def toy_images(source, split, transform):
    """A data set written for this test: 3 classes of 8 px images (a grey level per class, plus noise);
    24 training images (pretraining, probe and k-NN bank alike) and 12 validation images."""
    count = 12 if split == "val" else 24
    labels = torch.arange(count) % 3
    noise = torch.randint(0, 40, (count, 3, 8, 8), generator=torch.Generator().manual_seed(count))
    return ImageTensors((labels.view(-1, 1, 1, 1) * 80 + noise).to(torch.uint8), labels, transform)


@pytest.fixture
def toy():
    register_dataset("toy", DatasetInfo(toy_images, image_size=8, mean=TOY_MEAN, std=TOY_STD, num_classes=3))
    yield data_config(name="toy", batch_size=4, eval_batch_size=5, num_workers=0)
    del DATASETS["toy"]


def test_a_registered_data_set_gets_pretraining_and_evaluation_loaders(toy, tmp_path):
    from torch import nn

    from zoo.eval.cli import build_config
    from zoo.eval.features import encoder, labelled_features
    from zoo.eval.linear import lightning_eval

    with pytest.raises(ZooError, match="already registered"):
        register_dataset("toy", DATASETS["toy"])
    loaders = build_loaders(data_spec(toy))
    crops, labels = next(iter(loaders.train))
    assert [crop.shape for crop in crops] == [(4, 3, 8, 8)] * 2 and labels.shape == (4,)  # the entry's crop size
    assert (len(loaders.train), loaders.num_classes, loaders.loader) == (6, 3, "torchvision")
    assert len(loaders.knn_bank.dataset) == 24
    images, labels = next(iter(loaders.val))  # the evaluation transform: the entry's size and statistics
    raw = toy_images(None, "val", None)
    expected = (raw.images[:5] / 255 - torch.tensor(TOY_MEAN).view(3, 1, 1)) / torch.tensor(TOY_STD).view(3, 1, 1)
    assert torch.allclose(images, expected, atol=1e-5) and torch.equal(labels, raw.labels[:5])

    features = labelled_features(encoder(nn.Flatten()), data_spec(toy), "cpu")  # k-NN, precomputed probe
    assert features.train[0].shape == (24, 192) and features.val[0].shape == (12, 192) and features.num_classes == 3

    backbone = nn.Flatten()
    backbone.num_features = 192
    cfg = build_config(None, ["linear.protocol=frozen", "linear.epochs=1", "linear.batch_size=8", "trainer.accelerator=cpu",
                              "trainer.enable_progress_bar=false", "data.name=toy", "data.num_workers=0"])
    result, _ = lightning_eval(backbone, cfg, tmp_path)  # the frozen probe's augmented loader
    assert result["train_images"] == 24 and 0 <= result["linear_top1"] <= 1
    assert result["knn5_top1"] == 1.0  # grey levels 80 apart: images and labels stay paired through the loaders
