"""COCO detection transfer: Mask R-CNN R50-C4 as in the MoCo, INTL and CW-RGP papers."""
