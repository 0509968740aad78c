#!/usr/bin/env bash
# Zero-CL (instance-wise) on Tiny-ImageNet under the W-MSE protocol: ResNet-18, 2 views, 1000 epochs (the CW-RGP code).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/tiny-imagenet/zero_cl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/zero_cl "$@"
