#!/bin/bash
# Follow-up runs (after run.sh): larger lr for in-batch negatives. From the repository root.
set -u
PY="/work/main/.venv/bin/python research/recipe/train.py"
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
run() { name=$1; shift; $PY --name "$name" "$@" > /tmp/research-recipe/logs/$name.log 2>&1; }
run r8_v2paper_batchneg_lr03 --negatives batch --lr 0.03
run r9_v2paper_batchneg_sym_lr03 --negatives batch --lr 0.03 --symmetric
run r10_v2paper_batchneg_lr03_10ep --negatives batch --lr 0.03 --epochs 10 --mon-at 0,5,10
