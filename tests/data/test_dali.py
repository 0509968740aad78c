"""The DALI training loader (zoo.data.dali) on DALI's CPU backend, on tiny generated image folders."""

import io
import json
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

pytest.importorskip("nvidia.dali")

from image_probes import blur_probe, line_sigma
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from zoo.config import CropGroup
from zoo.data import dali, files
from zoo.data.augment import MultiViewTransform
from zoo.data.datasets import Source, training_files
from zoo.errors import ZooError

REPO = Path(__file__).resolve().parents[2]
MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
# A view with every random op off: the whole (square) image, resized.
PLAIN = CropGroup(size=32, scale=[1.0, 1.0], ratio=[1.0, 1.0], flip_p=0.0, jitter_p=0.0, gray_p=0.0, blur_p=0.0, solarize_p=0.0)
LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def plain(**changes):
    return replace(PLAIN, **changes)


def make_loader(root, views, batch_size=4, corrupt_images="stop", **kwargs):
    paths, labels = training_files(Source("folder", str(root), corrupt_images=corrupt_images))
    return dali.build_dali_train_loader(paths, labels, views, MEAN, STD, batch_size=batch_size, num_threads=1, root=str(root),
                                        corrupt_images=corrupt_images, **kwargs)


def first_batch(root, views, **kwargs):
    return next(iter(make_loader(root, views, **kwargs)))


def grey_levels(crop):
    """A normalised crop batch back in 0..255 units, on the CPU."""
    return crop.cpu() * torch.tensor(STD).view(1, 3, 1, 1) * 255 + torch.tensor(MEAN).view(1, 3, 1, 1) * 255


def mean_grey(levels):
    """Per-sample mean ITU-R 601 luma of a batch in 0..255 units."""
    return (levels * LUMA).sum(1).mean(dim=(1, 2))


