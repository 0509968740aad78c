#!/usr/bin/env bash
# Barlow Twins on ImageNet: ResNet-50, 2 views, 1000 epochs (the official recipe).
# Source: facebookresearch/barlowtwins main.py defaults + README (recipes.md §5.2).
# Protocol: LP-FB-BT (scripts/linear/imagenet/barlow_twins.sh); semi-supervised: barlow_twins_semi_1pct.sh.
# Target: 73.5 top-1 (barlowtwins README).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 2048 8 2 "$@"  # global batch 2048 = 2 nodes x 8 GPUs x 128 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=barlow_twins data.name=imagenet data.num_workers=8 augment=fb_asym \
  backbone.name=resnet50 backbone.small_stem=false backbone.zero_init_residual=true \
  'method.proj_hidden=[8192,8192]' method.proj_out=8192 method.proj_hidden_bias=false method.proj_last_bias=false \
  method.lambd=0.0051 method.scale_loss=1.0 \
  optimizer.name=lars optimizer.lr=0.2 optimizer.weight_decay=1e-6 optimizer.lars_eta=0.001 optimizer.lars_clip=false optimizer.exclude_bias_and_norm=true optimizer.bias_lr_factor=0.024 \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=10 scheduler.warmup_rule=from_zero scheduler.final_factor=0.001 \
  trainer.max_epochs=1000 trainer.precision=16-mixed trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
