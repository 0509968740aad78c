#!/usr/bin/env bash
# Barlow Twins with a whitening layer (IterNorm) after the encoder on Tiny-ImageNet: ResNet-18, 2 views of 64 px, 201 epochs, batch 128 (Kalapos & Gyires-Toth, 2024).
# The recipe, its source, protocol and (missing) paper target: zoo/configs/experiment/tiny-imagenet/barlow_twins_whitening.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/barlow_twins_whitening "$@"