def smooth_image(rng, width, height):
    """Upsampled colour noise: natural-looking, so resampling keeps its statistics."""
    noise = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(noise).resize((width, height), Image.BICUBIC)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """2 classes x 8 JPEGs of 40-70 px in train/ (and val/, for a pretraining run)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            for index in range(8):
                width, height = rng.integers(40, 71, size=2)
                smooth_image(rng, int(width), int(height)).save(root / split / name / f"{index}.jpg", quality=95)
    return root


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    """16 flat PNGs whose red level tells which file a crop came from: 10 + 15 * index."""
    root = tmp_path_factory.mktemp("numbered")
    for index in range(16):
        folder = root / "train" / ("cat" if index < 8 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (48, 48), (10 + 15 * index, 100, 200)).save(folder / f"{index:02d}.png")
    return root


def file_indices(crops):
    return ((grey_levels(crops[0])[:, 0].mean(dim=(1, 2)) - 10) / 15).round().long().tolist()


@pytest.fixture(scope="module")
def pattern(tmp_path_factory):
    """Four copies of one 64x64 PNG: red grows with x, green with y (64..190), blue an 8 px checkerboard."""
    root = tmp_path_factory.mktemp("pattern")
    y, x = np.mgrid[0:64, 0:64]
    checker = 64 + 128 * (((x // 8) + (y // 8)) % 2)
    image = np.stack([64 + 2 * x, 64 + 2 * y, checker], axis=-1).astype(np.uint8)
    (root / "train" / "a").mkdir(parents=True)
    for index in range(4):
        Image.fromarray(image).save(root / "train" / "a" / f"{index}.png")
    return root


# ---------------------------------------------------------------- every op, alone, with p = 1


def test_flip_mirrors_the_crop(pattern):
    (still,), _ = first_batch(pattern, [PLAIN])
    (flipped,), _ = first_batch(pattern, [plain(flip_p=1.0)])
    torch.testing.assert_close(flipped, still.flip(-1))


def test_grayscale_gives_equal_channels_of_the_luma(pattern):
    (still,), _ = first_batch(pattern, [PLAIN])
    (grey,), _ = first_batch(pattern, [plain(gray_p=1.0)])
    levels = grey_levels(grey)
    torch.testing.assert_close(levels[:, 0], levels[:, 1], atol=0.01, rtol=0)
    torch.testing.assert_close(levels[:, 0], levels[:, 2], atol=0.01, rtol=0)
    torch.testing.assert_close(levels[:, :1], (grey_levels(still) * LUMA).sum(1, keepdim=True), atol=1.0, rtol=0)


def test_solarize_inverts_the_bright_pixels(pattern):
    (still,), _ = first_batch(pattern, [PLAIN])
    (solar,), _ = first_batch(pattern, [plain(solarize_p=1.0)])
    before = grey_levels(still)
    expected = torch.where(before >= 127.5, 255 - before, before)
    torch.testing.assert_close(grey_levels(solar), expected, atol=0.05, rtol=0)
    assert (before >= 128).any() and (before < 128).any()


def test_blur_smooths_the_checkerboard_and_keeps_the_mean(pattern):
    (still,), _ = first_batch(pattern, [PLAIN])
    (blurred,), _ = first_batch(pattern, [plain(blur_p=1.0, blur_sigma=[2.0, 2.0])])
    sharp_blue, soft_blue = grey_levels(still)[:, 2], grey_levels(blurred)[:, 2]
    assert soft_blue.std() < 0.8 * sharp_blue.std()
    assert abs(soft_blue.mean() - sharp_blue.mean()) < 3


@pytest.mark.parametrize("size", [32, 96, 224])
def test_blur_is_pillows_gaussian_blur_at_every_crop_size(tmp_path, size):
    # The official pipelines blur with PIL's GaussianBlur(radius=sigma) whatever the crop size.
    pixels = blur_probe(size, seed=size)
    (tmp_path / "train" / "a").mkdir(parents=True)
    for index in range(4):
        Image.fromarray(pixels).save(tmp_path / "train" / "a" / f"{index}.png")
    (blurred,), _ = first_batch(tmp_path, [plain(size=size, blur_p=1.0, blur_sigma=[2.0, 2.0])])
    ours = grey_levels(blurred).round().permute(0, 2, 3, 1).numpy()
    pillows = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius=2.0))).astype(np.float32)
    for sample in ours:
        assert line_sigma(sample) == pytest.approx(line_sigma(pillows), rel=0.01)
    error = np.abs(ours - pillows)
    assert error.max() <= 2 and error.mean() < 0.2  # Pillow's box passes in float32: rounding ties (measured 2, 0.08)


def test_brightness_scales_each_sample_by_one_factor_in_range(pattern):
    (still,), _ = first_batch(pattern, [PLAIN])
    (bright,), _ = first_batch(pattern, [plain(jitter_p=1.0, brightness=0.5, contrast=0.0, saturation=0.0, hue=0.0)])
    before, after = grey_levels(still), grey_levels(bright)
    unclipped = before < 165  # 165 x 1.5 stays under 255
    factors = [(after[i][unclipped[i]] / before[i][unclipped[i]]) for i in range(len(before))]
    for factor in factors:
        assert 0.5 - 0.02 <= factor.mean() <= 1.5 + 0.02
        assert factor.std() < 0.02
    assert len({round(float(factor.mean()), 2) for factor in factors}) > 1  # drawn per sample


def test_contrast_scales_about_the_mean_grey_as_torchvision(pattern):
    (still,), _ = first_batch(pattern, [PLAIN])
    (contrasted,), _ = first_batch(pattern, [plain(jitter_p=1.0, brightness=0.0, contrast=0.5, saturation=0.0, hue=0.0)])
    before, after = grey_levels(still), grey_levels(contrasted)
    torch.testing.assert_close(mean_grey(after), mean_grey(before), atol=1.5, rtol=0)
    assert not torch.allclose(after, before, atol=2)


def test_saturation_and_hue_change_colours_but_keep_the_luma(pattern):
    (still,), _ = first_batch(pattern, [PLAIN])
    (shifted,), _ = first_batch(pattern, [plain(jitter_p=1.0, brightness=0.0, contrast=0.0, saturation=0.5, hue=0.5)])
    before, after = grey_levels(still), grey_levels(shifted)
    assert (after - before).abs().mean() > 5
    luma_change = ((after - before) * LUMA).sum(1).abs()
    assert luma_change.mean() < 1.0 and luma_change.quantile(0.95) < 2.0  # the rest: colours clipped to the gamut


def test_each_sample_draws_its_own_coin(pattern):
    loader = make_loader(pattern, [plain(gray_p=0.5)])
    grey = []
    for _ in range(16):
        for (crop,), _ in loader:
            levels = grey_levels(crop)
            grey += ((levels[:, 0] - levels[:, 1]).abs().amax(dim=(1, 2)) < 0.01).tolist()
    assert 0.25 < sum(grey) / len(grey) < 0.75


def test_ops_before_the_crop_run_on_the_whole_image(pattern):
    (crop,), _ = first_batch(pattern, [plain(gray_p=1.0, order=["gray", "crop", "flip"])])
    levels = grey_levels(crop)
    assert crop.shape == (4, 3, 32, 32)
    torch.testing.assert_close(levels[:, 0], levels[:, 2], atol=0.01, rtol=0)


def test_orders_dali_cannot_run_are_one_line_errors(pattern):
    with pytest.raises(ZooError, match="unknown augmentation op"):
        make_loader(pattern, [plain(order=["crop", "rotate"])])
    with pytest.raises(ZooError, match="exactly one 'crop'"):
        make_loader(pattern, [plain(order=["jitter", "flip"])])


# ---------------------------------------------------------------- crops and views


def test_crop_areas_and_ratios_stay_in_the_spec_range(pattern):
    scale, ratio = [0.25, 0.5], [3 / 4, 4 / 3]
    loader = make_loader(pattern, [plain(scale=scale, ratio=ratio, interpolation="bilinear")])
    areas, aspects = [], []
    for _ in range(8):
        for (crop,), _ in loader:
            levels = grey_levels(crop)
            # Red and green rise 2 levels per source pixel; output pixel centres span (size-1)/size of the window.
            width = (levels[:, 0].amax(dim=(1, 2)) - levels[:, 0].amin(dim=(1, 2))) / 2 * 32 / 31 / 64
            height = (levels[:, 1].amax(dim=(1, 2)) - levels[:, 1].amin(dim=(1, 2))) / 2 * 32 / 31 / 64
            areas += (width * height).tolist()
            aspects += (width / height).tolist()
    assert scale[0] * 0.9 <= min(areas) and max(areas) <= scale[1] * 1.1
    assert ratio[0] * 0.9 <= min(aspects) and max(aspects) <= ratio[1] * 1.1
    assert np.std(areas) > 0.03  # drawn per crop, not one window


def test_multi_crop_groups_give_their_sizes_in_crop_order(photos):
    views = [CropGroup(count=2, size=32), CropGroup(count=3, size=16, scale=[0.05, 0.3], blur_p=0.5)]
    crops, labels = first_batch(photos, views)
    assert [tuple(crop.shape) for crop in crops] == [(4, 3, 32, 32)] * 2 + [(4, 3, 16, 16)] * 3
    assert all(crop.dtype == torch.float32 for crop in crops)
    assert labels.dtype == torch.int64 and labels.shape == (4,)


def torchvision_crops(root, group, batch_size=8):
    dataset = ImageFolder(str(root / "train"), transform=MultiViewTransform([group], MEAN, STD))
    return torch.cat([crops[0] for crops, _ in DataLoader(dataset, batch_size=batch_size)])


def dali_crops(root, group, batch_size=8):
    return torch.cat([crops[0].cpu() for crops, _ in make_loader(root, [group], batch_size=batch_size)])


def test_dali_and_torchvision_views_agree_in_shape_range_and_normalisation(photos):
    whole = plain(ratio=[0.5, 2.0])  # every image is whole (both fall back to the full frame), just resized
    ours, theirs = dali_crops(photos, whole), torchvision_crops(photos, whole)
    assert ours.shape == theirs.shape == (16, 3, 32, 32) and ours.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours.mean(dim=(0, 2, 3)), theirs.mean(dim=(0, 2, 3)), atol=0.05, rtol=0)
    torch.testing.assert_close(ours.std(dim=(0, 2, 3)), theirs.std(dim=(0, 2, 3)), atol=0, rtol=0.1)

    lowest = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
    highest = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    augmented = CropGroup(size=32, blur_p=0.5, solarize_p=0.2)
    for crops in (dali_crops(photos, augmented), torchvision_crops(photos, augmented)):
        assert crops.shape == (16, 3, 32, 32) and crops.dtype == torch.float32
        per_channel = crops.transpose(0, 1).flatten(1)
        assert (per_channel.amin(1) >= lowest - 1e-4).all() and (per_channel.amax(1) <= highest + 1e-4).all()


# ---------------------------------------------------------------- epochs, shards, labels


def test_an_epoch_is_every_file_once_and_each_iter_starts_a_new_one(numbered):
    loader = make_loader(numbered, [PLAIN])
    assert len(loader) == 4
    seen, labels = [], []
    for crops, batch_labels in loader:
        seen += file_indices(crops)
        labels += batch_labels.tolist()
    assert sorted(seen) == list(range(16)) and seen != list(range(16))  # all, once, shuffled
    assert labels == [int(index >= 8) for index in seen]  # cat = 0, dog = 1: the sorted folder names

    for _ in loader:  # abandon an epoch after one batch, as max_steps or limit_train_batches do
        break
    assert sum(1 for _ in loader) == len(loader)


def test_an_unstarted_loader_pickles(numbered):
    loader = pickle.loads(pickle.dumps(make_loader(numbered, [PLAIN])))  # as DDP spawn would ship it
    assert sorted(index for crops, _ in loader for index in file_indices(crops)) == list(range(16))


def test_shards_are_disjoint_and_equally_long(numbered):
    shards = [make_loader(numbered, [PLAIN], shard_id=rank, num_shards=2) for rank in range(2)]
    assert [len(shard) for shard in shards] == [2, 2]
    seen = [[index for crops, _ in shard for index in file_indices(crops)] for shard in shards]
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(16))
    assert {len(make_loader(numbered, [PLAIN], shard_id=rank, num_shards=3)) for rank in range(3)} == {1}


def test_too_few_images_for_one_batch_is_a_one_line_error(numbered):
    with pytest.raises(ZooError, match="lower data.batch_size"):
        make_loader(numbered, [PLAIN], batch_size=32)


# ---------------------------------------------------------------- bad files


@pytest.fixture
def with_bad_files(tmp_path, numbered):
    """The numbered images plus a truncated JPEG and a text file named .jpg."""
    root = tmp_path / "bad"
    (root / "train").mkdir(parents=True)
    for folder in (numbered / "train").iterdir():
        (root / "train" / folder.name).symlink_to(folder)  # read-only share of the module's images
    (root / "train" / "zebra").mkdir()
    buffer = root / "train" / "zebra" / "whole.jpg"
    Image.new("RGB", (48, 48), (30, 60, 90)).save(buffer, quality=95)
    data = buffer.read_bytes()
    buffer.unlink()
    (root / "train" / "zebra" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "train" / "zebra" / "notes.jpg").write_text("not an image")
    return root


def test_bad_files_are_skipped_up_front_with_a_warning_naming_them(with_bad_files):
    with pytest.warns(UserWarning, match=r"skipping 2 unreadable.*(truncated\.jpg.*notes\.jpg|notes\.jpg.*truncated\.jpg)"):
        loader = make_loader(with_bad_files, [PLAIN])
    for _ in range(2):
        assert sorted(index for crops, _ in loader for index in file_indices(crops)) == list(range(16))


@pytest.mark.parametrize("name", ["truncated.jpg", "notes.jpg"])
def test_a_bad_file_missed_up_front_stops_with_a_one_line_error(with_bad_files, monkeypatch, name):
    other = {"truncated.jpg": "notes.jpg", "notes.jpg": "truncated.jpg"}[name]
    (with_bad_files / "train" / "zebra" / other).unlink()
    monkeypatch.setattr(files, "unreadable_reason", lambda path: None)
    loader = make_loader(with_bad_files, [PLAIN])
    with pytest.raises(ZooError) as raised:
        for _ in range(3):
            for _ in loader:
                pass
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"cannot decode {with_bad_files / 'train' / 'zebra' / name}: ")
    assert "data.corrupt_images=skip" in message


def corrupt_jpeg(path):
    """A JPEG that passes the up-front check (its first and last bytes are a JPEG's) but whose Huffman
    tables are zeroed: no decoder can read it."""
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), (30, 60, 90)).save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    table = data.index(b"\xff\xc4")
    path.write_bytes(data[: table + 4] + bytes(40) + data[table + 44 :])
    assert files.unreadable_reason(path) is None
    return path


def test_a_corrupt_jpeg_is_named_and_skipped_or_stops_the_run(with_bad_files):
    for name in ("truncated.jpg", "notes.jpg"):
        (with_bad_files / "train" / "zebra" / name).unlink()
    bad = corrupt_jpeg(with_bad_files / "train" / "zebra" / "tables.jpg")
    loader = make_loader(with_bad_files, [PLAIN], corrupt_images="skip")
    with pytest.warns(UserWarning, match=f"skipping {bad}: cannot decode it"):
        seen = [index for _ in range(2) for crops, _ in loader for index in file_indices(crops)]
    assert len(seen) == 2 * len(loader) * 4 and set(seen) <= set(range(16))
    with pytest.raises(ZooError, match=f"cannot decode {bad}: "):
        for _ in range(2):
            for _ in make_loader(with_bad_files, [PLAIN]):
                pass


# ---------------------------------------------------------------- end to end


def test_pretraining_runs_a_few_steps_on_dali(photos, tmp_path):
    if not (REPO / "main_pretrain.py").exists():
        pytest.skip("main_pretrain.py is not there yet")
    run_dir = tmp_path / "run"
    args = [
        "data.name=folder",
        f"data.root={photos}",
        "data.loader=dali",
        "data.batch_size=8",
        "data.num_workers=0",
        "data.image_size=32",
        "trainer.max_steps=2",
        "trainer.enable_progress_bar=false",
        f"run_dir={run_dir}",
    ]
    result = subprocess.run(
        [sys.executable, "main_pretrain.py", *args], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["loader"] == "dali" and summary["steps"] == 2
