"""Digits-M: scikit-learn's 8x8 digits blended into patches of colour photographs, the MNIST-M
construction (Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015:
the blend is |photo patch - digit|, channel by channel) with a random digit colour, scale and position.

The photographs are the ones that ship inside scikit-image's wheel, so the set is built offline. The
digits keep the seeded train / validation split of the plain `digits` data set (1,347 / 450), and the
two splits draw their backgrounds from disjoint photographs: a validation score cannot come from
having seen its backgrounds.

Why it exists: the plain digits are separable in pixel space, so an untrained backbone scores as well
as a trained one. Here the background and the colour carry no label, and a backbone has to learn to
ignore them to classify the digit.

Pretraining sees each training digit (its colour, scale and position fixed by the build) on a new
random photo patch in every view, as background augmentation does (Ryali et al., "Characterizing and
Improving the Robustness of Self-Supervised Learning through Background Augmentations", 2021): two
views of one image share the digit and nothing else, so the background is an invariance that
pretraining must learn. With one fixed background per image, as MNIST-M has, a few hundred steps
learn the shared background as much as the digit (README, "The embedded benchmark"). The k-NN bank,
the linear probe and the validation use fixed composites: EVAL_COMPOSITES of every digit, each with its own
colour, scale, position and photo patch, so that a score does not rest on one background draw per digit
(with one composite per digit, another draw of the validation backgrounds moved INTL's linear top-1 by
+-2.7 points; README, "The embedded benchmark"). Pretraining's digits (their masks and colours) are the
first composites', which version 1 of the build held alone, so version 2 trains as version 1 did.

The build is deterministic (the same seed gives the same bytes) and takes seconds; it is cached as
one .npz file, which carries its format version and a checksum: a stale or corrupt cache is rebuilt
with a one-line notice.
"""

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from zoo.errors import ZooError

# Bump when the construction changes: every cache built by an older version is rebuilt.
VERSION = 2
# Composites of every digit in the evaluation images (k-NN bank, probe training set, validation): images
# (EVAL_COMPOSITES, digits, 3, 32, 32), composite-major; the first composite of each digit is version 1's.
EVAL_COMPOSITES = 4
IMAGE_SIZE = 32
# Photographs of scikit-image's wheel (skimage/data): colour scenes and grey textures in both splits,
# no photograph in both. motorcycle_right is left out: it is the same scene as motorcycle_left.
TRAIN_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg",
                "grass.png", "brick.png", "camera.png", "moon.png")
VAL_PHOTOS = ("motorcycle_left.png", "ihc.png", "gravel.png", "coins.png")
PATCH_SIDE = (8, 32)  # side of the square cut from a photograph, resized to IMAGE_SIZE: smooth to sharp backgrounds
DIGIT_SIDE = (20, 30)  # side of the digit inside the image
COLOUR = (128.0, 255.0)  # range of each channel of the digit's colour: at least half-bright, so the digit shows
ARRAYS = ("train_images", "train_masks", "train_colours", "train_labels", "val_images", "val_labels")  # what a build holds


def photo_folder():
    try:
        import skimage
    except ImportError:
        raise ZooError('data.name=digits_m needs scikit-image, a core dependency: pip install -e . (or pip install scikit-image)') from None
    return Path(skimage.__file__).parent / "data"


def load_photo(name):
    """A photograph of scikit-image's wheel as uint8 RGB, grey ones repeated to three channels."""
    from PIL import Image

    path = photo_folder() / name
    if not path.is_file():
        raise ZooError(f"scikit-image's photograph {path} is missing: reinstall scikit-image (pip install --force-reinstall scikit-image)")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _resize(array, side):
    """Pillow's antialiased bilinear resize of an (H, W) float32 or (H, W, 3) uint8 array to side x side,
    as float32 (Pillow's integer arithmetic gives the same bytes on every processor)."""
    from PIL import Image

    image = Image.fromarray(array if array.ndim == 3 else array.astype(np.float32), "RGB" if array.ndim == 3 else "F")
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)


def place_digit(digit, rng):
    """An 8x8 digit (values 0..16) as a mask in [0, 1] at a random scale and position of the image, and its colour."""
    size = int(rng.integers(DIGIT_SIDE[0], DIGIT_SIDE[1] + 1))
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    y, x = rng.integers(IMAGE_SIZE - size + 1), rng.integers(IMAGE_SIZE - size + 1)
    mask[y:y + size, x:x + size] = np.clip(_resize(digit / 16.0, size), 0.0, 1.0)
    return mask, rng.uniform(*COLOUR, size=3).astype(np.float32)


def photo_patch(photos, rng):
    """A random square of a random photograph, resized to the image size: float32 (32, 32, 3)."""
    photo = photos[rng.integers(len(photos))]
    side = int(rng.integers(PATCH_SIDE[0], min(PATCH_SIDE[1], *photo.shape[:2]) + 1))
    top, left = rng.integers(photo.shape[0] - side + 1), rng.integers(photo.shape[1] - side + 1)
    return _resize(photo[top:top + side, left:left + side], IMAGE_SIZE)


def blend(background, mask, colour):
    """MNIST-M's |patch - digit|, per channel, with the digit in `colour`: uint8 (3, 32, 32)."""
    blended = np.abs(background - mask[..., None] * colour)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8).transpose(2, 0, 1)


