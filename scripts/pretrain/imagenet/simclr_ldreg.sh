#!/usr/bin/env bash
# SimCLR with LDReg on ImageNet: ResNet-50, 2 views, 100 epochs, batch 2048 (the LDReg repository's recipe).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/imagenet/simclr_ldreg.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain imagenet/simclr_ldreg "$@"
