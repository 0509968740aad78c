#!/usr/bin/env bash
# BYOL with a whitening layer (IterNorm) after the encoder on CIFAR-10: ResNet-18, 2 views, 201 epochs, batch 128 (Kalapos & Gyires-Toth, 2024).
# The recipe, its source, protocol and (missing) paper target: zoo/configs/experiment/cifar10/byol_whitening.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/byol_whitening "$@"
