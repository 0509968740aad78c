"""Mask R-CNN with a ResNet-50-C4 backbone, built from torchvision parts.

The layout of detectron2's R50-C4 as MoCo configures it (Base-RCNN-C4-BN.yaml):
stem + res2..res4 form the trunk (one stride-16 map, "res4"); the RPN runs on res4 with
anchors 32..512 and aspect ratios 0.5/1/2; each RoI is pooled to 14x14 (ROIAlignV2), run
through res5 (layer4) followed by an extra BN (MoCo's Res5ROIHeadsExtraNorm); the box
predictor sees the average-pooled res5 output, the mask head upsamples the 7x7 res5 output
to 14x14 (deconv 256 + ReLU + 1x1 conv per class).
"""

from collections import OrderedDict

import torch
import torchvision
from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss, maskrcnn_inference, maskrcnn_loss
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FrozenBatchNorm2d, roi_align

RES4_STRIDE = 16
RES4_CHANNELS = 1024
RES5_CHANNELS = 2048
POOLER_RESOLUTION = 14
MASK_HEAD_CHANNELS = 256
ANCHOR_SIZES = (32, 64, 128, 256, 512)
ANCHOR_ASPECT_RATIOS = (0.5, 1.0, 2.0)
# MoCo's coco_R_50_C4_2x_moco.yaml: RGB input normalised with the ImageNet mean and std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Norm layers whose parameters are trained (and get weight_decay_norm).
TRAINABLE_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm)


class ResNetC4Trunk(nn.Sequential):
    """Stem and res2..res4 of a torchvision ResNet, keeping its parameter names; returns {"res4": map}."""

    out_channels = RES4_CHANNELS

    def __init__(self, resnet):
        names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")
        super().__init__(OrderedDict((name, getattr(resnet, name)) for name in names))

    def forward(self, images):
        return OrderedDict(res4=super().forward(images))


class Res5RoIHeads(RoIHeads):
    """detectron2's Res5ROIHeads on torchvision's RoIHeads machinery (proposal sampling, box
    coding, NMS): box and mask branches share one res5 pass per RoI, as in detectron2."""

    def __init__(self, res5, num_classes, cfg):
        box_predictor = FastRCNNPredictor(RES5_CHANNELS, num_classes + 1)  # +1: background
        # detectron2's FastRCNNOutputLayers and mask predictor initialisation.
        nn.init.normal_(box_predictor.cls_score.weight, std=0.01)
        nn.init.normal_(box_predictor.bbox_pred.weight, std=0.001)
        for layer in (box_predictor.cls_score, box_predictor.bbox_pred):
            nn.init.zeros_(layer.bias)
        super().__init__(
            box_roi_pool=None,
            box_head=None,
            box_predictor=box_predictor,
            fg_iou_thresh=0.5,
            bg_iou_thresh=0.5,
            batch_size_per_image=cfg.roi_batch_size_per_image,
            positive_fraction=0.25,
            bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
            score_thresh=0.05,
            nms_thresh=0.5,
            detections_per_img=cfg.detections_per_image,
        )
        self.res5 = res5
        self.mask_head = MaskRCNNPredictor(RES5_CHANNELS, MASK_HEAD_CHANNELS, num_classes + 1)
        nn.init.normal_(self.mask_head.mask_fcn_logits.weight, std=0.001)

    def res5_features(self, features, boxes):
        """ROIAlignV2 (aligned=True, adaptive sampling) of res4 to 14x14, then res5: (R, 2048, 7, 7)."""
        pooled = roi_align(features["res4"], boxes, POOLER_RESOLUTION, 1.0 / RES4_STRIDE, sampling_ratio=0, aligned=True)
        return self.res5(pooled)

    def forward(self, features, proposals, image_shapes, targets=None):
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        roi_features = self.res5_features(features, proposals)
        class_logits, box_regression = self.box_predictor(roi_features.mean(dim=(2, 3)))

        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            # The mask loss is defined on foreground RoIs only; their res5 features are reused.
            foreground = [image_labels > 0 for image_labels in labels]
            mask_logits = self.mask_head(roi_features[torch.cat(foreground)])
            loss_mask = maskrcnn_loss(
                mask_logits,
                [boxes[keep] for boxes, keep in zip(proposals, foreground)],
                [target["masks"] for target in targets],
                [target["labels"] for target in targets],
                [idxs[keep] for idxs, keep in zip(matched_idxs, foreground)],
            )
            return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg, "loss_mask": loss_mask}

        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        mask_probs = maskrcnn_inference(self.mask_head(self.res5_features(features, boxes)), labels)
        return [{"boxes": b, "scores": s, "labels": c, "masks": m} for b, s, c, m in zip(boxes, scores, labels, mask_probs)], {}


def build_mask_rcnn_c4(resnet50_state_dict, num_classes, cfg):
    """Mask R-CNN R50-C4 whose trunk and res5 start from `resnet50_state_dict` (torchvision names, no fc).

    cfg.norm == "SyncBN": every BN is trained (convert to SyncBatchNorm for multi-GPU);
    "FrozenBN": BN statistics and affine parameters stay as pretrained.
    """
    norm_layer = nn.BatchNorm2d if cfg.norm == "SyncBN" else FrozenBatchNorm2d
    resnet = torchvision.models.resnet50(weights=None, norm_layer=norm_layer)
    resnet.fc = nn.Identity()
    resnet.load_state_dict(resnet50_state_dict)  # strict: convert.py checked every key

    res5 = resnet.layer4
    res5.add_module("norm", norm_layer(RES5_CHANNELS))  # MoCo's Res5ROIHeadsExtraNorm

    anchor_generator = AnchorGenerator((ANCHOR_SIZES,), (ANCHOR_ASPECT_RATIOS,))
    rpn = RegionProposalNetwork(
        anchor_generator,
        RPNHead(RES4_CHANNELS, anchor_generator.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_top_n={"training": cfg.rpn_pre_nms_top_n_train, "testing": cfg.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": cfg.rpn_post_nms_top_n_train, "testing": cfg.rpn_post_nms_top_n_test},
        nms_thresh=0.7,
    )
    # Training draws the short side from min_sizes_train per image; testing uses the last (largest).
    transform = GeneralizedRCNNTransform(
        min_size=tuple(sorted(cfg.min_sizes_train)),
        max_size=cfg.max_size,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    return GeneralizedRCNN(ResNetC4Trunk(resnet), rpn, Res5RoIHeads(res5, num_classes, cfg), transform)
