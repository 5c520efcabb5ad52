"""Chapter 1, the language model as a policy: exact checks on a tiny GPT."""

import math

import pytest
import torch

from minimal.core.gpt import GPT, GPTConfig
from minimal.token_mdp import (
    TokenMDP,
    all_responses,
    gradient_estimators,
    kl_estimator_moments,
    kl_loss_gradients,
    prefix_values,
    response_logprobs,
    sequence_kl,
)

PROMPT, EOS = (1, 2), 0
RESPONSES = all_responses(4, EOS, 4)
REWARDS = torch.tensor([float(y.count(1) == 2) for y in RESPONSES])  # verifier: two 'a's


def tiny_gpt(seed):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=4, block_size=8, n_layer=1, n_head=2, n_embd=16))


def test_token_mdp_pays_the_verifier_reward_only_at_the_end():
    env = TokenMDP(list(PROMPT), vocab_size=4, eos=EOS, max_new_tokens=4,
                   verifier=lambda x, y: float(y.count(1) == 2))
    s, _ = env.reset(seed=0)
    assert s == PROMPT
    steps = [env.step(t) for t in (1, 3, 1, 0)]
    assert [r for _, r, _, _, _ in steps] == [0.0, 0.0, 0.0, 1.0]
    assert [d for _, _, d, _, _ in steps] == [False, False, False, True]
    assert steps[-1][0] == PROMPT + (1, 3, 1, 0)
    with pytest.raises(ValueError, match="token must be an int"):
        env.step(9)
    with pytest.raises(ValueError, match="eos = 7 is not a token id"):
        TokenMDP([1], 4, 7, 4, lambda x, y: 0.0)
    assert len(RESPONSES) == 1 + 3 + 9 + 27 + 81


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bandit_and_sequential_estimators_agree_in_mean_and_the_critic_cuts_variance(seed):
    est = gradient_estimators(tiny_gpt(seed), PROMPT, RESPONSES, REWARDS)
    for name, mean in est.means.items():
        assert torch.allclose(mean, est.true_grad, atol=1e-6), name
    v = est.variances
    # measured (seeds 0-2): 19.2 > 15.9 > 14.0, 24.2 > 19.9 > 17.8, 17.2 > 14.3 > 12.7
    assert v["no baseline"] > 1.1 * v["bandit (b = J)"]
    assert v["bandit (b = J)"] > 1.05 * v["sequential (b = V(prefix))"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sequence_kl_is_the_sum_of_token_kls(seed):
    a, b, c = sequence_kl(tiny_gpt(seed), tiny_gpt(seed + 10), PROMPT, RESPONSES)
    assert a > 1e-3
    assert a == pytest.approx(b, rel=1e-4) and a == pytest.approx(c, rel=1e-4)


def test_incomplete_response_sets_are_rejected():
    with pytest.raises(ValueError, match="responses cover probability"):
        gradient_estimators(tiny_gpt(0), PROMPT, RESPONSES[:50], REWARDS[:50])
    with pytest.raises(ValueError, match="rewards must have shape"):
        gradient_estimators(tiny_gpt(0), PROMPT, RESPONSES, REWARDS[:3])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_td_advantage_has_a_fraction_of_the_monte_carlo_variance(seed):
    est = gradient_estimators(tiny_gpt(seed), PROMPT, RESPONSES, REWARDS)
    assert torch.allclose(est.means["TD advantage"], est.true_grad, atol=1e-6)
    v = est.variances
    # measured (seeds 0-2): 3.37 / 14.00, 4.44 / 17.83, 3.36 / 12.68 = 0.24, 0.25, 0.26
    assert v["TD advantage"] < 0.35 * v["sequential (b = V(prefix))"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monte_carlo_blames_every_token_of_a_failure_td_credits_good_ones(seed):
    with torch.no_grad():
        per_token, _ = response_logprobs(tiny_gpt(seed), PROMPT, RESPONSES)
    V = prefix_values(per_token.sum(-1).exp(), REWARDS, RESPONSES)
    y = (1, 1, 1, 0)  # "a a a eos" fails the exactly-two-a verifier
    i, n = RESPONSES.index(y), len(y)
    assert REWARDS[i] == 0 and V[i, n] == 0  # the value of a complete response is its reward
    mc, td = REWARDS[i] - V[i, :n], V[i, 1:n + 1] - V[i, :n]
    assert (mc <= 0).all()
    # measured (seeds 0-2): TD = +0.18 +0.30 -0.60 0 and alike
    assert td[0] > 0.1 and td[1] > 0.1 and td[2] < -0.3 and td[3] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_prefix_baseline_helps_more_with_a_dense_reward(seed):
    dense = torch.tensor([y.count(1) - 2.0 * (y.count(1) > 2) for y in RESPONSES])
    vd = gradient_estimators(tiny_gpt(seed), PROMPT, RESPONSES, dense).variances
    vt = gradient_estimators(tiny_gpt(seed), PROMPT, RESPONSES, REWARDS).variances
    gain = lambda v: v["sequential (b = V(prefix))"] / v["bandit (b = J)"]  # noqa: E731
    # measured (seeds 0-2): dense 0.60, 0.63, 0.62; terminal verifier 0.88, 0.90, 0.89
    assert gain(vd) < 0.75 < 0.8 < gain(vt)
    assert vd["TD advantage"] < vd["sequential (b = V(prefix))"]


@pytest.mark.unit
def test_kl_estimators_k1_k3_unbiased_k2_biased_k3_least_noisy():
    # hand-computed: q = (1/2, 1/2), p = (1/4, 3/4); log rho = log(p/q) = (-log 2, log 1.5)
    q, p = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    a, b = -math.log(2), math.log(1.5)
    m = kl_estimator_moments(q, p)
    kl = -(a + b) / 2
    assert m["KL"][0] == pytest.approx(kl, abs=1e-12)
    assert m["k1"] == pytest.approx((kl, ((a - b) / 2) ** 2), abs=1e-12)
    assert m["k2"][0] == pytest.approx((a * a + b * b) / 4, abs=1e-12)
    k3 = [(0.5 - 1) - a, (1.5 - 1) - b]
    assert m["k3"] == pytest.approx((kl, ((k3[0] - k3[1]) / 2) ** 2), abs=1e-12)
    z = torch.tensor([1.5, 0.5, -0.5, -1.5], dtype=torch.float64)
    for d in (0.1, 0.5, 1.0, 2.0):  # the notebook's sweep
        m = kl_estimator_moments(torch.full((4,), 0.25, dtype=torch.float64), torch.softmax(d * z, 0))
        assert m["k1"][0] == pytest.approx(m["KL"][0], rel=1e-9)
        assert m["k3"][0] == pytest.approx(m["KL"][0], rel=1e-9)
        assert m["k2"][0] > (1.002 if d < 0.5 else 1.05) * m["KL"][0]  # measured: +0.45% at d = 0.1
        assert m["k3"][1] <= 1.01 * m["k2"][1] and m["k3"][1] < 0.35 * m["k1"][1]
    assert m["k2"][1] > m["k1"][1] and m["k2"][0] > 2 * m["KL"][0]  # d = 2: k2 the noisiest, biased 2x
    with pytest.raises(ValueError, match="probability vectors"):
        kl_estimator_moments(q, torch.tensor([0.2, 0.3, 0.5]))


@pytest.mark.unit
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_estimators_in_the_loss_give_zero_reverse_and_forward_kl_gradients(seed):
    torch.manual_seed(seed)
    g = kl_loss_gradients(torch.randn(5), torch.softmax(torch.randn(5), 0))
    assert g["k1"].abs().max() < 1e-12
    assert torch.allclose(g["k2"], g["grad KL(q||p)"], atol=1e-12)
    assert torch.allclose(g["k3"], g["grad KL(p||q)"], atol=1e-12)
    assert (g["grad KL(q||p)"] - g["grad KL(p||q)"]).abs().max() > 0.05  # they differ
