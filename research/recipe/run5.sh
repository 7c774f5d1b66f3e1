#!/bin/bash
# Session 5: the runs session 4 left as "next" (warm-up, a smaller lr at batch 512, in-batch negatives at
# batch 512), all under the paper's augmentation (crop 0.2-1, rotation 30) on 4,096 v2 phantoms, 10 epochs.
cd "$(dirname "$0")/../.."
export PYTHONPATH=. RECIPE_THREADS=${RECIPE_THREADS:-2}
common="--ntrain 4096 --batch 512 --epochs 10 --wd 5e-4 --m 0.99 --T 0.1 --splits 8 --crop 0.2 1.0 --rot 30 --warmup 2 --mon-at 0,2,5,10"
.venv/bin/python research/recipe/train.py --name c3_b512_batchneg_warm_lr06 $common --lr 0.06 --negatives batch
.venv/bin/python research/recipe/train.py --name c4_b512_queue_warm_lr015 $common --lr 0.015 --K 4096
for r in c3_b512_batchneg_warm_lr06 c4_b512_queue_warm_lr015; do
  mkdir -p research/recipe/runs/$r && cp /tmp/research-recipe/runs/$r/* research/recipe/runs/$r/
done
