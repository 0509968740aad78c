#!/usr/bin/env bash
# BYOL on Tiny-ImageNet under the W-MSE protocol: ResNet-18, 2 views, 1000 epochs (htdt/self-supervised).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/tiny-imagenet/byol_wmse_protocol.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/byol_wmse_protocol "$@"
