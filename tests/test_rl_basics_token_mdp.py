"""Chapter 1, the language model as a policy: exact checks on a tiny GPT."""

import pytest
import torch

from minimal.core.gpt import GPT, GPTConfig
from minimal.token_mdp import TokenMDP, all_responses, gradient_estimators, sequence_kl

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
