"""COCO box and mask AP with pycocotools' COCOeval, reported as detectron2's COCOEvaluator does
(percent; NaN where COCOeval has no value), for a model spread over one or more processes."""

import math
import sys

import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.distributed as dist
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from downstream.detection.data import UnreadableImage, as_list, to_model_input
from zoo.errors import ZooError

IOU_TYPES = ("bbox", "segm")
METRIC_NAMES = ("AP", "AP50", "AP75")  # COCOeval.stats[0:3]
METRIC_KEYS = tuple(f"{iou_type}_{name}" for iou_type in IOU_TYPES for name in METRIC_NAMES)


def coco_results(detections, image_id, category_ids):
    """COCO result dicts of one image: box results and mask results, kept apart because
    COCO.loadRes would otherwise give mask results box areas (as detectron2 notes)."""
    boxes = detections["boxes"].cpu().clone()
    boxes[:, 2:] -= boxes[:, :2]  # xyxy -> xywh
    categories = [category_ids[label - 1] for label in detections["labels"].tolist()]
    scores = detections["scores"].tolist()
    # torchvision has already pasted the mask probabilities into the image; 0.5 binarises them.
    binary_masks = (detections["masks"][:, 0] > 0.5).cpu().numpy().astype(np.uint8)
    box_results, mask_results = [], []
    for box, category, score, mask in zip(boxes.tolist(), categories, scores, binary_masks):
        rle = mask_util.encode(np.asfortranarray(mask))
        rle["counts"] = rle["counts"].decode("ascii")
        common = {"image_id": image_id, "category_id": category, "score": score}
        box_results.append({**common, "bbox": box})
        mask_results.append({**common, "segmentation": rle})
    return {"bbox": box_results, "segm": mask_results}


def _share(dataset, rank, world_size, num_workers, batch_size=1):
    """A loader over this process's share of `dataset`: every world_size-th image from `rank`."""
    share = Subset(dataset, range(rank, len(dataset), world_size))
    return DataLoader(share, batch_size=batch_size, num_workers=num_workers, collate_fn=as_list)


def _progress(loader, desc, show):
    return tqdm(loader, desc=desc, disable=not show, file=sys.stdout, dynamic_ncols=True)


def _stop_if_unreadable(samples):
    for sample in samples:
        if isinstance(sample, UnreadableImage):
            raise ZooError(
                f"cannot decode test image {sample.path} ({sample.reason}); COCO AP needs every val image: restore the file"
            )


def check_test_images(dataset, rank=0, world_size=1, num_workers=0):
    """Decode every test image once before training, so a bad file stops the run now, not at the end."""
    for samples in _progress(_share(dataset, rank, world_size, num_workers, batch_size=8), "check val images", rank == 0):
        _stop_if_unreadable(samples)


@torch.inference_mode()
def predict(model, dataset, device, rank, world_size, num_workers, show_progress):
    """COCO results of this process's share of `dataset`."""
    model.eval()
    results = {iou_type: [] for iou_type in IOU_TYPES}
    for samples in _progress(_share(dataset, rank, world_size, num_workers), "evaluate", show_progress):
        _stop_if_unreadable(samples)
        detections = model([to_model_input(image, device) for image, _ in samples])
        for (_, target), image_detections in zip(samples, detections):
            for iou_type, items in coco_results(image_detections, target["image_id"], dataset.category_ids).items():
                results[iou_type].extend(items)
    return results


def coco_metrics(coco_gt, results):
    """{"bbox_AP": .., ..., "segm_AP75": ..} in percent, from pycocotools."""
    metrics = {}
    for iou_type in IOU_TYPES:
        if not results[iou_type]:
            print(f"warning: no {iou_type} detections; its metrics are NaN", file=sys.stderr)
            metrics.update({f"{iou_type}_{name}": math.nan for name in METRIC_NAMES})
            continue
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results[iou_type]), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        for name, value in zip(METRIC_NAMES, evaluator.stats):
            metrics[f"{iou_type}_{name}"] = float(value * 100) if value >= 0 else math.nan
    return metrics


def evaluate(model, dataset, device, rank=0, world_size=1, num_workers=0):
    """Run `model` on `dataset` across all processes; the metrics on rank 0, None elsewhere."""
    results = predict(model, dataset, device, rank, world_size, num_workers, show_progress=rank == 0)
    if world_size > 1:
        gathered = [None] * world_size
        dist.all_gather_object(gathered, results)
        results = {iou_type: [item for part in gathered for item in part[iou_type]] for iou_type in IOU_TYPES}
    return coco_metrics(dataset.coco, results) if rank == 0 else None
