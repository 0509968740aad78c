#!/usr/bin/env bash
# Mixed Barlow Twins on STL-10: ResNet-18, 2 views + 1 mixed, 2000 epochs, batch 256 (the official script).
# The recipe, its source, protocol and paper target: zoo/configs/experiment/stl10/mix_bt.yaml
exec bash "$(dirname "$0")/../../_launch.sh" pretrain stl10/mix_bt "$@"
