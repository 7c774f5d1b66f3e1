#!/bin/bash
# Session 6: the paper's crop (0.2-1) and rotation (30) with the colour jitter (and blur) switched off, on v2.
# Under these views a random ResNet-18 keeps twice the patient identity (criteria A2: decoding 0.37 against 0.18).
set -u
cd "$(dirname "$0")/../.."
PY=".venv/bin/python research/recipe/train.py"
export PYTHONPATH=$PWD OMP_NUM_THREADS=${RECIPE_THREADS:-1} RECIPE_THREADS=${RECIPE_THREADS:-1}
mkdir -p /tmp/research-recipe/logs
run() { name=$1; shift; $PY --name "$name" "$@" > /tmp/research-recipe/logs/$name.log 2>&1
        mkdir -p research/recipe/runs/$name && cp /tmp/research-recipe/runs/$name/* research/recipe/runs/$name/; }
run j_ctrl_v2paper_kit
run j0_v2paper_nojitter_noblur_kit --jitter-p 0 --blur-p 0
run j1_v2paper_nojitter_noblur_batchneg --jitter-p 0 --blur-p 0 --negatives batch
run j2_v2paper_nojitter_kit --jitter-p 0
