"""The data sets of main_transfer.py, each under `transfer.root`/<name> in its on-disk layout.

Many-shot and few-shot: the 12 data sets of Kornblith et al. (2019) with the splits of Ericsson et
al.'s linusericsson/ssl-transfer (linear.py and datasets/): a predefined validation split for
Aircraft, DTD, Flowers-102 and VOC2007, else `transfer.val_fraction` of the training split drawn
with seed `transfer.split_seed` (as their get_train_valid_loader). Each one is read with torchvision's
class where torchvision has it and where its checks let a prepared folder through; the others are
read here, in torchvision's layout (Flowers-102: torchvision checks the .mat files' md5), or in the
layout of their authors (Caltech-101 with ssl-transfer's split lists, SUN397 with its partition 01
files, VOC2007's per-class classification lists, Birdsnap's images.txt / test_images.txt).
Any other ImageFolder-style folder is a custom data set (`custom_folder`).

Shift: ImageNet-V2 / -R / -A / -Sketch, ImageFolder-style, labelled with ImageNet wnids.

The class lists in zoo/data/lists are data: ImageNet's 1000 wnids in index order, and the 200 of
ImageNet-R and of ImageNet-A (from hendrycks/imagenet-r and hendrycks/natural-adv-examples: their
eval.py's `imagenet_r_wnids` and `thousand_k_to_200`); caltech101_{train,test}.txt.gz are
ssl-transfer's caltech101-splits (path, label; 30 training images per class).
"""

import gzip
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from zoo.catalog import IMAGENET_MEAN, IMAGENET_STD
from zoo.data.files import readable_folder_samples
from zoo.errors import ZooError

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
               "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def transfer_transform(size, normalise=True):
    """ssl-transfer's preprocessing: the PIL image resized (short side) to `size` with bicubic
    interpolation, centre-cropped to `size`, scaled to [0, 1] and normalised with ImageNet's
    statistics (`normalise=False`: their --no-norm, for SimCLR's weights)."""
    import torchvision.transforms.v2 as T

    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalise else ((0.0,) * 3, (1.0,) * 3)
    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size), T.ToImage(),
                      T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)])


def list_file(name):
    """The lines of zoo/data/lists/<name> (gzip-compressed when it ends in .gz)."""
    data = resources.files("zoo.data").joinpath("lists", name).read_bytes()
    return (gzip.decompress(data) if name.endswith(".gz") else data).decode().splitlines()


class ImageList(Dataset):
    """(path, label) pairs: the RGB image, transformed, and its label (an int, or a vector for VOC)."""

    def __init__(self, samples, transform, classes=None):
        self.samples, self.transform, self.classes = list(samples), transform, classes

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
        return self.transform(image), label


def need(path, dataset, layout):
    if not Path(path).exists():
        raise ZooError(f"{dataset}: {path} is missing; put the files in this layout: {layout}")
    return Path(path)


# ---- readers, one per data set: (folder DIR/<name>, split, transform, download) -> Dataset ----
def cifar_reader(cls):
    def build(folder, split, transform, download):
        try:
            return cls(str(folder), train=split == "train", transform=transform, download=download)
        except RuntimeError as err:
            raise FileNotFoundError(str(err)) from None

    return build


def flowers_reader(folder, split, transform, download):
    from scipy.io import loadmat

    if download:
        from torchvision.datasets import Flowers102

        Flowers102(str(folder), download=True)
    base = folder / "flowers-102"
    ids = loadmat(need(base / "setid.mat", "flowers102", LAYOUTS["flowers102"]), squeeze_me=True)
    ids = np.atleast_1d(ids[{"train": "trnid", "val": "valid", "test": "tstid"}[split]])
    labels = np.atleast_1d(loadmat(base / "imagelabels.mat", squeeze_me=True)["labels"])
    return ImageList([(base / "jpg" / f"image_{i:05d}.jpg", int(labels[i - 1]) - 1) for i in ids], transform)


def caltech101_reader(folder, split, transform, download):
    if download:
        from torchvision.datasets import Caltech101

        Caltech101(str(folder), download=True)
    images = need(folder / "caltech101" / "101_ObjectCategories", "caltech101", LAYOUTS["caltech101"])
    samples = [(images / path, int(label)) for path, label in (line.rsplit(" ", 1) for line in list_file(f"caltech101_{split}.txt.gz"))]
    present = [sample for sample in samples if sample[0].is_file()]
    if not present:
        raise FileNotFoundError(f"none of the {len(samples)} images of ssl-transfer's Caltech-101 {split} list is under {images}")
    return ImageList(present, transform)


