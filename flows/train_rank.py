"""The per-rank entry point under torchrun: `python -m flows.train_rank LAUNCH_JSON`.

Lightning detects torchelastic's environment and joins the process group; every rank runs
the same `fit_scale` as a single-process run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from components.config import Params
from components.training.fit import ScaleRun, fit_scale


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    run = spec["run"]
    paths = {name: Path(run[name]) for name in ("prepared", "descriptions", "folder", "loss_curve")}
    features = Path(run["features"]) if run.get("features") else None
    fit_scale(
        Params.model_validate(spec["params"]),
        ScaleRun(
            run["scale"],
            **paths,
            run_id=run["run_id"],
            tracking_uri=run["tracking_uri"],
            features=features,
        ),
        spec["resume"],
    )


if __name__ == "__main__":
    main(sys.argv[1])
