"""Chapter 3, section 3.1: the inverse-RL and DPO theory on exact toys.

Max-ent IRL's feature-matching gradient, the KL-regularised soft Bellman recursion and DPO's
implicit reward on a two-token tree, the DPO gradient and likelihood displacement, the exact
best-of-n distribution and its KL, and forward vs reverse KL.
"""

import math

import pytest
import torch

from minimal import preference_bandit as pb
from minimal.core import preference_losses

SEEDS = (0, 1, 2)


@pytest.mark.unit
def test_maxent_gradient_is_data_minus_model_features_and_vanishes_at_the_fit():
    for seed in SEEDS:
        gen = torch.Generator().manual_seed(seed)
        phi = torch.randn(20, 3, generator=gen, dtype=torch.float64)
        w_true = torch.randn(3, generator=gen, dtype=torch.float64)
        demos = torch.multinomial(pb.maxent_policy(phi, w_true), 2000, replacement=True, generator=gen)
        w = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_(True)
        torch.log_softmax(phi @ w, dim=-1)[demos].mean().backward()  # mean log-likelihood
        assert torch.allclose(w.grad, pb.maxent_gradient(phi, w.detach(), demos), atol=1e-12)
        fit = pb.fit_maxent_irl(phi, demos)
        assert pb.maxent_gradient(phi, fit, demos).abs().max() < 1e-8  # feature matching
        assert (fit - w_true).abs().max() < 0.3  # 2,000 demonstrations recover the weights
        # a wrong term (model features not subtracted, or the wrong sign) breaks it
        assert (phi[demos].mean(0)).abs().max() > 1e-3


@pytest.mark.unit
def test_soft_bellman_tree_gives_the_sequence_optimum_and_dpo_implicit_reward():
    for seed in SEEDS:
        gen = torch.Generator().manual_seed(seed)
        ref1 = torch.softmax(torch.randn(4, generator=gen, dtype=torch.float64), 0)
        ref2 = torch.softmax(torch.randn(4, 4, generator=gen, dtype=torch.float64), 1)
        reward = torch.randn(4, 4, generator=gen, dtype=torch.float64)
        for beta in (0.3, 1.0):
            out = pb.soft_bellman_tree(ref1, ref2, reward, beta)
            star = pb.optimal_policy((ref1[:, None] * ref2).flatten(), reward.flatten(), beta)
            assert (out["pi_seq"].flatten() - star).abs().max() < 1e-12
            assert (out["pi1"].sum() - 1).abs() < 1e-12 and (out["pi2"].sum(1) - 1).abs().max() < 1e-12
            # beta log pi/pi_ref per token = Q - V (an advantage); summed it is r - V(s0)
            adv1 = beta * (out["pi1"].log() - ref1.log())
            assert (adv1 - (out["q1"] - out["v0"])).abs().max() < 1e-12
            implicit = adv1[:, None] + beta * (out["pi2"].log() - ref2.log())
            assert (implicit - (reward - out["v0"])).abs().max() < 1e-12
            # V(s0) = beta log Z, the optimum of eq. kl-objective
            z = ((ref1[:, None] * ref2) * torch.exp(reward / beta)).sum()
            assert abs(out["v0"] - beta * z.log()) < 1e-12


@pytest.mark.unit
def test_dpo_gradient_is_the_weighted_difference_of_score_functions():
    beta = 0.5
    for seed in SEEDS:
        gen = torch.Generator().manual_seed(seed)
        U = torch.randn(10, 4, generator=gen, dtype=torch.float64)
        h = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
        logp_ref = torch.log_softmax(U @ torch.randn(4, generator=gen, dtype=torch.float64), -1)
        logp = torch.log_softmax(U @ h, -1)
        margin = preference_losses.log_ratio_margin(logp[:1], logp[1:2], logp_ref[:1], logp_ref[1:2])
        (g_loss,) = torch.autograd.grad(preference_losses.dpo_loss(margin, beta).sum(), h, retain_graph=True)
        g_w, g_l = (torch.autograd.grad(logp[i], h, retain_graph=True)[0] for i in (0, 1))
        weight = pb.dpo_gradient_weight(margin.detach(), beta)
        assert torch.allclose(g_loss, -weight * (g_w - g_l), atol=1e-12)
        assert torch.allclose(weight, beta * torch.sigmoid(-beta * margin.detach()))
    # the weight falls as the implicit reward ranks the pair correctly
    w = pb.dpo_gradient_weight(torch.tensor([-2.0, 0.0, 2.0, 20.0]), 1.0)
    assert w[1] == pytest.approx(0.5) and bool((w[:-1] > w[1:]).all()) and w[-1] < 1e-8