def compose(digits, photos, rng):
    """Each digit placed and blended into a photo patch: (images uint8 (N, 3, 32, 32), masks, colours)."""
    placed = [place_digit(digit, rng) for digit in digits]
    images = np.stack([blend(photo_patch(photos, rng), mask, colour) for mask, colour in placed])
    return images, np.stack([mask for mask, _ in placed]), np.stack([colour for _, colour in placed])


def digits_split(test_fraction, seed=0):
    """scikit-learn's digits and their fixed stratified split: (the digits, train indices, test indices); the `digits`
    data set splits the same way."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    train_idx, test_idx = train_test_split(np.arange(len(digits.target)), test_size=test_fraction, random_state=seed,
                                           stratify=digits.target)
    return digits, train_idx, test_idx


def build(seed=0, test_fraction=0.25, composites=EVAL_COMPOSITES):
    """The data set as numpy arrays: train_images, train_masks, train_colours, train_labels, val_images,
    val_labels. Images are uint8 (composites, N, 3, 32, 32), the labels (N,) of each composite; a training
    digit's mask and colour (its first composite's) recompose it on other patches for pretraining."""
    digits, train_idx, val_idx = digits_split(test_fraction)
    rng = np.random.default_rng(seed)
    train_photos, val_photos = [load_photo(name) for name in TRAIN_PHOTOS], [load_photo(name) for name in VAL_PHOTOS]
    # Version 1's draws first (one composite of each split), then the further composites from the same stream.
    train, masks, colours = compose(digits.images[train_idx], train_photos, rng)
    val, _, _ = compose(digits.images[val_idx], val_photos, rng)
    more_train = [compose(digits.images[train_idx], train_photos, rng)[0] for _ in range(composites - 1)]
    more_val = [compose(digits.images[val_idx], val_photos, rng)[0] for _ in range(composites - 1)]
    return {"train_images": np.stack([train, *more_train]), "train_masks": masks, "train_colours": colours,
            "train_labels": digits.target[train_idx].astype(np.int64),
            "val_images": np.stack([val, *more_val]), "val_labels": digits.target[val_idx].astype(np.int64)}


def evaluation_images(arrays, split):
    """The fixed composites of `split` (train: the k-NN bank and the probe's training set; val) as
    (images uint8 (composites x N, 3, 32, 32), labels (composites x N,)), composite-major."""
    images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    return images.reshape(-1, *images.shape[2:]), np.tile(labels, len(images))


def checksum(arrays):
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def cache_path(root, seed, test_fraction):
    folder = Path(root) if root is not None else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zoo"
    return folder / f"digits_m-seed{seed}-test{test_fraction:g}.npz"


def _read_cache(path):
    """The cached arrays, or the reason the cache cannot be used."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        return None, f"unreadable ({type(err).__name__})"
    version = int(arrays.pop("version", -1))
    if version != VERSION:
        return None, f"built by version {version} of the construction, this is version {VERSION}"
    missing = sorted(set(ARRAYS) - set(arrays))
    if missing:
        return None, f"it lacks {', '.join(missing)}"
    stored_sum = str(arrays.pop("sha256", ""))
    if stored_sum != checksum(arrays):
        return None, "its checksum does not match its contents"
    return arrays, None


def _write_cache(path, arrays):
    """Written to a temporary file and renamed: concurrent ranks and a killed build never leave half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, version=VERSION, sha256=checksum(arrays), **arrays)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(buffer.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(root=None, seed=0, test_fraction=0.25):
    """The data set from its cache under `root` (default ~/.cache/zoo), built and cached when missing,
    stale or corrupt (with a one-line notice); an unwritable cache folder only costs the rebuild."""
    path = cache_path(root, seed, test_fraction)
    if path.exists():
        arrays, problem = _read_cache(path)
        if arrays is not None:
            return arrays
        print(f"notice: rebuilding the digits_m cache {path}: {problem}")
    arrays = build(seed, test_fraction)
    try:
        _write_cache(path, arrays)
    except OSError as err:
        print(f"notice: cannot cache digits_m at {path} ({err.strerror}); it is rebuilt at every start")
    return arrays



class FreshBackgrounds:
    """The pretraining set: every view of a training digit blended into its own random patch of the
    training photographs. `transform` is a MultiViewTransform (one composite per view) or one transform.

    The patches are drawn from torch's generator, which Lightning seeds per run and per loader worker,
    so a seeded run draws the same backgrounds."""

    def __init__(self, arrays, transform):
        self.masks, self.colours, self.labels = arrays["train_masks"], arrays["train_colours"], arrays["train_labels"]
        self.photos = [load_photo(name) for name in TRAIN_PHOTOS]
        self.views = getattr(transform, "views", None)
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def composite(self, index, rng):
        import torch

        return torch.from_numpy(blend(photo_patch(self.photos, rng), self.masks[index], self.colours[index]))

    def __getitem__(self, index):
        import torch

        rng = np.random.default_rng(int(torch.randint(2**62, (1,))))
        if self.views is None:
            return self.transform(self.composite(index, rng)), int(self.labels[index])
        return [view(self.composite(index, rng)) for view in self.views], int(self.labels[index])
