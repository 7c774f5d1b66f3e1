#!/bin/bash
# The runs of FINDINGS.md, one at a time (1 thread each). From the repository root: bash research/recipe/run.sh
set -u
PY="/work/main/.venv/bin/python research/recipe/train.py"
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
mkdir -p /tmp/research-recipe/logs
run() { name=$1; shift; $PY --name "$name" "$@" > /tmp/research-recipe/logs/$name.log 2>&1; }
run r0_v2paper_kit
run r1_v2paper_batchneg --negatives batch
run r2_v2mild_kit --crop 1 1 --rot 5
run r3_v2paper_sym --symmetric
run r4_v2paper_lr5e-4_m99 --lr 0.0005 --m 0.99
run r5_v2paper_lr5e-4_m999 --lr 0.0005 --m 0.999
run r6_v2paper_keybefore --key-before
run r7_v2mild_batchneg --crop 1 1 --rot 5 --negatives batch
