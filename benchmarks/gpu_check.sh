#!/usr/bin/env bash
# One prepared run of every GPU check. The training-cost ladder of benchmarks/train_step.py
# (samples/s of the training step's cheaper generator settings); its speed ladder with SD
# 1.5 inpainting at the paper's per-GPU batch (32 = 256 over 8 GPUs); SDXL inpainting and FLUX.1
# Fill at paper size (random weights built on the GPU, 1024 pixels) at a smaller batch; then the
# GPU-only tests (compiled UNet; each paper-size generator inpaints). Writes
# $OUT/paper_gpu*.json and $OUT/log. GENERATORS picks which (default: "sd sdxl flux-fill").
# On a machine without the project's packages, carry them as wheels in .whl/ (installed into
# /tmp/site); the project itself runs from this folder, uninstalled.
set -o pipefail
OUT=${OUT:-benchmarks/results}
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, diffusers, transformers; print('torch', torch.__version__, \
'diffusers', diffusers.__version__, 'transformers', transformers.__version__)"
    # settings start until the budget is spent; the JSON is rewritten after each, so a cut keeps it
    # first the training step's cheaper generator settings (README, Training cost), bf16, batch 32
    limit=${COST_LIMIT_SECONDS:-200}
    timeout "$limit" python3 benchmarks/train_step.py --size paper \
        --device cuda --ladder training-cost --batch 32 --repeats 2 \
        --budget-seconds "$((limit * 2 / 3))" \
        --json "$OUT/paper_gpu_training_cost.json"
    for generator in ${GENERATORS:-sd sdxl flux-fill}; do
        if [ "$generator" = sd ]; then
            batch=32 json="$OUT/paper_gpu.json" limit=${LIMIT_SECONDS:-310}
        else
            batch=${GENERATOR_BATCH:-4} json="$OUT/paper_gpu_$generator.json"
            limit=${GENERATOR_LIMIT_SECONDS:-150}
        fi
        timeout "$limit" python3 benchmarks/train_step.py --size paper --device cuda \
            --generator "$generator" --batch "$batch" --repeats 2 \
            --budget-seconds "$((limit * 2 / 3))" --json "$json" ${SETTINGS:+--settings "$SETTINGS"}
    done
    timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_generation_options.py \
        tests/test_generators.py -k "gpu ${TESTS:+or $TESTS}"
} 2>&1 | tee "$OUT/log"
