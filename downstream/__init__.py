"""Downstream transfer of zoo checkpoints (detection, segmentation)."""
