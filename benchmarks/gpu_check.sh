#!/usr/bin/env bash
# The paper-size ladder of benchmarks/train_step.py on one GPU at the paper's per-GPU batch (32 =
# 256 over 8 GPUs), then the generator's GPU-only test. Writes $OUT/paper_gpu.json and $OUT/log.
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
    # settings start until BUDGET_SECONDS; the JSON is rewritten after each, so a cut keeps it
    timeout "${LIMIT_SECONDS:-310}" python3 benchmarks/train_step.py --size paper --device cuda \
        --batch 32 --repeats 2 --budget-seconds "${BUDGET_SECONDS:-200}" --json "$OUT/paper_gpu.json" \
        ${SETTINGS:+--settings "$SETTINGS"}
    timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_generation_options.py ${TESTS:+-k "$TESTS"}
} 2>&1 | tee "$OUT/log"
