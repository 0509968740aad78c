"""Data loading: the one reader of the data config (`data.*`).

`data_spec` turns the data config into a `DataSpec` once, with every default filled from the data
set's catalog entry (zoo.catalog); everything below takes the spec or plain arguments: the data sets
(zoo.data.datasets), the loader factory (zoo.data.loaders), the DALI loader (zoo.data.dali), and the
evaluations, which build their loaders through the same factory.
"""

from dataclasses import dataclass, replace

from zoo.catalog import dataset_info
from zoo.config import CropGroup
from zoo.data.augment import eval_transform, expand_crops, with_default_size
from zoo.data.datasets import Source, build_dataset
from zoo.data.loaders import Loaders, build_loaders, choose_loader, evaluation_sets, make_loader, worker_count
from zoo.errors import ZooError

__all__ = ["DataSpec", "Loaders", "build_loaders", "choose_loader", "data_spec", "eval_pipeline", "evaluation_sets",
           "make_loader", "resolved_views"]


@dataclass(frozen=True)
class DataSpec:
    """What the data config says, resolved: the images, their crops and normalisation, the evaluation
    transform's sizes, and the loaders' batch sizes and workers."""

    source: Source  # which images (name, root, ...)
    views: tuple[CropGroup, ...]  # the crop groups, every size filled in
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int  # the evaluation crop
    eval_resize_ratio: float  # evaluation: resize the short side to image_size x this, centre-crop image_size
    eval_interpolation: str
    batch_size: int  # per device
    eval_batch_size: int
    num_workers: int | None  # loader workers per process (DALI: threads); None = `workers` decides
    loader: str  # asked for: auto | dali | torchvision (zoo.data.loaders.choose_loader decides)

    @property
    def workers(self):
        """data.num_workers, or the CPUs this process may run on, at most 8 (zoo.data.loaders.worker_count)."""
        return worker_count(self.num_workers)

    @property
    def crops(self):
        """One `CropGroup` per crop, in crop order."""
        return expand_crops(self.views)

    def eval_transform(self):
        return _evaluation_transform(self.image_size, self.mean, self.std, self.eval_resize_ratio, self.eval_interpolation)

    def dataset(self, split, transform):
        """The images of `split` (train | train_labeled | val), each transformed by `transform`."""
        return build_dataset(self.source, split, transform)


def _views(data_cfg):
    """The crop groups with every size filled in (data.image_size, else the data set's), and the count of a
    one-group spec set by data.num_views."""
    views = with_default_size(data_cfg.views, data_cfg.image_size or dataset_info(data_cfg.name).image_size)
    if data_cfg.num_views is not None:
        if len(views) != 1:
            raise ZooError(f"data.num_views={data_cfg.num_views} sets the crop count of a one-group data.views, but it has "
                           f"{len(views)} groups: set each group's count in data.views instead")
        views = [replace(views[0], count=data_cfg.num_views)]
    if not expand_crops(views):
        raise ZooError("data.views holds no crop: give at least one group with count >= 1")
    return tuple(views)


def _evaluation(data_cfg):
    """The evaluation transform's values: size, mean, std, resize ratio and interpolation (unset: the data set's)."""
    info = dataset_info(data_cfg.name)
    return {"image_size": data_cfg.image_size or info.image_size, "mean": tuple(data_cfg.mean or info.mean),
            "std": tuple(data_cfg.std or info.std), "eval_resize_ratio": data_cfg.eval_resize_ratio or info.eval_resize_ratio,
            "eval_interpolation": info.eval_interpolation}


def _evaluation_transform(image_size, mean, std, eval_resize_ratio, eval_interpolation):
    return eval_transform(image_size, mean, std, resize_ratio=eval_resize_ratio, interpolation=eval_interpolation)


def _name(value):
    """A config name as plain text, whether the schema holds it as a string or as an Enum member."""
    return getattr(value, "name", value)


def data_spec(data_cfg):
    """The `DataSpec` of a data config (`data.*`): unset values are the data set's (zoo.catalog)."""
    return DataSpec(
        source=Source(name=data_cfg.name, root=data_cfg.root, download=data_cfg.download,
                      corrupt_images=_name(data_cfg.corrupt_images), test_fraction=data_cfg.digits_test_fraction,
                      labels=data_cfg.labels),
        views=_views(data_cfg),
        **_evaluation(data_cfg),
        batch_size=data_cfg.batch_size,
        eval_batch_size=data_cfg.eval_batch_size,
        num_workers=data_cfg.num_workers,
        loader=_name(data_cfg.loader),
    )


# What the recipes, exports and tables read of a data config (which may come from an older checkpoint or
# snapshot, without the keys added since): these read only their own keys.
def resolved_views(data_cfg):
    """The crop groups of a data config, every size filled in."""
    return list(_views(data_cfg))


def eval_pipeline(data_cfg):
    """The evaluation transform of a data config: resize, centre-crop, normalise."""
    return _evaluation_transform(**_evaluation(data_cfg))