def sun397_reader(folder, split, transform, download):
    if download:
        from torchvision.datasets import SUN397

        SUN397(str(folder), download=True)
    base = folder / "SUN397"
    classes = sorted(line[3:].strip() for line in need(base / "ClassName.txt", "sun397", LAYOUTS["sun397"]).read_text().splitlines()
                     if line.strip())
    index = {name: i for i, name in enumerate(classes)}
    listing = need(base / f"{'Training' if split == 'train' else 'Testing'}_01.txt", "sun397", LAYOUTS["sun397"])
    samples = []
    for line in listing.read_text().split():
        relative = line.strip().lstrip("/")  # /a/abbey/sun_xxx.jpg: the class is the path between the letter and the file
        samples.append((base / relative, index["/".join(relative.split("/")[1:-1])]))
    return ImageList(samples, transform, classes)


def voc2007_reader(folder, split, transform, download):
    """ssl-transfer's VOC2007 classification: ImageSets/Main/<class>_<split>.txt; a label of 1 is
    positive, -1 (absent) and 0 (difficult) are negative."""
    if download:
        from torchvision.datasets import VOCDetection

        VOCDetection(str(folder), year="2007", image_set="test" if split == "test" else "trainval", download=True)
    base = need(folder / "VOCdevkit" / "VOC2007", "voc2007", LAYOUTS["voc2007"])
    labels = {}
    for c, name in enumerate(VOC_CLASSES):
        for line in need(base / "ImageSets" / "Main" / f"{name}_{split}.txt", "voc2007", LAYOUTS["voc2007"]).read_text().splitlines():
            if line.strip():
                image, value = line.split()[0], int(line.split()[-1])
                labels.setdefault(image, np.zeros(len(VOC_CLASSES), dtype=np.int64))[c] = value == 1
    return ImageList([(base / "JPEGImages" / f"{image}.jpg", vector) for image, vector in labels.items()], transform,
                     list(VOC_CLASSES))


def birdsnap_reader(folder, split, transform, download):
    """Birdsnap 1.1's lists: images.txt (tab-separated, a header; path and species_id), the test
    images in test_images.txt (a header, then paths); the training split is every other image.
    Only the images present under download/images count (Flickr has lost some)."""
    rows = need(folder / "images.txt", "birdsnap", LAYOUTS["birdsnap"]).read_text().splitlines()
    header = rows[0].split("\t")
    path_at, species_at = header.index("path"), header.index("species_id")
    test = set(need(folder / "test_images.txt", "birdsnap", LAYOUTS["birdsnap"]).read_text().split()[1:])
    images = folder / "download" / "images"
    samples = [(images / fields[path_at], int(fields[species_at]) - 1) for fields in (row.split("\t") for row in rows[1:] if row)
               if (fields[path_at] in test) == (split == "test")]
    present = [sample for sample in samples if sample[0].is_file()]
    if len(present) < len(samples):
        print(f"notice: birdsnap {split}: {len(samples) - len(present)} of {len(samples)} listed images are missing under {images}")
    return ImageList(present, transform)


def _tv(name, **fixed):
    """A torchvision data set class called with `split` mapped by `fixed['splits']`."""
    from torchvision import datasets

    splits = fixed.pop("splits", {})

    def build(folder, split, transform, download):
        try:
            return getattr(datasets, name)(str(folder), split=splits.get(split, split), transform=transform,
                                           download=download, **fixed)
        except RuntimeError as err:
            raise FileNotFoundError(str(err)) from None

    return build


@dataclass(frozen=True)
class TransferSet:
    """A data set of the transfer suites: how it is read, scored and split."""

    read: object  # (folder, split, transform, download) -> Dataset
    metric: str  # top1 | mean_per_class | map11 (ssl-transfer's 'accuracy', 'mean per-class accuracy', 'mAP')
    has_val: bool  # a predefined validation split; else one is drawn from the training split
    downloads: bool  # torchvision can fetch it (transfer.download=true)


def _cifar10(folder, split, transform, download):
    from torchvision.datasets import CIFAR10

    return cifar_reader(CIFAR10)(folder, split, transform, download)


def _cifar100(folder, split, transform, download):
    from torchvision.datasets import CIFAR100

    return cifar_reader(CIFAR100)(folder, split, transform, download)


