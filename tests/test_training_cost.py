"""The cheaper generator settings of the training step (method.train_*, README Training cost):
they change where and how the generator runs in training, never an edit, never the gradient path."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from components.config import MethodConfig
from components.data.demo_edits import DEMO_EDITS, demo_edit_batch, demo_photo
from components.editing import Editor
from components.method.mask import upsample
from tests.test_method import fresh_model


class DenoiserCalls:
    """Each UNet call's batch and latent side, recorded by a forward pre-hook."""

    def __init__(self, model) -> None:
        self.calls: list[tuple[int, int]] = []
        self.handle = model.generator.denoiser.register_forward_pre_hook(self.record)

    def record(self, module, args) -> None:
        self.calls.append((args[0].shape[0], args[0].shape[-1]))

    def take(self) -> list[tuple[int, int]]:
        calls, self.calls = self.calls, []
        return calls


def test_train_settings_steer_the_training_step_and_leave_the_edit_alone(zoo_params):
    model = fresh_model(
        zoo_params,
        steps=3,
        guidance_scale=7.5,
        train_resolution=32,
        train_steps=1,
        train_guidance_scale=1.0,
        tau=0.0,  # the edit's mask is then never empty, so the edit always generates
    )
    latent = 64 // model.generator.downsample
    calls = DenoiserCalls(model)
    model(*demo_edit_batch(2, 64), generator=torch.Generator().manual_seed(0))
    assert calls.take() == [(2, latent // 2)]  # one step, no guidance batch, half the side
    photo, original, instruction, target = DEMO_EDITS[0]
    editor = Editor(model, describer=None)
    editor.edit(demo_photo(photo), instruction, original, target, seed=0)
    assert calls.take() == [(2, latent)] * 3  # the method's K, guided ([uncond; text]), 64 px


def test_a_generation_at_train_resolution_is_composed_at_the_resolution(zoo_params):
    model = fresh_model(zoo_params, train_resolution=32)
    images = demo_edit_batch(2, 64)[0]
    out = model(*demo_edit_batch(2, 64), generator=torch.Generator().manual_seed(0))
    assert out.result.shape == images.shape
    outside = ~upsample(out.proposal, 64).bool().expand_as(images)
    assert torch.equal(out.result[outside], images[outside])  # the source, exactly
    inside = ~outside
    assert (out.result[inside] - images[inside]).abs().mean() > 0.01  # generated content
    out.terms["clip"].backward()
    grads = [p.grad for n, p in model.head.named_parameters() if not n.startswith("f_sem.")]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)  # the path to the head


def test_the_same_generation_settings_give_the_same_step(zoo_params):
    """train_* equal to the inference settings is the default: the same losses, bit for bit."""
    batch = demo_edit_batch(2, 64)
    default = fresh_model(zoo_params)(*batch, generator=torch.Generator().manual_seed(0))
    method = zoo_params.method
    same = fresh_model(
        zoo_params,
        train_resolution=method.resolution,
        train_steps=method.steps,
        train_guidance_scale=method.guidance_scale,
    )(*batch, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(default.terms[k], same.terms[k]) for k in default.terms)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"train_resolution": 128}, "train_resolution 128 is above method.resolution 64"),
        (
            {"train_resolution": 32, "composition": "latent"},
            "train_resolution needs composition: pixel",
        ),
        ({"train_guidance_scale": 0.5}, "train_guidance_scale"),
        ({"train_steps": 0}, "train_steps"),
    ],
)
def test_impossible_train_settings_are_refused_by_name(settings, message):
    with pytest.raises(ValidationError, match=message):
        MethodConfig(**settings)


def test_in_training_falls_back_to_the_inference_settings():
    cfg = MethodConfig(resolution=64, steps=4, guidance_scale=7.5, train_steps=2)
    assert cfg.in_training == (64, 2, 7.5)
    assert MethodConfig(train_guidance_scale=1.0).in_training.guidance_scale == 1.0
