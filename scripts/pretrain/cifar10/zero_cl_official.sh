#!/usr/bin/env bash
# Zero-CL (feature-wise, whitened) on CIFAR-10: ResNet-18, 2 views, 1000 epochs, batch 256 (the official script).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/cifar10/zero_cl_official.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain cifar10/zero_cl_official "$@"