def test_likelihood_displacement_both_log_probs_fall():
    # Measured (seeds 0-9, 300 steps): the margin ends at 5.7-9.9 on every seed, the rejected
    # log-prob falls on every seed, the chosen one falls too on 8/10 (not on seeds 0 and 1), and the
    # response that gains most is the one furthest along u_w - u_l on 9/10 (not seed 5).
    outs = [pb.likelihood_displacement(seed) for seed in range(10)]
    assert all(o["margin"] > 5 for o in outs)
    assert all(o["rejected_after"] < o["rejected_before"] - 3 for o in outs)
    both = sum(o["chosen_after"] < o["chosen_before"] for o in outs)
    assert both >= 7, both
    assert sum(o["gainer"] == o["furthest_along_difference"] for o in outs) >= 8
    assert all(o["gainer"] not in (0, 1) for o in outs)


def test_tabular_logits_show_no_displacement():
    # with one free logit per response, DPO's gradient is e_w - e_l: the chosen rises
    ref = pb.reference_policy(20, floor=0.1)
    for seed in SEEDS:
        gen = torch.Generator().manual_seed(seed)
        yw, yl = torch.randperm(20, generator=gen)[:2].tolist()
        theta = ref.log().clone().requires_grad_(True)
        opt = torch.optim.SGD([theta], lr=1.0)
        for _ in range(300):
            logp = torch.log_softmax(theta, -1)
            m = preference_losses.log_ratio_margin(logp[[yw]], logp[[yl]], ref.log()[[yw]], ref.log()[[yl]])
            opt.zero_grad()
            preference_losses.dpo_loss(m, 0.5).mean().backward()
            opt.step()
        logp = torch.log_softmax(theta.detach(), -1)
        assert logp[yw] > ref.log()[yw] and logp[yl] < ref.log()[yl]


@pytest.mark.unit
def test_best_of_n_distribution_and_its_kl():
    ref = pb.reference_policy(100)
    reward = pb.peaked_reward(100, 0.8)
    for seed in SEEDS:
        gen = torch.Generator().manual_seed(seed)
        n = 2 + seed
        bon = pb.best_of_n_policy(ref, reward, n)
        assert bon.sum() == pytest.approx(1.0, abs=1e-12)
        # Monte Carlo: the best of n samples (ties are symmetric pairs, broken by the draw order)
        s = torch.multinomial(ref.float(), 100_000 * n, replacement=True, generator=gen).view(-1, n)
        best = s.gather(1, reward[s].argmax(1, keepdim=True)).squeeze(1)
        emp = torch.bincount(best, minlength=100).double() / len(best)
        assert 0.5 * (emp - bon).abs().sum() < 0.02
        # tie-free rewards on a fine reference: the KL approaches log n - (n-1)/n from below
        big = pb.reference_policy(10_000)
        r_big = torch.rand(10_000, generator=gen, dtype=torch.float64)
        for k in (2, 16, 256):
            kl = pb.kl_divergence(pb.best_of_n_policy(big, r_big, k), big)
            assert kl <= pb.best_of_n_kl_bound(k) + 1e-9
            assert kl > pb.best_of_n_kl_bound(k) - 0.01
    assert pb.best_of_n_kl_bound(4) == pytest.approx(math.log(4) - 0.75)
    assert pb.best_of_n_policy(ref, reward, 1).sub(ref).abs().max() < 1e-12
    # all rewards tied: best-of-n is pi_ref itself
    assert pb.best_of_n_policy(ref, torch.zeros(100), 8).sub(ref).abs().max() < 1e-12