# The files each data set needs under DIR/<name> (torchvision's layout where it has the class).
LAYOUTS = {
    "food101": "food101/food-101/{meta/train.json,meta/test.json,images/<class>/<id>.jpg}",
    "cifar10": "cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
    "cifar100": "cifar100/cifar-100-python/{train,test,meta}",
    "birdsnap": "birdsnap/{images.txt,test_images.txt,download/images/<path from images.txt>} (Birdsnap 1.1 and its get_birdsnap.py)",
    "sun397": "sun397/SUN397/{ClassName.txt,Training_01.txt,Testing_01.txt,<letter>/<class>/sun_*.jpg} "
              "(the images, and the partition files of SUN397's Partitions.zip)",
    "cars": "cars/stanford_cars/{devkit/cars_meta.mat,devkit/cars_train_annos.mat,cars_test_annos_withlabels.mat,"
            "cars_train/*.jpg,cars_test/*.jpg}",
    "aircraft": "aircraft/fgvc-aircraft-2013b/data/{variants.txt,images_variant_{train,val,test}.txt,images/<id>.jpg}",
    "voc2007": "voc2007/VOCdevkit/VOC2007/{JPEGImages/<id>.jpg,ImageSets/Main/<class>_{train,val,test}.txt}",
    "dtd": "dtd/dtd/dtd/{images/<class>/<name>.jpg,labels/{train,val,test}1.txt}",
    "pets": "pets/oxford-iiit-pet/{images/<id>.jpg,annotations/{trainval,test}.txt}",
    "caltech101": "caltech101/caltech101/101_ObjectCategories/<class>/image_<n>.jpg (the split is ssl-transfer's list)",
    "flowers102": "flowers102/flowers-102/{jpg/image_<n>.jpg,imagelabels.mat,setid.mat}",
}

CATALOG = {
    "food101": TransferSet(_tv("Food101"), "top1", False, True),
    "cifar10": TransferSet(_cifar10, "top1", False, True),
    "cifar100": TransferSet(_cifar100, "top1", False, True),
    "birdsnap": TransferSet(birdsnap_reader, "top1", False, False),
    "sun397": TransferSet(sun397_reader, "top1", False, True),
    "cars": TransferSet(_tv("StanfordCars"), "top1", False, False),  # torchvision's download link is dead
    "aircraft": TransferSet(_tv("FGVCAircraft", annotation_level="variant"), "mean_per_class", True, True),
    "voc2007": TransferSet(voc2007_reader, "map11", True, True),
    "dtd": TransferSet(_tv("DTD", partition=1), "top1", True, True),
    "pets": TransferSet(_tv("OxfordIIITPet", splits={"train": "trainval"}), "mean_per_class", False, True),
    "caltech101": TransferSet(caltech101_reader, "mean_per_class", False, True),
    "flowers102": TransferSet(flowers_reader, "mean_per_class", True, True),
}
SUITE_DATASETS = tuple(CATALOG)


# ---- custom ImageFolder data sets ------------------------------------------------------------
def custom_layout(folder):
    return f"{folder}/train/<class>/<image> and {folder}/val/<class>/<image> or {folder}/test/<class>/<image>"


def custom_splits(folder):
    """A custom folder's (test split, validation split or None = drawn from train)."""
    test = "test" if (folder / "test").is_dir() else "val"
    return test, ("val" if test == "test" and (folder / "val").is_dir() else None)


def custom_reader(folder, split, transform, download):
    from torchvision.datasets import ImageFolder


    test, val = custom_splits(folder)
    directory = folder / {"train": "train", "val": val, "test": test}[split]
    if not (folder / "train").is_dir() or not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    dataset = ImageFolder(str(directory), transform=transform)
    dataset.samples = list(readable_folder_samples(tuple(dataset.samples)))
    return dataset


def resolve(name, root):
    """(TransferSet, its folder) of a data set name under transfer.root: a catalog name, `folder`
    (root itself is an ImageFolder-style data set) or the name of a folder under root that is one."""
    if root is None:
        raise ZooError("transfer.root is not set: pass transfer.root=DIR, with each data set under DIR/<name> "
                       f"({', '.join(SUITE_DATASETS)}, or an ImageFolder-style folder)")
    root = Path(root).expanduser()
    if name in CATALOG:
        return CATALOG[name], root / name
    folder = root if name == "folder" else root / name
    if (folder / "train").is_dir():
        test, val = custom_splits(folder)
        if (folder / test).is_dir():
            return TransferSet(custom_reader, "top1", val is not None, False), folder
    if name == "folder" or folder.is_dir():
        raise ZooError(f"{folder} is not an ImageFolder-style data set: expected {custom_layout(folder)}")
    raise ZooError(f"unknown transfer data set '{name}' (no folder {folder}): choose from {', '.join(SUITE_DATASETS)}, "
                   f"'folder' (transfer.root is one data set) or a folder DIR/<name> laid out as {custom_layout('DIR/<name>')}")


