#!/usr/bin/env bash
# Join a multi-node training run of one scale from another node (node rank 1 .. N-1).
#
# Node 0 is wherever the train@<scale> stage runs (`regionedit pipeline`, `dvc repro`, or
# train.slurm beside this file) with train.num_nodes = N in params.yaml and MASTER_ADDR set to
# its own address; it writes <train.out>/<scale>/launch.json and starts torchrun as node 0.
# Every node sees the project folder on a shared filesystem (data, checkpoints).
#
#   NODE_RANK=1 MASTER_ADDR=node0.cluster MASTER_PORT=29500 infra/launch/torchrun_node.sh 5M
set -euo pipefail
scale=${1:?usage: torchrun_node.sh SCALE   (e.g. 5M)}
: "${NODE_RANK:?set NODE_RANK (1 .. train.num_nodes - 1)}"
: "${MASTER_ADDR:?set MASTER_ADDR (the address of node 0)}"
out=${TRAIN_OUT:-$(python -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["train"]["out"])')}
spec="$out/$scale/launch.json"

echo "node $NODE_RANK: waiting for $spec (written by node 0 when train@$scale starts)"
until [ -f "$spec" ]; do sleep "${POLL_SECONDS:-5}"; done
read -r nodes devices < <(python -c '
import json, sys
train = json.load(open(sys.argv[1]))["params"]["train"]
print(train["num_nodes"], train["devices"])' "$spec")
exec python -m torch.distributed.run \
    --nnodes="$nodes" --nproc-per-node="$devices" --node-rank="$NODE_RANK" \
    --master-addr="$MASTER_ADDR" --master-port="${MASTER_PORT:-29500}" \
    -m flows.train_rank "$spec"
