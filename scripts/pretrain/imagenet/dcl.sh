#!/usr/bin/env bash
# DCL on ImageNet: ResNet-50, 2 views, 200 epochs, batch 256 (SimCLR's official recipe at the paper's batch and length).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/dcl.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/dcl "$@"