def test_forward_kl_covers_reverse_kl_seeks_a_mode():
    n = 100
    for seed in SEEDS:
        gen = torch.Generator().manual_seed(seed)
        a = 15 + 10 * torch.rand(1, generator=gen).item()
        b = 65 + 10 * torch.rand(1, generator=gen).item()
        w = 0.55 + 0.1 * torch.rand(1, generator=gen).item()  # the mode at b is the heavier
        target = ((1 - w) * pb.discrete_gaussian(n, torch.tensor(a), torch.tensor(6.0))
                  + w * pb.discrete_gaussian(n, torch.tensor(b), torch.tensor(6.0)))
        mid = int((a + b) / 2)
        fwd, rev = pb.fit_gaussian_kl(target, "forward"), pb.fit_gaussian_kl(target, "reverse")
        q_f = pb.discrete_gaussian(n, torch.tensor(fwd["mean"]), torch.tensor(fwd["std"]))
        q_r = pb.discrete_gaussian(n, torch.tensor(rev["mean"]), torch.tensor(rev["std"]))
        assert min(q_f[:mid].sum(), q_f[mid:].sum()) > 0.3  # covers both modes
        assert q_r[mid:].sum() > 0.99 and abs(rev["mean"] - b) < 1 and rev["std"] < 8  # sits on one
        assert abs(fwd["kl"] - pb.kl_divergence(target, q_f)) < 1e-9
        assert abs(rev["kl"] - pb.kl_divergence(q_r, target)) < 1e-9
        # each fit is bad under the other divergence
        assert pb.kl_divergence(target, q_r) > 5 * fwd["kl"]
        assert pb.kl_divergence(q_f, target) > rev["kl"]


def test_best_of_n_over_optimizes_a_flawed_proxy():
    # exact best-of-n, selecting by the gold reward plus a spurious bump: the proxy score rises
    # with n at every step, the gold score peaks at an interior n and then falls
    ref = pb.reference_policy(100)
    gold = pb.peaked_reward(100, 0.8)
    ns = (1, 16, 64, 256, 512, 1024, 4096)
    for spurious in (93, 95, 97):
        proxy = gold + 1.5 * pb.gaussian_bump(100, spurious, 2)
        pols = [pb.best_of_n_policy(ref, proxy, n) for n in ns]
        prox = [pb.expected_reward(p, proxy) for p in pols]
        gold_r = [pb.expected_reward(p, gold) for p in pols]
        assert all(b > a for a, b in zip(prox, prox[1:]))
        peak = max(range(len(ns)), key=lambda i: gold_r[i])
        assert 0 < peak < len(ns) - 1 and gold_r[-1] < 0.6 * gold_r[peak]


def test_offline_dpo_sits_on_the_reference_shoulder_online_dpo_collapses():
    # Measured (seeds 0-2): offline DPO's most likely y is 38-41 (prob 0.21-0.36) with 0.96-0.98 of
    # its mass on y in [35, 45]; on-policy DPO's is 51-52 (prob 0.62-0.99), where r(y) <= 0.002.
    runs = pb.run_methods(0.8, seeds=SEEDS, methods=("dpo_offline", "dpo_online"))
    reward = pb.peaked_reward(100, 0.8)
    for off, on in zip(runs["dpo_offline"], runs["dpo_online"]):
        p = off.policy.probs().detach().double()
        assert 35 <= int(p.argmax()) <= 45 and p[35:46].sum() > 0.9 and p.max() < 0.5
        q = on.policy.probs().detach().double()
        top = int(q.argmax())
        assert 46 <= top <= 58 and q[top] > 0.5 and reward[top] < 0.01
