"""The letters task: chapter 3's synthetic alignment world, with a gold reward in code.

Chapter "Inverse RL for alignment".  Everything here is the world the reward model
(:mod:`minimal.reward_model`), DPO (:mod:`minimal.dpo`) and RLHF-PPO
(:mod:`minimal.rlhf_ppo`) learn in; nothing here learns:

* a **prompt** is the single token ``>``; a **response** y is ``response_len``
  letters from ``abcdefgh``;
* the **reference policy** pi_ref is a tiny GPT (:class:`minimal.core.gpt.GPT`)
  at its random initialisation, which is close to uniform over letters (a
  stand-in for a supervised model; nothing is downloaded): :func:`make_reference`;
* the **gold reward** r*(y) = #a(y) - #h(y) - 2 [y has three equal letters in
  a row] is a "sentiment count" with a constraint (:func:`gold_reward`);
* **preference pairs**: two responses sampled from pi_ref, the first wins
  with probability sigma(r*(y_1) - r*(y_2)) (eq. ``bt-preference``):
  :func:`make_preference_data`.  Optionally the raters carry a systematic bias
  the gold reward does not share (``rater_bias`` extra utility per letter
  ``e``, :func:`rater_utility`), the setting of the over-optimization curve in
  :mod:`minimal.rlhf_ppo`;
* a policy's **responses and their log-probabilities** never include the prompt
  token (:func:`sample_responses`, :func:`response_token_logprobs`, through the
  GPT's own ``banned_ids``), and :func:`score_policy` reports a policy's mean gold
  reward and its KL to pi_ref.
"""

from __future__ import annotations

import torch

from minimal.core.gpt import GPT, CharTokenizer, GPTConfig
from minimal.core.rl import kl_k1

ALPHABET = ">abcdefgh"  # '>' is the prompt token
TOKENIZER = CharTokenizer(ALPHABET)
PROMPT_ID = TOKENIZER.stoi[">"]


def gold_reward(tokens: torch.Tensor) -> torch.Tensor:
    """r*(y) for token ids (B, L) of responses (no prompt): #a - #h - 2 [three equal in a row], (B,)."""
    if tokens.dim() != 2 or tokens.size(1) < 3:
        raise ValueError(f"responses must be (B, L) with L >= 3, got {tuple(tokens.shape)}")
    a, h = TOKENIZER.stoi["a"], TOKENIZER.stoi["h"]
    count = (tokens == a).sum(1).float() - (tokens == h).sum(1).float()  # (B,)
    triple = ((tokens[:, 2:] == tokens[:, 1:-1]) & (tokens[:, 1:-1] == tokens[:, :-2])).any(1)
    return count - 2.0 * triple.float()


BIAS_LETTER = "e"  # the letter biased raters like; the gold reward ignores it


def rater_utility(tokens: torch.Tensor, rater_bias: float = 0.0) -> torch.Tensor:
    """What the raters' comparisons follow: r*(y) + rater_bias * #e(y), shape (B,)."""
    bias = (tokens == TOKENIZER.stoi[BIAS_LETTER]).sum(1).float()  # (B,)
    return gold_reward(tokens) + rater_bias * bias


def make_reference(n_layer: int, n_head: int, n_embd: int, response_len: int,
                   seed: int) -> GPT:
    """pi_ref: a tiny GPT at its seeded random initialisation (close to uniform).

    The caller's global torch RNG is left as it was (``fork_rng``), so building
    pi_ref does not reseed whatever the caller draws next.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT(GPTConfig(vocab_size=len(ALPHABET), block_size=response_len + 1,
                             n_layer=n_layer, n_head=n_head, n_embd=n_embd))


@torch.no_grad()
def sample_responses(policy: GPT, n: int, response_len: int, gen: torch.Generator) -> torch.Tensor:
    """n responses from the policy, letters only, shape (n, L): the prompt token is banned."""
    device = next(policy.parameters()).device
    prompt = torch.full((n, 1), PROMPT_ID, dtype=torch.long, device=device)
    return policy.generate(prompt, response_len, generator=gen, banned_ids=(PROMPT_ID,))[:, 1:]


def with_prompt(responses: torch.Tensor) -> torch.Tensor:
    """Prepend the prompt token: (B, L) -> (B, L + 1)."""
    prompt = torch.full_like(responses[:, :1], PROMPT_ID)
    return torch.cat([prompt, responses], dim=1)


def make_preference_data(reference: GPT, n_pairs: int, response_len: int,
                         seed: int, rater_bias: float = 0.0) -> dict[str, torch.Tensor]:
    """Pairs from pi_ref labelled by Bradley-Terry sampling of the gold reward.

    With ``rater_bias`` the labels follow :func:`rater_utility` instead.
    Returns ``chosen`` and ``rejected`` responses, each (n_pairs, L).
    """
    gen = torch.Generator().manual_seed(seed)
    y1 = sample_responses(reference, n_pairs, response_len, gen).cpu()  # (n, L)
    y2 = sample_responses(reference, n_pairs, response_len, gen).cpu()
    p1 = torch.sigmoid(rater_utility(y1, rater_bias) - rater_utility(y2, rater_bias))  # (n,)
    first = (torch.rand(n_pairs, generator=gen) < p1)[:, None]
    return {"chosen": torch.where(first, y1, y2), "rejected": torch.where(first, y2, y1)}


def response_token_logprobs(model: GPT, responses: torch.Tensor) -> torch.Tensor:
    """log pi(y_t | prompt, y_<t) for every response token, shape (B, L).

    The prompt token is never sampled, so each per-token distribution is renormalised
    over the letters (``banned_ids``), as :func:`sample_responses` samples it.
    """
    return model.token_logprobs(with_prompt(responses), banned_ids=(PROMPT_ID,))  # (B, L)


def sequence_logprob(model: GPT, responses: torch.Tensor) -> torch.Tensor:
    """log pi(y | prompt) = sum_t log pi(y_t | prompt, y_<t), shape (B,)."""
    return response_token_logprobs(model, responses).sum(-1)  # (B,)


@torch.no_grad()
def score_policy(policy: GPT, reference: GPT, n: int, response_len: int, seed: int,
                 reward=None) -> dict[str, float]:
    """Mean gold reward of n samples, and KL(pi || pi_ref) ~ mean of log pi - log pi_ref on them.

    With ``reward`` (a learned r_phi: responses (n, L) -> scores (n,)), also its mean on the
    same samples, as ``proxy``.
    """
    gen = torch.Generator().manual_seed(seed)
    y = sample_responses(policy, n, response_len, gen)  # (n, L)
    kl = kl_k1(sequence_logprob(policy, y), sequence_logprob(reference, y)).mean()
    out = {"gold_reward": float(gold_reward(y.cpu()).mean()), "kl": float(kl)}
    if reward is not None:
        out["proxy"] = float(reward(y).mean())
    return out


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
