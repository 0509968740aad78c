#!/usr/bin/env bash
# BYOL with a whitening layer (IterNorm) after the encoder on STL-10: ResNet-18, 2 views of 96 px, 201 epochs, batch 128 (Kalapos & Gyires-Toth, 2024).
# The recipe, its source, protocol and (missing) paper target: zoo/configs/experiment/stl10/byol_whitening.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/byol_whitening "$@"
