"""Tiny fake copies of the transfer data sets, each written in the on-disk layout its reader expects
(torchvision's source for the ones torchvision reads; ssl-transfer's, Birdsnap's, SUN397's, VOC's own
lists for the others): a few small JPEGs per class, coloured by class so a linear probe can learn them."""

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.data.transfer import VOC_CLASSES, list_file

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (200, 200, 40)]
SPLIT_COUNTS = {"train": 6, "val": 3, "test": 3}  # images per class


def image(path, label, index, size=(20, 16)):
    """A small JPEG, its colour the class's with a little seeded noise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.RandomState(index * 31 + label).randint(-30, 30, size=(size[1], size[0], 3))
    pixels = np.clip(np.array(COLOURS[label % len(COLOURS)])[None, None] + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=95)


def per_split(classes, splits=("train", "val", "test")):
    """(split, label, index) of every fake image, indices unique over splits."""
    index = 0
    for split in splits:
        for label in range(classes):
            for _ in range(SPLIT_COUNTS[split]):
                yield split, label, index
                index += 1


def food101(root, classes=3):
    base = Path(root) / "food101" / "food-101"
    meta = {"train": {}, "test": {}}
    for split, label, i in per_split(classes, ("train", "test")):
        name = f"dish_{label}"
        meta[split].setdefault(name, []).append(f"{name}/{i}")
        image(base / "images" / name / f"{i}.jpg", label, i)
    (base / "meta").mkdir(parents=True)
    for split, listing in meta.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(listing))


def cifar(root, name="cifar10", classes=3):
    """torchvision's pickled batches (their md5 sums differ from the real files: a test lets them through)."""
    folder = Path(root) / name / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    key = "labels" if name == "cifar10" else "fine_labels"
    batches = {"train": [], "test": []}
    for split, label, i in per_split(classes, ("train", "test")):
        noise = np.random.RandomState(i).randint(-30, 30, size=(32, 32, 3))
        pixels = np.clip(np.array(COLOURS[label % len(COLOURS)])[None, None] + noise, 0, 255).astype(np.uint8)
        batches[split].append((pixels.transpose(2, 0, 1).reshape(-1), label))

    def dump(path, items):
        with open(folder / path, "wb") as f:
            pickle.dump({"data": np.stack([x for x, _ in items]), key: [y for _, y in items]}, f)

    if name == "cifar10":
        train = batches["train"]
        for b in range(5):
            dump(f"data_batch_{b + 1}", train[b::5])
        dump("test_batch", batches["test"])
        with open(folder / "batches.meta", "wb") as f:
            pickle.dump({"label_names": [f"c{c}" for c in range(10)]}, f)
    else:
        dump("train", batches["train"])
        dump("test", batches["test"])
        with open(folder / "meta", "wb") as f:
            pickle.dump({"fine_label_names": [f"c{c}" for c in range(100)]}, f)


def birdsnap(root, classes=3, missing=1):
    """images.txt / test_images.txt as Birdsnap 1.1; the last `missing` listed images are not downloaded."""
    base = Path(root) / "birdsnap"
    base.mkdir(parents=True)
    rows, test = ["url\tmd5\tpath\tspecies_id\tbb_x1\tbb_y1\tbb_x2\tbb_y2"], ["path"]
    listed = list(per_split(classes, ("train", "test")))
    for n, (split, label, i) in enumerate(listed):
        path = f"Bird_{label}/{i}.jpg"
        rows.append(f"http://x/{i}.jpg\t0\t{path}\t{label + 1}\t0\t0\t5\t5")
        if split == "test":
            test.append(path)
        if n < len(listed) - missing:
            image(base / "download" / "images" / path, label, i)
    (base / "images.txt").write_text("\n".join(rows) + "\n")
    (base / "test_images.txt").write_text("\n".join(test) + "\n")


def sun397(root, classes=3):
    names = (["/a/abbey", "/a/apartment_building/outdoor", "/b/beach", "/c/canyon"] + [f"/p/place{c}" for c in range(4, classes)])[:classes]
    base = Path(root) / "sun397" / "SUN397"
    base.mkdir(parents=True)
    (base / "ClassName.txt").write_text("\n".join(names) + "\n")
    lists = {"train": [], "test": []}
    for split, label, i in per_split(classes, ("train", "test")):
        path = f"{names[label]}/sun_{i:05d}.jpg"
        lists[split].append(path)
        image(base / path.lstrip("/"), label, i)
    (base / "Training_01.txt").write_text("\n".join(lists["train"]) + "\n")
    (base / "Testing_01.txt").write_text("\n".join(lists["test"]) + "\n")


def _savemat(path, values):
    from scipy.io import savemat

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), values)


