"""Training configs for train_coco.py, named after detectron2's (values from its defaults
plus MoCo's configs/Base-RCNN-C4-BN.yaml and coco_R_50_C4_2x.yaml)."""

import dataclasses
from dataclasses import dataclass

from zoo.errors import ZooError

NORMS = ("SyncBN", "FrozenBN")


@dataclass(frozen=True)
class DetectionConfig:
    # SOLVER.*: ims_per_batch is the total over all GPUs, as in detectron2.
    ims_per_batch: int = 16
    base_lr: float = 0.02
    max_iter: int = 180_000
    lr_steps: tuple[int, ...] = (120_000, 160_000)
    lr_gamma: float = 0.1
    warmup_iters: int = 1000
    warmup_factor: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    weight_decay_norm: float = 0.0
    checkpoint_period: int = 5000
    # INPUT.*: a short side drawn per image from min_sizes_train; tests use the largest one.
    min_sizes_train: tuple[int, ...] = (640, 672, 704, 736, 768, 800)
    max_size: int = 1333
    # MODEL.*: "SyncBN" trains every BN (synchronised across GPUs), "FrozenBN" keeps the
    # pretrained statistics and affine parameters fixed.
    norm: str = "SyncBN"
    rpn_pre_nms_top_n_train: int = 12000
    rpn_post_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 6000
    rpn_post_nms_top_n_test: int = 1000
    roi_batch_size_per_image: int = 512
    detections_per_image: int = 100
    # TEST.PRECISE_BN: recompute BN statistics on this many training batches before testing.
    precise_bn_iters: int = 200
    num_workers: int = 4
    log_period: int = 20
    seed: int = 0

    @property
    def min_size_test(self):
        return max(self.min_sizes_train)

    def scaled_to_batch(self, ims_per_batch):
        """The linear scaling rule of detectron2's REFERENCE_WORLD_SIZE: lr with the batch,
        iteration counts against it, so the number of epochs stays the same."""
        scale = ims_per_batch / self.ims_per_batch
        return dataclasses.replace(
            self,
            ims_per_batch=ims_per_batch,
            base_lr=self.base_lr * scale,
            max_iter=round(self.max_iter / scale),
            lr_steps=tuple(round(step / scale) for step in self.lr_steps),
            warmup_iters=round(self.warmup_iters / scale),
            checkpoint_period=max(1, round(self.checkpoint_period / scale)),
        )

    def validate(self):
        if self.norm not in NORMS:
            raise ZooError(f"norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.ims_per_batch < 1 or self.max_iter < 0 or not self.min_sizes_train:
            raise ZooError("ims_per_batch must be >= 1, max_iter >= 0 and min_sizes_train non-empty")
        return self


PAPER_2X = DetectionConfig()

CONFIGS = {
    # The protocol of MoCo, INTL and CW-RGP: COCO 2x, BN trained and synchronised.
    "coco_R_50_C4_2x": PAPER_2X,
    "coco_R_50_C4_1x": dataclasses.replace(PAPER_2X, max_iter=90_000, lr_steps=(60_000, 80_000)),
    # A pipeline check that runs in seconds on a CPU: tiny inputs, few RoIs. Not a benchmark.
    "cpu_smoke": dataclasses.replace(
        PAPER_2X,
        ims_per_batch=2,
        base_lr=0.002,
        max_iter=2,
        lr_steps=(),
        warmup_iters=0,
        checkpoint_period=1,
        min_sizes_train=(64, 96),
        max_size=128,
        rpn_pre_nms_top_n_train=200,
        rpn_post_nms_top_n_train=16,
        rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=16,
        roi_batch_size_per_image=8,
        detections_per_image=10,
        precise_bn_iters=1,
        num_workers=0,
        log_period=1,
    ),
}


def get_config(name):
    if name not in CONFIGS:
        raise ZooError(f"unknown detection config {name!r}; choose one of: {', '.join(CONFIGS)}")
    return CONFIGS[name]
