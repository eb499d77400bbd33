"""The paper's invariants, checked on the real trl trainers against a plain reference implementation.

After a sync: ref == alpha*theta + (1-alpha)*ref_old (1e-6; bitwise for alpha = 1); syncs at tau, 2tau, ...;
alpha = 0 reproduces DPO exactly; right after a hard sync the DPO loss is ln 2; the reference gets no gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_policy, tiny_train
from paperloom_tr_dpo.reference_update import sync_schedule
from paperloom_tr_dpo.trainer import align_trainer
from transformers import TrainerCallback

from paperloom import UserError


def test_sync_schedule_maps_the_paper_updates_onto_trl():
    assert sync_schedule("soft", 0.6, 512) == (True, 0.6, 512)  # Eq. 5, every tau steps (the paper's 0.6 / 512)
    assert sync_schedule("hard", 0.6, 512) == (True, 1.0, 512)  # Eq. 6: a copy every tau steps
    assert sync_schedule("ema", 0.3, 8) == (True, 0.3, 1)  # every step: not the paper's reading
    assert sync_schedule("none", 0.6, 0) == (False, 0.6, 1)
    for bad, match in ((("soft", 1.5, 1), "ref.alpha"), (("hard", 1.0, 0), "ref.tau"), (("often", 0.5, 2), "none"),
                       (("general", 0.5, 2), "now called soft")):
        with pytest.raises(UserError, match=match):
            sync_schedule(*bad)


def params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


class Before(TrainerCallback):
    """Runs before trl's SyncRefModelCallback: the reference as it was before this step's sync."""

    def __init__(self, trainer_ref):
        self.get_ref, self.ref_old = trainer_ref, None

    def on_step_begin(self, args, state, control, **kw):
        self.ref_old = params(self.get_ref())


class After(TrainerCallback):
    """Added after trl's SyncRefModelCallback: sees theta and the synced reference of the same step."""

    def __init__(self, trainer):
        self.trainer, self.rows, self.prev = trainer, [], params(trainer.ref_model)

    def on_step_end(self, args, state, control, model=None, **kw):
        ref = params(self.trainer.ref_model)
        changed = any(not torch.equal(a, b) for a, b in zip(ref, self.prev))
        self.rows.append({"step": state.global_step, "theta": params(model), "ref": ref, "changed": changed})
        self.prev = ref


def run(tok, pairs, steps=3, seed=0, n_embd=32, **kw):
    holder = {}
    before = Before(lambda: holder["t"].ref_model)
    policy = tiny_policy(tok, seed, n_embd)
    trainer = align_trainer(policy, tok, pairs, train=tiny_train(steps), out_dir=kw.pop("out"), seed=seed,
                            callbacks=(before,), save_strategy="no", **kw)
    holder["t"] = trainer
    before.ref_old = params(trainer.ref_model)
    after = After(trainer)
    olds = []

    class Snap(TrainerCallback):
        def on_step_end(self, args, state, control, **k):
            olds.append(before.ref_old)

    trainer.add_callback(Snap())
    trainer.add_callback(after)
    trainer.train()
    return trainer, after.rows, olds


@pytest.mark.parametrize("alpha,seed,n_embd", [(0.6, 0, 32), (0.3, 1, 16), (0.85, 2, 48)])
def test_soft_sync_equals_the_update_equation(tok, pairs, tmp_path, alpha, seed, n_embd):
    _, rows, olds = run(tok, pairs, steps=3, seed=seed, n_embd=n_embd, update="soft", alpha=alpha, tau=1,
                        out=tmp_path)
    assert len(rows) == 3
    for row, ref_old in zip(rows, olds):
        for theta, ref, old in zip(row["theta"], row["ref"], ref_old):
            expected = alpha * theta.double() + (1 - alpha) * old.double()  # Eq. 5, in float64
            assert torch.allclose(ref.double(), expected, rtol=0, atol=1e-6)
        assert row["changed"]


