"""Every key equation, pinned on a small case computed by hand.

Each test gives one function of ``minimal.core`` (or the one trainer-specific equation
that lives with its trainer) inputs small enough to work out on paper, and compares with
the hand-computed numbers written in the test.  Changing any term, sign, coefficient,
clip side or normalisation of the equation changes at least one of those numbers: the
mutation check ``tools/mutate.py`` applies such one-line changes to the functions and
requires that this file fails for each.  ``pytest -m unit`` runs these with the other
fast checks in a few seconds.
"""

from __future__ import annotations

import math

import pytest
import torch

from minimal.core.gpt import GPT, GPTConfig
from minimal.core.preference_losses import bt_loss, dpo_loss, ipo_loss, log_ratio_margin
from minimal.core.rl import clip_active, clipped_surrogate, gae, group_advantages, kl_k1, kl_k3, whiten
from minimal.policy_gradient import ActorCritic, PGConfig, ppo_loss
from minimal.rlhf_ppo import token_rewards

pytestmark = pytest.mark.unit


def t(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def close(got: torch.Tensor, want, tol: float = 1e-6) -> bool:
    return torch.allclose(got.double(), torch.as_tensor(want, dtype=torch.float64), atol=tol,
                          rtol=0)


# --------------------------------------------------------------------- GAE (eq. gae)
def test_gae_on_three_steps_by_hand():
    # gamma = 0.9, lambda = 0.8, so gamma * lambda = 0.72
    r, v, nv = t(1.0, 0.0, 2.0)[:, None], t(0.5, 1.0, 1.5)[:, None], t(1.0, 1.5, 0.0)[:, None]
    # delta = r + gamma V(s') - V(s) = (1.4, 0.35, 0.5)
    adv, ret = gae(r, v, nv, t(0.0, 0.0, 1.0)[:, None], 0.9, 0.8)
    # A_2 = 0.5, A_1 = 0.35 + 0.72 * 0.5 = 0.71, A_0 = 1.4 + 0.72 * 0.71 = 1.9112
    assert close(adv[:, 0], [1.9112, 0.71, 0.5])
    assert close(ret[:, 0], [1.9112 + 0.5, 0.71 + 1.0, 0.5 + 1.5])  # targets A + V
    # an episode that ends at t = 1 cuts the sum there: A_1 = delta_1, A_0 = 1.4 + 0.72 * 0.35
    adv, _ = gae(r, v, nv, t(0.0, 1.0, 0.0)[:, None], 0.9, 0.8)
    assert close(adv[:, 0], [1.652, 0.35, 0.5])


def test_whiten_is_mean_zero_and_unbiased_std_one():
    # mean 2.5, unbiased std sqrt(5/3) = 1.2909944
    assert close(whiten(t(1.0, 2.0, 3.0, 4.0)), [-1.1618950, -0.3872983, 0.3872983, 1.1618950])


# ------------------------------------------------- group advantages (eq. group-advantage)
def test_group_advantages_by_hand():
    r = t(1, 0, 0, 1, 1, 1, 1, 0).view(2, 4)
    # group means 0.5 and 0.75; unbiased stds sqrt(1/3) = 0.5773503 and 0.5
    assert close(group_advantages(r, "none"), [[0.5, -0.5, -0.5, 0.5], [0.25, 0.25, 0.25, -0.75]])
    assert close(group_advantages(r, "group"),
                 [[0.8660239, -0.8660239, -0.8660239, 0.8660239], [0.499999, 0.499999, 0.499999,
                                                                   -1.499997]], tol=1e-5)
    # the batch's unbiased std: five 1s and three 0s, sqrt(1.875 / 7) = 0.5175492
    b = 1 / (0.5175492 + 1e-6)
    assert close(group_advantages(r, "batch"),
                 [[0.5 * b, -0.5 * b, -0.5 * b, 0.5 * b], [0.25 * b, 0.25 * b, 0.25 * b, -0.75 * b]],
                 tol=1e-5)


# -------------------------------------------------- clipped surrogate (eq. ppo-clip)
def test_clipped_surrogate_on_both_sides_of_the_range():
    ratio = t(0.5, 0.9, 1.1, 1.5)
    # eps_low = 0.2, eps_high = 0.3: the range is [0.8, 1.3]
    # A > 0: -min(rho, clip(rho)) = -(0.5, 0.9, 1.1, 1.3): only a ratio above 1.3 is capped
    assert close(clipped_surrogate(ratio, t(1.0), 0.2, 0.3), [-0.5, -0.9, -1.1, -1.3])
    # A < 0: -min(-rho, -clip(rho)) = (0.8, 0.9, 1.1, 1.5): only a ratio below 0.8 is capped
    assert close(clipped_surrogate(ratio, t(-1.0), 0.2, 0.3), [0.8, 0.9, 1.1, 1.5])
    # the advantage scales the loss: A = 2 doubles it
    assert close(clipped_surrogate(ratio, t(2.0), 0.2, 0.3), [-1.0, -1.8, -2.2, -2.6])
    # where the clip removes the gradient: above 1 + eps_high for A > 0, below 1 - eps_low for A < 0
    assert clip_active(ratio, t(1.0), 0.2, 0.3).tolist() == [False, False, False, True]
    assert clip_active(ratio, t(-1.0), 0.2, 0.3).tolist() == [True, False, False, False]


# ------------------------------------------------------------- KL estimators k1, k3
def test_kl_estimators_by_hand_and_unbiased():
    # q(y) = 0.5, p(y) = 0.25: k1 = log 2, k3 = (0.5 - 1) + log 2
    assert close(kl_k1(t(math.log(0.5)), t(math.log(0.25))), [0.6931472])
    assert close(kl_k3(t(math.log(0.5)), t(math.log(0.25))), [0.1931472])
    # both are unbiased for KL(q || p) under y ~ q; k3 is never negative
    q, p = t(0.5, 0.3, 0.2), t(0.2, 0.5, 0.3)
    kl = float((q * (q / p).log()).sum())
    assert float((q * kl_k1(q.log(), p.log())).sum()) == pytest.approx(kl, abs=1e-12)
    assert float((q * kl_k3(q.log(), p.log())).sum()) == pytest.approx(kl, abs=1e-12)
    assert (kl_k3(q.log(), p.log()) >= 0).all() and (kl_k1(q.log(), p.log()) < 0).any()


# -------------------------------------------- RLHF per-token reward (eq. rlhf-token-reward)
def test_rlhf_token_reward_penalises_the_kl_and_pays_the_reward_model_at_the_end():
    kl_t, proxy = t(0.1, -0.2, 0.3).view(1, 3), t(2.0)
    # r_t = -beta kl_t, and r_phi(y) = 2 added on the last token; beta = 0.5
    assert close(token_rewards(kl_t.clone(), proxy, 0.5), [[-0.05, 0.1, -0.15 + 2.0]])
    assert close(token_rewards(kl_t.clone(), proxy, 0.0), [[0.0, 0.0, 2.0]])


# ------------------------------------------------------------ PPO's total (eq. ppo-total)
def test_ppo_total_loss_weighs_its_four_terms():
    torch.manual_seed(0)
    agent = ActorCritic(4, 2, 8)
    obs, actions = torch.randn(6, 4), torch.tensor([0, 1, 0, 1, 1, 0])
    logp_old = agent.dist(obs).log_prob(actions).detach() + 0.1 * torch.randn(6)
    adv, ret = torch.randn(6), torch.randn(6)
    cfg = PGConfig(vf_coef=0.7, ent_coef=0.03, beta=0.2)
    loss, m = ppo_loss(agent, obs, actions, logp_old, adv, ret, cfg)
    # loss = pg + c_V * value + (-c_H) * entropy + beta * KL (k3)
    want = m["pg_loss"] + 0.7 * m["value_loss"] - 0.03 * m["entropy"] + 0.2 * m["approx_kl"]
    assert loss.item() == pytest.approx(want, rel=1e-6)
    # the reported k3 is KL(pi_old || pi_theta) of the minibatch
    logp = agent.dist(obs).log_prob(actions).detach()
    assert m["approx_kl"] == pytest.approx(float(kl_k3(logp_old, logp).mean()), rel=1e-6)


# ---------------------------------------------------------- Bradley-Terry (eq. bt-loss)
def test_bradley_terry_loss_by_hand():
    # -log sigma(2 - 0.5) = log(1 + e^-1.5); the other order costs log(1 + e^1.5)
    assert close(bt_loss(t(2.0), t(0.5)), [0.2014133])
    assert close(bt_loss(t(0.5), t(2.0)), [1.7014133])


# --------------------------------------------------------------- DPO and IPO (eqs. dpo-loss, ipo-loss)
def test_log_ratio_margin_by_hand():
    # (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)) = 0.5 - (-0.8)
    h = log_ratio_margin(t(-1.0), t(-2.0), t(-1.5), t(-1.2))
    assert close(h, [1.3])


def test_dpo_loss_depends_on_beta_times_the_margin():
    # -log sigma(beta h) at h = 1: log(1 + e^-0.5) for beta = 0.5, log(1 + e^-2) for beta = 2
    assert close(dpo_loss(t(1.0), 0.5), [0.4740770])
    assert close(dpo_loss(t(1.0), 2.0), [0.1269280])
    assert close(dpo_loss(t(-1.0), 2.0), [2.1269280])  # a wrong-way margin costs more
    assert close(dpo_loss(t(0.0), 0.3), [math.log(2)])


def test_ipo_loss_pulls_the_margin_to_one_over_two_tau():
    # (h - 1 / (2 tau))^2 at h = 1.3: target 2 for tau = 0.25, target 1 for tau = 0.5
    assert close(ipo_loss(t(1.3), 0.25), [0.49])
    assert close(ipo_loss(t(1.3), 0.5), [0.09])


# ------------------------------------------------------------- the tiny GPT's primitives
def test_token_logprobs_renormalise_over_allowed_tokens_and_generate_never_emits_a_banned_one():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    tokens = torch.tensor([[0, 3, 1, 4]])
    with torch.no_grad():
        logits, _ = model(tokens[:, :-1])  # (1, 3, 5)
        full = torch.log_softmax(logits.float(), -1)
        plain = model.token_logprobs(tokens)
        assert close(plain, full.gather(-1, tokens[:, 1:, None])[..., 0])
        # banning token 0 renormalises over tokens 1-4: subtract log(1 - p(0)) at each position
        banned = model.token_logprobs(tokens, banned_ids=(0,))
        assert close(banned, plain - torch.log1p(-full[..., 0].exp()), tol=1e-5)
        out = model.generate(torch.zeros(64, 1, dtype=torch.long), 7,
                             generator=torch.Generator().manual_seed(0), banned_ids=(0, 2))
    assert not ((out[:, 1:] == 0) | (out[:, 1:] == 2)).any()
    assert set(out[:, 1:].unique().tolist()) == {1, 3, 4}


# ------------------------------------------------ the trainers use the equations as written
def test_rlhf_rollouts_carry_minus_beta_times_the_kl_in_their_returns():
    from minimal.rlhf_ppo import ActorCritic as RLHFActorCritic
    from minimal.rlhf_ppo import Critic, RLHFConfig, collect
    from minimal.worlds.letters import make_reference

    reference = make_reference(1, 2, 16, 4, seed=0)
    policy = make_reference(1, 2, 16, 4, seed=1)  # another initialisation: KL > 0
    model = RLHFActorCritic(policy, Critic(make_reference(1, 2, 16, 4, seed=2)))

    class Zero(torch.nn.Module):
        def forward(self, y):
            return torch.zeros(len(y))

    cfg = RLHFConfig(beta=0.5, gae_lambda=1.0, rollout_size=16, response_len=4, n_layer=1,
                     n_embd=16)
    ro = collect(model, reference, Zero(), cfg, torch.Generator().manual_seed(0))
    # gamma = lambda = 1 and a zero reward model: the return from the first token is the sum
    # of the per-token rewards, -beta * (sum_t kl_t), whose batch mean is -beta * stats["kl"]
    assert abs(ro.stats["kl"]) > 0.01
    assert ro.returns[:, 0].mean().item() == pytest.approx(-0.5 * ro.stats["kl"], rel=1e-4)


def test_dpo_trainer_passes_its_beta_to_the_loss():
    from minimal.dpo import DPOConfig, train_dpo

    tiny = dict(steps=3, warmup_steps=1, n_pairs=32, batch_size=8, n_layer=1, n_embd=16,
                response_len=4, n_eval=8, log_every=1)
    small, large = (train_dpo(DPOConfig(beta=b, **tiny))["history"].metrics["loss"]
                    for b in (0.1, 2.0))
    assert small[0] == pytest.approx(math.log(2), abs=1e-6) == large[0]  # pi = pi_ref: h = 0
    assert small[1:] != large[1:]
