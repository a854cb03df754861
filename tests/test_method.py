"""The method's gradient path: from L_CLIP through the composition to the region head only."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

from components.data.demo_edits import demo_edit_batch
from components.method.build import build_region_edit_model
from components.method.features import cacheable_features
from components.method.mask import to_grid, upsample


def frozen_parameters(model):
    modules = [model.encoders, *model.generator.frozen_modules().values()]
    return list(itertools.chain.from_iterable(module.parameters() for module in modules))


def fresh_model(zoo_params, **method):
    torch.manual_seed(0)
    cfg = zoo_params.method.model_copy(update=method)
    return build_region_edit_model(zoo_params.models, cfg)


@pytest.mark.parametrize(
    ("composition", "head"), [("pixel", "residual"), ("latent", "residual"), ("pixel", "paper")]
)
def test_clip_loss_alone_reaches_every_region_parameter_and_nothing_frozen(
    zoo_params, composition, head
):
    model = fresh_model(zoo_params, composition=composition, head=head)
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


@pytest.mark.parametrize("head", ["residual", "paper"])
def test_total_loss_reaches_every_trainable_parameter_and_only_those(zoo_params, head):
    model = fresh_model(zoo_params, head=head)
    assert {id(p) for p in model.trainable_parameters()} == {id(p) for p in model.head.parameters()}
    out = model(*demo_edit_batch(2, 64), generator=torch.Generator().manual_seed(0))
    out.terms["total"].backward()
    for name, parameter in model.head.named_parameters():
        assert torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0, name


def clip_gradient_norm(model, output_bias=None):
    """The head's gradient norm from L_CLIP alone on the demo batch; `output_bias` sets the
    region MLP's output bias (-4: P ~ 0.02 everywhere, an empty hard mask)."""
    if output_bias is not None:
        with torch.no_grad():
            model.head.region_probability.mlp[-1].bias.fill_(output_bias)
    out = model(*demo_edit_batch(2, 64), generator=torch.Generator().manual_seed(0))
    model.zero_grad()
    out.terms["clip"].backward()
    norm = torch.nn.utils.get_total_norm(
        [p.grad for p in model.head.parameters() if p.grad is not None]
    )
    return out, norm.item()


def test_empty_hard_mask_still_learns(zoo_params):
    model = fresh_model(zoo_params)
    out, norm = clip_gradient_norm(model, output_bias=-4.0)
    assert out.mask.sum() == 0 and out.proposal.sum() > 0
    assert out.terms["clip_direction_floored"] == 2  # the edit changed nothing: floored
    assert model.head.region_probability.mlp[-1].bias.grad.abs() > 0


@pytest.mark.parametrize("head", ["residual", "paper"])
def test_an_empty_mask_does_not_blow_up_the_gradient(zoo_params, head):
    _, normal = clip_gradient_norm(fresh_model(zoo_params, head=head))
    out, empty = clip_gradient_norm(fresh_model(zoo_params, head=head), output_bias=-4.0)
    print(f"{head}: |grad L_CLIP| over the head: normal mask {normal:.4g}, empty {empty:.4g}")
    assert out.mask.sum() == 0
    assert math.isfinite(empty) and empty < 10 * normal


def _train_head_towards(model, target, output_bias, steps=15, lr=0.05, origin=None):
    """Train the head's parameters on L_CLIP through the whole method (instruction -> head ->
    mask -> proposal -> frozen generator -> composition -> CLIP), with `target` standing in
    for T_e (and `origin`, if given, for T_o). Returns the hard mask's fraction of the image
    before each step, and after."""
    images, t_o, t_ins, t_e = demo_edit_batch(2, 64)
    cached = cacheable_features(model.encoders, model.generator, images, t_o, t_ins, t_e, 64)
    cached = dataclasses.replace(cached, t_e=target)
    if origin is not None:
        cached = dataclasses.replace(cached, t_o=origin)
    with torch.no_grad():
        model.head.region_probability.mlp[-1].bias.fill_(output_bias)
    optimizer = torch.optim.Adam(model.head.parameters(), lr=lr)
    fractions = []
    for _ in range(steps):
        out = model(images, t_o, t_ins, t_e, torch.Generator().manual_seed(0), cached=cached)
        fractions.append(out.mask.mean().item())
        optimizer.zero_grad()
        out.terms["clip"].backward()
        optimizer.step()
    with torch.no_grad():
        out = model(images, t_o, t_ins, t_e, torch.Generator().manual_seed(0), cached=cached)
    return fractions + [out.mask.mean().item()]


@pytest.fixture(scope="module")
def generated_everywhere(zoo_params):
    """The demo batch repainted everywhere for t_e by the frozen generator, as CLIP sees it."""
    model = fresh_model(zoo_params)
    images, _, _, t_e = demo_edit_batch(2, 64)
    z = model.generator.generate(
        images * 2 - 1,
        torch.ones(2, 1, 64, 64),
        model.generator.encode_prompt(t_e),
        torch.Generator().manual_seed(0),
        steps=2,
        guidance_scale=7.5,
    )
    with torch.no_grad():
        generated = ((model.generator.decode(z) + 1) / 2).clamp(0, 1)
        return model.encoders.image(generated)[0], model.encoders.image(images)[0]


def test_mask_grows_from_empty_when_the_target_is_generated_content(
    zoo_params, generated_everywhere
):
    target, _ = generated_everywhere
    model = fresh_model(zoo_params, lambda_d=0.0, lambda_s=0.0)
    fractions = _train_head_towards(model, target, output_bias=-4.0)
    print("mask fraction, growing:", " ".join(f"{f:.3f}" for f in fractions))
    assert fractions[0] == 0.0  # an empty hard mask: only the proposal is generated
    assert fractions[-1] > 0.25


def test_mask_grows_from_empty_on_the_direction_term_alone(zoo_params, generated_everywhere):
    # L_CLIPd alone, asked to move from the source towards generated content: at an empty
    # region its floored change still pulls along T_e - T_o (an unfloored Eq. 8 gives no
    # gradient there, and the head stays empty)
    target, source = generated_everywhere
    model = fresh_model(zoo_params, lambda_g=0.0, lambda_s=0.0)
    fractions = _train_head_towards(model, target, output_bias=-4.0, origin=source)
    print("mask fraction, growing on L_CLIPd:", " ".join(f"{f:.3f}" for f in fractions))
    assert fractions[0] == 0.0
    assert fractions[-1] > 0.25


def test_mask_shrinks_when_the_target_is_the_source(zoo_params, generated_everywhere):
    _, source = generated_everywhere
    model = fresh_model(zoo_params, lambda_d=0.0)
    fractions = _train_head_towards(model, source, output_bias=4.0)
    print("mask fraction, shrinking:", " ".join(f"{f:.3f}" for f in fractions))
    assert fractions[0] == 1.0  # everything repainted
    assert fractions[-1] < 0.75


def test_upsampled_mask_covers_whole_patches(zoo_params):
    model = fresh_model(zoo_params)
    grid = model.encoders.grid
    assert grid * grid == model.encoders.image(torch.rand(1, 3, 64, 64))[1].shape[1]
    m = upsample(to_grid(torch.eye(grid * grid)[:1]), 64)
    assert m.sum() == (64 // grid) ** 2
