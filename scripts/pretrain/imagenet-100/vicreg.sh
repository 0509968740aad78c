#!/usr/bin/env bash
# VICReg on ImageNet-100: ResNet-18, 2 views, 400 epochs (solo-learn's published config).
# Source: vturrisi/solo-learn scripts/pretrain/imagenet-100/vicreg.yaml (recipes.md §4).
# Protocol: solo-learn online probe (summary.json); LP-SOLO, lr 0.3 (scripts/linear/imagenet-100/vicreg.sh).
# Target: 79.22 online / 79.40 offline top-1 (solo-learn README).
# method.var=50: solo-learn sums the two views' variance terms with weight 25; zoo's loss averages them (FB).
set -euo pipefail
source "$(dirname "$0")/../../_common.sh"
setup_pretrain 256 2 1 "$@"  # global batch 256 = 2 GPUs x 128 (NUM_GPUS / NUM_NODES change the split only)
exec "$PYTHON" "$ZOO_ROOT/main_pretrain.py" "${ZOO_ARGS[@]}" \
  method=vicreg data.name=imagenet100 data.num_workers=8 augment=solo_vic \
  backbone.name=resnet18 backbone.small_stem=false backbone.zero_init_residual=false \
  'method.proj_hidden=[2048,2048]' method.proj_out=2048 method.proj_hidden_bias=true method.proj_last_bias=true \
  method.sim=25 method.var=50 method.cov=1 \
  optimizer.name=lars optimizer.lr=0.3 optimizer.weight_decay=1e-4 optimizer.lars_eta=0.02 optimizer.lars_clip=true optimizer.exclude_bias_and_norm=true optimizer.probe_lr=0.1 \
  scheduler.name=cosine scheduler.interval=step scheduler.warmup_epochs=10 scheduler.warmup_rule=endpoints scheduler.warmup_start_lr=3e-5 scheduler.final_factor=0 \
  trainer.max_epochs=400 trainer.precision=16-mixed trainer.sync_batchnorm=true \
  "${USER_ARGS[@]}"