def cars(root, classes=3):
    base = Path(root) / "cars" / "stanford_cars"
    records = {"train": [], "test": []}
    for split, label, i in per_split(classes, ("train", "test")):
        fname = f"{i:05d}.jpg"
        records[split].append((1, 1, 10, 10, label + 1, fname))  # class ids start from 1
        image(base / f"cars_{split}" / fname, label, i)
    kind = [("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"), ("bbox_y2", "O"), ("class", "O"), ("fname", "O")]
    _savemat(base / "devkit" / "cars_train_annos.mat", {"annotations": np.array(records["train"], dtype=kind)[None]})
    _savemat(base / "cars_test_annos_withlabels.mat", {"annotations": np.array(records["test"], dtype=kind)[None]})
    _savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array([f"Car {c}" for c in range(classes)], dtype=object)[None]})


def aircraft(root, classes=3):
    data = Path(root) / "aircraft" / "fgvc-aircraft-2013b" / "data"
    names = [f"Boeing 7{c}7" for c in range(classes)]  # names hold spaces, as the real variants
    lists = {"train": [], "val": [], "test": []}
    for split, label, i in per_split(classes):
        lists[split].append(f"{i:07d} {names[label]}")
        image(data / "images" / f"{i:07d}.jpg", label, i)
    (data / "variants.txt").write_text("\n".join(names) + "\n")
    for split, lines in lists.items():
        (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")


def voc2007(root, classes=3):
    """Every image positive for class `label` (1), one 'difficult' (0) mark per split, -1 elsewhere."""
    base = Path(root) / "voc2007" / "VOCdevkit" / "VOC2007"
    lines = {(split, c): [] for split in SPLIT_COUNTS for c in VOC_CLASSES}
    for split, label, i in per_split(classes):
        name = f"{i:06d}"
        image(base / "JPEGImages" / f"{name}.jpg", label, i)
        for c, cls in enumerate(VOC_CLASSES):
            value = 1 if c == label else (0 if (c == label + 1 and i % 5 == 0) else -1)
            lines[(split, cls)].append(f"{name} {value:2d}")
    (base / "ImageSets" / "Main").mkdir(parents=True)
    for (split, cls), rows in lines.items():
        (base / "ImageSets" / "Main" / f"{cls}_{split}.txt").write_text("\n".join(rows) + "\n")


def dtd(root, classes=3):
    data = Path(root) / "dtd" / "dtd" / "dtd"
    lists = {"train": [], "val": [], "test": []}
    for split, label, i in per_split(classes):
        path = f"texture{label}/texture{label}_{i:04d}.jpg"
        lists[split].append(path)
        image(data / "images" / path, label, i)
    (data / "labels").mkdir(parents=True)
    for split, rows in lists.items():
        (data / "labels" / f"{split}1.txt").write_text("\n".join(rows) + "\n")


def pets(root, classes=3):
    base = Path(root) / "pets" / "oxford-iiit-pet"
    lists = {"trainval": [], "test": []}
    for split, label, i in per_split(classes, ("train", "test")):
        name = f"breed{label}_{i}"
        lists["trainval" if split == "train" else "test"].append(f"{name} {label + 1} {1 + label % 2} 1")
        image(base / "images" / f"{name}.jpg", label, i)
    (base / "annotations").mkdir(parents=True)
    for split, rows in lists.items():
        (base / "annotations" / f"{split}.txt").write_text("\n".join(rows) + "\n")


def caltech101(root, classes=3, test_per_class=4):
    """The images of ssl-transfer's lists for the first `classes` classes (all their training images,
    `test_per_class` test images each); the other listed images are absent."""
    folder = Path(root) / "caltech101" / "caltech101" / "101_ObjectCategories"
    for split in ("train", "test"):
        taken = {}
        for line in list_file(f"caltech101_{split}.txt.gz"):
            path, label = line.rsplit(" ", 1)
            label = int(label)
            if label < classes and (split == "train" or taken.get(label, 0) < test_per_class):
                taken[label] = taken.get(label, 0) + 1
                image(folder / path, label, len(taken) * 1000 + taken[label] + (0 if split == "train" else 500))


def flowers102(root, classes=3):
    base = Path(root) / "flowers102" / "flowers-102"
    ids = {"trnid": [], "valid": [], "tstid": []}
    labels = []
    for split, label, i in per_split(classes):
        ids[{"train": "trnid", "val": "valid", "test": "tstid"}[split]].append(i + 1)
        labels.append(label + 1)
        image(base / "jpg" / f"image_{i + 1:05d}.jpg", label, i)
    _savemat(base / "setid.mat", {key: np.array(value)[None] for key, value in ids.items()})
    _savemat(base / "imagelabels.mat", {"labels": np.array(labels)[None]})


def image_folder(root, splits=("train", "val"), classes=3):
    for split, label, i in per_split(classes, splits):
        image(Path(root) / split / f"class{label}" / f"{i}.jpg", label, i)


WRITERS = {"food101": food101, "cifar10": cifar, "cifar100": lambda root, classes=3: cifar(root, "cifar100", classes), "birdsnap": birdsnap,
           "sun397": sun397, "cars": cars, "aircraft": aircraft, "voc2007": voc2007, "dtd": dtd, "pets": pets,
           "caltech101": caltech101, "flowers102": flowers102}
