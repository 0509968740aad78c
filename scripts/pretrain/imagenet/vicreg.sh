#!/usr/bin/env bash
# VICReg on ImageNet: ResNet-50, 2 views, 1000 epochs (the official recipe).
# Source: facebookresearch/vicreg main_vicreg.py + README (recipes.md §5.2).
# Protocol: LP-FB-VIC (scripts/linear/imagenet/vicreg.sh); semi-supervised: vicreg_semi_{1,10}pct.sh.
# Target: 73.2 top-1 (vicreg README).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 2048 8 4 "$@"  # global batch 2048 = 4 nodes x 8 GPUs x 64 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=vicreg data.name=imagenet data.num_workers=8 augment=fb_asym \
  backbone.name=resnet50 backbone.small_stem=false backbone.zero_init_residual=true \
  'method.proj_hidden=[8192,8192]' method.proj_out=8192 method.proj_hidden_bias=true method.proj_last_bias=false \
  method.sim=25 method.var=25 method.cov=1 \
  optimizer.name=lars optimizer.lr=0.2 optimizer.weight_decay=1e-6 optimizer.lars_eta=0.001 optimizer.lars_clip=false optimizer.exclude_bias_and_norm=true \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=10 scheduler.warmup_rule=from_zero scheduler.final_factor=0.001 \
  trainer.max_epochs=1000 trainer.precision=16-mixed trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
