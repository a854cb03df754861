"""The method's gradient path: from L_CLIP through the composition to the region head only."""

from __future__ import annotations

import itertools

import pytest
import torch

from components.data.demo_edits import demo_edit_batch
from components.method.build import build_region_edit_model
from components.method.composition import compose_in_pixels
from components.method.mask import straight_through_mask, to_grid, upsample


def frozen_parameters(model):
    parts = model.generator.parts
    return list(
        itertools.chain(
            model.encoders.parameters(),
            parts.unet.parameters(),
            parts.vae.parameters(),
            parts.text_encoder.parameters(),
        )
    )


def fresh_model(zoo_params, **method):
    torch.manual_seed(0)
    cfg = zoo_params.method.model_copy(update=method)
    return build_region_edit_model(zoo_params.models, cfg)


@pytest.mark.parametrize("composition", ["pixel", "latent"])
def test_clip_loss_alone_reaches_every_region_parameter_and_nothing_frozen(zoo_params, composition):
    model = fresh_model(zoo_params, composition=composition)
    out = model(*demo_edit_batch(2, 64), generator=torch.Generator().manual_seed(0))
    assert out.result.grad_fn is not None  # a graph from the edit back to the head exists
    out.terms["clip"].backward()
    for name, parameter in model.head.named_parameters():
        if name.startswith("f_sem."):  # f_sem is only in L_semAlign (Eqs. 4-6)
            assert parameter.grad is None, name
        else:
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name
    assert all(p.grad is None and not p.requires_grad for p in frozen_parameters(model))


def test_total_loss_reaches_every_trainable_parameter_and_only_those(zoo_params):
    model = fresh_model(zoo_params)
    assert {id(p) for p in model.trainable_parameters()} == {id(p) for p in model.head.parameters()}
    out = model(*demo_edit_batch(2, 64), generator=torch.Generator().manual_seed(0))
    out.terms["total"].backward()
    for name, parameter in model.head.named_parameters():
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name


def test_empty_hard_mask_still_learns(zoo_params):
    model = fresh_model(zoo_params)
    with torch.no_grad():
        model.head.region_probability.mlp[-1].bias.fill_(-4.0)  # P ~ 0.02 everywhere
    out = model(*demo_edit_batch(2, 64), generator=torch.Generator().manual_seed(0))
    assert out.mask.sum() == 0 and out.proposal.sum() > 0
    out.terms["clip"].backward()
    assert model.head.region_probability.mlp[-1].bias.grad.abs() > 0


def _mask_after_descent(model, images, generated, target, initial, structure=0.0, steps=20):
    """Descent on P_region itself under L_CLIP towards a chosen target embedding, in fixed-size
    steps along the gradient's sign: the direction each cell moves is what is tested."""
    p = initial.clone().requires_grad_(True)
    with torch.no_grad():
        i_src, f_src = model.encoders.image(images)
    for _ in range(steps):
        res = compose_in_pixels(to_grid(straight_through_mask(p, 0.5)), generated, images)
        i_res, f_res = model.encoders.image(res)
        terms = model.loss.clip_guidance_loss(i_res, i_src, target, i_src, f_res, f_src)
        loss = terms["clip_global"] + structure * terms["clip_structure"]
        (grad,) = torch.autograd.grad(loss, p)
        with torch.no_grad():
            p -= 0.025 * grad.sign()
            p.clamp_(0.01, 0.99)
    return p.detach()


@pytest.fixture(scope="module")
def generated_everywhere(zoo_params):
    model = fresh_model(zoo_params)
    images, _, _, t_e = demo_edit_batch(2, 64)
    full = torch.ones(2, 1, 64, 64)
    z = model.generator.generate(
        images * 2 - 1,
        full,
        model.generator.encode_prompt(t_e),
        torch.Generator().manual_seed(0),
        steps=2,
        guidance_scale=7.5,
    )
    generated = ((model.generator.decode(z) + 1) / 2).clamp(0, 1).detach()
    return model, images, generated


def test_mask_grows_when_the_target_is_the_generated_content(generated_everywhere):
    model, images, generated = generated_everywhere
    with torch.no_grad():
        target = model.encoders.image(generated)[0]
    initial = torch.full((2, 64), 0.4)
    initial[:, :8] = 0.6  # one row of cells starts inside the mask
    after = _mask_after_descent(model, images, generated, target, initial)
    assert (after > 0.5).sum() > (initial > 0.5).sum()
    assert after[:, 8:].mean() > initial[:, 8:].mean()


def test_mask_shrinks_when_the_target_is_the_source(generated_everywhere):
    model, images, generated = generated_everywhere
    with torch.no_grad():
        target = model.encoders.image(images)[0]
    initial = torch.full((2, 64), 0.6)  # everything starts inside the mask
    after = _mask_after_descent(model, images, generated, target, initial, structure=1.0)
    assert (after > 0.5).sum() < (initial > 0.5).sum()
    assert after.mean() < initial.mean()


def test_upsampled_mask_covers_whole_patches(zoo_params):
    model = fresh_model(zoo_params)
    grid = model.encoders.grid
    assert grid * grid == model.encoders.image(torch.rand(1, 3, 64, 64))[1].shape[1]
    m = upsample(to_grid(torch.eye(grid * grid)[:1]), 64)
    assert m.sum() == (64 // grid) ** 2
