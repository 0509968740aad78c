#!/usr/bin/env bash
# MMCR on CIFAR-10: ResNet-50 (CIFAR stem), 40 views of batch 32, 500 epochs, Adam (the repository defaults).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/mmcr.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/mmcr "$@"
