#!/usr/bin/env bash
# Zero-CL (feature-wise) on ImageNet-100: ResNet-18, 2 views, 400 epochs, batch 256 on one node (the official script).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet-100/zero_cl_official.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet-100/zero_cl_official "$@"
