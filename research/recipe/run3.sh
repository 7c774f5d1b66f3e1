#!/bin/bash
# Session 3: how much crop and rotation the demo-scale recipe tolerates on v2 (kit recipe, 5 epochs, 1 thread).
set -u
PY="/work/main/.venv/bin/python research/recipe/train.py"
export PYTHONPATH=$PWD OMP_NUM_THREADS=1
mkdir -p /tmp/research-recipe/logs
run() { name=$1; shift; $PY --name "$name" "$@" > /tmp/research-recipe/logs/$name.log 2>&1; }
run s1_v2_crop06_rot30 --crop 0.6 1 --rot 30 --mon-at 0,5
run s2_v2_crop1_rot30 --crop 1 1 --rot 30 --mon-at 0,5
run s3_v2_crop04_rot30 --crop 0.4 1 --rot 30 --mon-at 0,5
run s4_v2_crop06_rot5 --crop 0.6 1 --rot 5 --mon-at 0,5
