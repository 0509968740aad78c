#!/usr/bin/env bash
# SimSiam on ImageNet: ResNet-50, 2 views, 100 epochs, batch 512 (the official recipe).
# Source: facebookresearch/simsiam main_simsiam.py + README (recipes.md §5.2).
# Protocol: LP-SS-LARS (scripts/linear/imagenet/simsiam.sh).
# Target: 68.1 top-1 (simsiam README).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 512 8 1 "$@"  # global batch 512 = 8 GPUs x 64 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=simsiam data.name=imagenet data.num_workers=8 augment=mocov2 \
  backbone.name=resnet50 backbone.small_stem=false backbone.zero_init_residual=true \
  'method.proj_hidden=[2048,2048]' method.proj_out=2048 method.proj_hidden_bias=false method.proj_last_bn=true \
  method.pred_hidden=512 method.pred_fixed_lr=true \
  optimizer.name=sgd optimizer.lr=0.05 optimizer.momentum=0.9 optimizer.weight_decay=1e-4 optimizer.exclude_bias_and_norm=false \
  scheduler.name=cosine scheduler.interval=epoch scheduler.warmup_epochs=0 scheduler.warmup_steps=0 scheduler.final_factor=0 \
  trainer.max_epochs=100 trainer.precision=32-true trainer.sync_batchnorm=true trainer.check_val_every_n_epoch=10 \
  "${USER_ARGS[@]}"