def test_hard_sync_copies_theta_bitwise(tok, pairs, tmp_path):
    _, rows, _ = run(tok, pairs, steps=4, update="hard", tau=2, out=tmp_path)
    for row in rows:
        same = all(torch.equal(t, r) for t, r in zip(row["theta"], row["ref"]))
        assert same == (row["step"] % 2 == 0), row["step"]  # Eq. 6: ref == theta right after steps 2, 4


@pytest.mark.parametrize("tau,steps", [(3, 7), (2, 5)])
def test_syncs_happen_exactly_at_multiples_of_tau(tok, pairs, tmp_path, tau, steps):
    _, rows, _ = run(tok, pairs, steps=steps, update="soft", alpha=0.5, tau=tau, out=tmp_path)
    assert [r["step"] for r in rows if r["changed"]] == list(range(tau, steps + 1, tau))


def test_alpha_zero_reproduces_dpo_exactly(tok, pairs, tmp_path):
    dpo, _, _ = run(tok, pairs, steps=4, update="none", out=tmp_path / "dpo")
    tr, _, _ = run(tok, pairs, steps=4, update="soft", alpha=0.0, tau=1, out=tmp_path / "tr")  # syncs every step
    assert all(torch.equal(a, b) for a, b in zip(dpo.model.parameters(), tr.model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(dpo.ref_model.parameters(), tr.ref_model.parameters()))
    losses = [[h["loss"] for h in t.state.log_history if "loss" in h] for t in (dpo, tr)]
    assert losses[0] == losses[1] and len(losses[0]) == 4


def test_dpo_loss_is_ln2_right_after_a_hard_sync(tok, pairs, tmp_path):
    trainer, rows, _ = run(tok, pairs, steps=2, update="hard", tau=2, out=tmp_path)
    trainer.model.eval()
    for i, batch in enumerate(trainer.get_train_dataloader()):
        with torch.no_grad():
            loss = trainer.compute_loss(trainer.model, batch)
        assert abs(float(loss) - math.log(2)) < 1e-6
        if i == 2:
            break
    # and the policy had moved away from its initial reference before the sync
    assert any(h.get("rewards/margins", 0.0) != 0.0 for h in trainer.state.log_history)


class GradProbe(TrainerCallback):
    """Before every optimizer step: the policy has gradients, the reference has none."""

    def __init__(self, trainer):
        self.trainer, self.seen = trainer, 0

    def on_pre_optimizer_step(self, args, state, control, **kw):
        assert all(p.grad is None and not p.requires_grad for p in self.trainer.ref_model.parameters())
        assert any(p.grad is not None for p in self.trainer.model.parameters())
        self.seen += 1


@pytest.mark.parametrize("update", ["none", "ema"])
def test_reference_never_receives_gradients(tok, pairs, tmp_path, update):
    policy = tiny_policy(tok, 0, 32)
    trainer = align_trainer(policy, tok, pairs, train=tiny_train(3), out_dir=tmp_path, update=update,
                            save_strategy="no")
    probe = GradProbe(trainer)
    trainer.add_callback(probe)
    trainer.train()
    assert probe.seen == 3
    if update == "none":  # plain DPO: the reference is exactly the initial policy, throughout
        init = tiny_policy(tok, 0, 32)
        assert all(torch.equal(a, b) for a, b in zip(init.parameters(), trainer.ref_model.parameters()))


@pytest.mark.parametrize("loss", ["ipo", "kto"])
def test_tr_ipo_and_tr_kto_use_the_same_update(tok, pairs, tmp_path, loss):
    trainer, rows, _ = run(tok, pairs, steps=2, loss=loss, update="hard", tau=2, out=tmp_path)
    assert [r["step"] for r in rows if r["changed"]] == [2]
    assert all(torch.equal(t, r) for t, r in zip(rows[-1]["theta"], rows[-1]["ref"]))
    assert all(math.isfinite(h["loss"]) for h in trainer.state.log_history if "loss" in h)
