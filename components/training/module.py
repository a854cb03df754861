"""The LightningModule: training steps, losses and optimizers only; the model is from components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from components.config import TrainConfig
from components.method.model import RegionEditModel

HEAD_PREFIX = "model.head."
SKIPPED = "skipped_samples"  # in a checkpoint: (ranks, loader workers) samples skipped so far


class RegionEditModule(L.LightningModule):
    def __init__(self, model: RegionEditModel, train: TrainConfig, seed: int) -> None:
        super().__init__()
        self.model = model
        self.train_cfg = train
        self.seed = seed
        self.strict_loading = False  # checkpoints hold the trainable head only
        # samples the loader skipped as unreadable, per worker's stream (data.ScaleStream):
        # the batch of step s comes from stream s % workers
        self.skipped = [0] * max(train.num_workers, 1)

    def on_fit_start(self) -> None:
        self.model.generator.to(self.device)  # frozen SD parts live outside the module tree

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        # a fresh generator per (step, rank): the same noise on a rerun or a resume
        noise_seed = (self.seed * 1_000_003 + self.global_step) * 1_009 + self.global_rank
        generator = torch.Generator(self.device).manual_seed(noise_seed)
        self.skipped[self.global_step % len(self.skipped)] += batch["skipped"]
        out = self.model(
            batch["image"],
            batch["t_o"],
            batch["t_ins"],
            batch["t_e"],
            generator,
            cached=batch.get("cached"),  # the `features` stage's, when training reads a cache
        )
        terms = {f"train/{name}": value for name, value in out.terms.items()}
        terms["train/mask_fraction"] = out.mask.detach().mean()
        terms["train/empty_masks"] = (out.mask.detach().flatten(1).sum(1) == 0).float().sum()
        # logger=False: callbacks.StepLosses writes them, before the step's checkpoint
        self.log_dict(terms, on_step=True, logger=False, batch_size=batch["image"].shape[0])
        return {
            "loss": out.terms["total"],
            "mask": out.mask.detach(),
            "result": out.result.detach(),
        }

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Lightning clips after this hook: the norm logged is the one before clipping
        norm = torch.nn.utils.get_total_norm(
            [p.grad for p in self.model.trainable_parameters() if p.grad is not None]
        )
        self.log("train/grad_norm", norm, on_step=True, logger=False)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.train_cfg
        optimizer = torch.optim.AdamW(
            self.model.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        warmup = max(cfg.warmup_steps, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = {
            key: value
            for key, value in checkpoint["state_dict"].items()
            if key.startswith(HEAD_PREFIX)
        }
        # every rank's counts (each resumes its own streams from them); rank 0 writes the file
        counts = torch.tensor(self.skipped, device=self.trainer.strategy.root_device)
        checkpoint[SKIPPED] = self.all_gather(counts).reshape(self.trainer.world_size, -1).cpu()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if SKIPPED in checkpoint:  # absent from checkpoints written before the loader skipped
            self.skipped = checkpoint[SKIPPED][self.global_rank].tolist()

    def head_state(self) -> dict[str, torch.Tensor]:
        return {
            key: value.detach().cpu().contiguous()
            for key, value in self.model.head.state_dict().items()
        }


def head_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The head's weights in a checkpoint of this module, named as `RegionHead` names them."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return {key.removeprefix(HEAD_PREFIX): value.contiguous() for key, value in state.items()}


def skipped_samples(checkpoint: Path) -> int:
    """Samples the training loader skipped as unreadable up to a checkpoint of this module, over
    every rank and worker (a sample met again is counted again)."""
    counts = torch.load(checkpoint, map_location="cpu", weights_only=True).get(SKIPPED)
    return 0 if counts is None else int(counts.sum())  # older checkpoints: nothing was skipped
