"""How a scale's training starts: `fit_scale` in this process for one device, else torchrun over
the per-rank entry point `flows.train_rank` (Lightning's own DDP launcher would re-run the
calling flow in every rank: DESIGN §6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from components.config import Params
from components.training.fit import ScaleRun, fit_scale


def launch(params: Params, run: ScaleRun, resume: bool) -> None:
    cfg = params.train
    if cfg.devices * cfg.num_nodes == 1:
        fit_scale(params, run, resume)
        return
    spec = run.folder / "launch.json"
    spec.write_text(
        json.dumps(
            {
                "params": params.model_dump(mode="json"),
                "resume": resume,
                "run": {k: str(v) if isinstance(v, Path) else v for k, v in vars(run).items()},
            }
        )
    )
    rendezvous = ["--standalone"] if cfg.num_nodes == 1 else multi_node_rendezvous()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={cfg.devices}",
        f"--nnodes={cfg.num_nodes}",
        *rendezvous,
        "-m",
        "flows.train_rank",
        str(spec),
    ]
    try:
        subprocess.run(command, check=True)
    finally:  # a spec on disk means a launch in progress: what nodes joining wait for
        spec.unlink(missing_ok=True)


def multi_node_rendezvous() -> list[str]:
    """This machine is node 0 of `train.num_nodes`; the others join the same run with
    infra/launch/torchrun_node.sh (the spec lies on a filesystem every node shares)."""
    address = os.environ.get("MASTER_ADDR")
    if not address:
        raise RuntimeError(
            "train.num_nodes > 1 needs MASTER_ADDR (this node's address, reachable from the "
            "others) and optionally MASTER_PORT (default 29500); see infra/launch/"
        )
    port = os.environ.get("MASTER_PORT", "29500")
    return ["--node-rank=0", f"--master-addr={address}", f"--master-port={port}"]