def check_present(name, root, download=False):
    """One `error:` line, before any model or data is built, when data set `name` has no folder under
    `root` (and is not to be downloaded there)."""
    spec, folder = resolve(name, root)
    if download and not spec.downloads:
        raise ZooError(f"{name} cannot be downloaded by torchvision: put the files in this layout: {layout_of(name, folder)}")
    if not folder.is_dir() and not download:
        fetch = " (or add transfer.download=true to fetch it there)" if spec.downloads else ""
        raise ZooError(f"{name} not found: {folder} is missing; put the files in this layout: {layout_of(name, folder)}{fetch}")


def layout_of(name, folder):
    return f"{folder.parent}/{LAYOUTS[name]}" if name in LAYOUTS else custom_layout(folder)


def open_split(name, root, split, transform, download=False):
    """The `split` (train | val | test) of data set `name` under `root`, or one `error:` line that says
    where to put the files (and that transfer.download=true fetches those torchvision can)."""
    check_present(name, root, download)
    spec, folder = resolve(name, root)
    try:
        return spec.read(folder, split, transform, download)
    except (FileNotFoundError, NotADirectoryError, KeyError, IndexError, ValueError) as err:
        if isinstance(err, ZooError):
            raise
        fetch = " (or add transfer.download=true to fetch it there)" if spec.downloads and not download else ""
        raise ZooError(f"{name} not readable under {folder} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                       f"put the files in this layout: {layout_of(name, folder)}{fetch}") from None


def drawn_validation(count, fraction, seed):
    """ssl-transfer's validation split of a data set without one: the indices 0..count-1 shuffled
    with numpy's global generator seeded `seed`; the first floor(fraction x count) are validation
    images, the rest training images -> (train indices, validation indices)."""
    indices = list(range(count))
    np.random.RandomState(seed).shuffle(indices)  # = np.random.seed(seed); np.random.shuffle(indices)
    split = int(np.floor(fraction * count))
    return indices[split:], indices[:split]


# ---- distribution shift: ImageNet-V2 / -R / -A / -Sketch --------------------------------------
@dataclass(frozen=True)
class ShiftSet:
    layout: str
    subset: str | None  # the file of the wnids its classes are restricted to (None: all 1000)
    index_folders: bool = False  # ImageNet-V2 names its class folders 0..999 (ImageNet's class index)


SHIFTS = {
    "imagenet-v2": ShiftSet("imagenet-v2/<0..999>/<image> (imagenetv2-matched-frequency-format-val, folders named by class index)",
                            None, index_folders=True),
    "imagenet-r": ShiftSet("imagenet-r/<wnid>/<image> (200 classes)", "imagenet_r_wnids.txt"),
    "imagenet-a": ShiftSet("imagenet-a/<wnid>/<image> (200 classes)", "imagenet_a_wnids.txt"),
    "imagenet-sketch": ShiftSet("imagenet-sketch/<wnid>/<image> (ImageNet-Sketch's sketch/ folder)", None),
}


def check_shift_present(name, root, download=False):
    if name not in SHIFTS:
        raise ZooError(f"unknown shift data set '{name}': choose from {', '.join(SHIFTS)}")
    if root is None:
        raise ZooError(f"transfer.root is not set: pass transfer.root=DIR with {SHIFTS[name].layout} under it")
    if not (Path(root).expanduser() / name).is_dir():
        raise ZooError(f"{name} not found: put it in this layout: {Path(root).expanduser()}/{SHIFTS[name].layout}")


def shift_dataset(name, root, transform):
    """An ImageNet shift set as (ImageList labelled with the wnid index in ImageNet's 1000, the wnids
    its classes are restricted to: ImageNet-R's or -A's 200, or all 1000)."""
    check_shift_present(name, root)
    spec, folder = SHIFTS[name], Path(root).expanduser() / name
    from torchvision.datasets import ImageFolder

    wnids = list_file("imagenet_wnids.txt")
    folders = ImageFolder(str(folder))
    names = [wnids[int(c)] if spec.index_folders else c for c in folders.classes]
    unknown = [c for c in names if c not in wnids]
    if unknown:
        raise ZooError(f"{folder}/{unknown[0]} is not an ImageNet class: expected {Path(root).expanduser()}/{spec.layout}")
    index = {wnid: i for i, wnid in enumerate(wnids)}
    samples = [(path, index[names[label]]) for path, label in folders.samples]
    return ImageList(samples, transform), list_file(spec.subset) if spec.subset else wnids
