#!/usr/bin/env bash
# Shuffled-DBN on Tiny-ImageNet under the W-MSE protocol: ResNet-18, 2 views, 1000 epochs (the CW-RGP code).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/tiny-imagenet/shuffled_dbn.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain tiny-imagenet/shuffled_dbn "$@"
