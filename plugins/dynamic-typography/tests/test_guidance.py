"""Guidance: the SDS gradient equals w(t)(eps_hat - eps) for a stub denoiser; SDS end to end with a tiny random
diffusers text-to-video folder; the local motion target."""

import pytest
import torch
from paperloom_dynamic_typography.guidance import MotionTargetGuidance, SDSGuidance, motion_of

from paperloom import UserError


class StubUNet(torch.nn.Module):
    """eps_u = 0.1 z_t, eps_c = 0.1 z_t + 0.01 * (1 + t / 1000): the denoiser's output is known in closed form."""

    def forward(self, z, t, encoder_hidden_states):
        cond = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1, 1).repeat_interleave(z.shape[0] // 2, 0)
        return type("Out", (), {"sample": 0.1 * z + cond * 0.01 * (1 + t.view(-1, 1, 1, 1, 1) / 1000)})()


class StubVAE:
    class config:
        scaling_factor = 0.5

    def encode(self, x):  # "latents" = the first 4 channels of a 2x average pool of [x, x]
        z = torch.nn.functional.avg_pool2d(torch.cat([x, x], 1)[:, :4], 2)
        return type("Enc", (), {"latent_dist": type("D", (), {"sample": lambda self: z})()})()


def sds():
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    return SDSGuidance(StubUNet(), StubVAE(), sched, torch.zeros(2, 3, 4), guidance_scale=30, augment=False)


@pytest.mark.parametrize("seed,t", [(0, 50), (1, 500), (2, 948)])
def test_sds_gradient_is_w_t_times_eps_hat_minus_eps(seed, t):
    pytest.importorskip("diffusers")
    g = sds()
    torch.manual_seed(seed)
    z = torch.randn(1, 4, 3, 8, 8, requires_grad=True)
    eps = torch.randn_like(z)
    tt = torch.tensor([t])
    grad = g.grad(z.detach(), tt, eps)
    ab = g.scheduler.alphas_cumprod[t]
    zt = ab.sqrt() * z.detach() + (1 - ab).sqrt() * eps  # DDPM forward process
    eps_u, eps_c = 0.1 * zt, 0.1 * zt + 0.01 * (1 + t / 1000)
    expect = (1 - ab) * (eps_u + 30 * (eps_c - eps_u) - eps)
    assert torch.allclose(grad, expect, atol=1e-5)
    (grad * z).sum().backward()  # the surrogate's gradient w.r.t. the latents is grad itself
    assert torch.allclose(z.grad, expect, atol=1e-5)


def test_sds_timesteps_are_drawn_in_the_reference_range():
    pytest.importorskip("diffusers")
    g = sds()
    seen = []
    g.unet = lambda z, t, encoder_hidden_states: seen.append(int(t[0])) or type("O", (), {"sample": z})()
    for _ in range(300):
        g.grad(torch.zeros(1, 4, 2, 4, 4))
    assert min(seen) >= 50 and max(seen) <= 948 and len(set(seen)) > 100


def test_sds_end_to_end_with_a_tiny_random_text_to_video_model(t2v):
    g = SDSGuidance.from_folder(str(t2v), "a camel walks")
    assert g.emb.shape[0] == 2 and g.scale == 30
    frames = torch.rand(3, 3, 32, 32, requires_grad=True)
    loss = g(frames, None, 0)
    loss.backward()
    assert torch.isfinite(frames.grad).all() and frames.grad.abs().sum() > 0


def test_sds_folder_errors(tmp_path):
    pytest.importorskip("diffusers")
    (tmp_path / "unet").mkdir()
    with pytest.raises(UserError, match="missing vae/, text_encoder/, tokenizer/, scheduler/"):
        SDSGuidance.from_folder(str(tmp_path), "x")


def test_motion_target_from_the_verb():
    assert motion_of("A camel walks steadily") == "walk" and motion_of("a kangaroo JUMPS") == "jump"
    assert motion_of("flames flicker") == "flicker" and motion_of("a heart beats") == "pulse"
    assert motion_of("a quiet letter") == "dance"  # default
    g = MotionTargetGuidance("jump", amplitude=0.0)
    g.motion = "walk"  # zero amplitude walk: no translation, only the (amplitude-scaled) shear: none either
    base = torch.zeros(3, 16, 16)
    base[:, 4:12, 6:10] = 1
    assert torch.allclose(g.targets(base, 4), base[None].expand(4, -1, -1, -1), atol=1e-5)
    moving = MotionTargetGuidance("a camel walks", amplitude=0.1)
    tg = moving.targets(base, 4)
    assert (tg[0] - base).abs().sum() > 1  # the target moves
    frames = tg.clone()
    assert float(moving(frames, base)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(UserError, match="expected one of"):
        MotionTargetGuidance("x", motion="teleport")
