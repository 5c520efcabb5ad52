"""The token-level MDP of a language model, computed exactly on a tiny one (chapter 1).

Equation labels refer to chapter 1, section "The language model as a policy":

* :class:`TokenMDP` is eq. ``token-mdp``: the state is the prompt plus the tokens so
  far, the action is the next token, the transition appends it (deterministic), and
  the only reward comes from a verifier when the response ends;
* :func:`response_logprobs` is eq. ``sequence-logprob``,
  log pi(y | x) = sum_t log pi(y_t | x, y_<t);
* :func:`gradient_estimators` compares the *bandit* view (one action = the whole
  response, sequence-level baseline) with the *sequential* view (one action per
  token, per-token value baseline), eq. ``token-pg``, and with the TD advantage
  V(x, y_<=t) - V(x, y_<t) of eq. ``token-td-advantage``: exact expectations and
  variances over all responses, which a vocabulary of 3 words plus the end token
  and at most 4 new tokens allow;
* :func:`sequence_kl` checks eq. ``kl-decomposition``: the KL between two
  response distributions is the expected sum of per-token log-ratios;
* :func:`kl_estimator_moments` gives the exact mean and variance of the one-sample
  KL estimators k1, k2 and k3 (eq. ``kl-estimators``) on two categoricals, and
  :func:`kl_loss_gradients` the exact expected gradient of each when it is put in the
  loss and differentiated (eq. ``kl-in-loss-gradients``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import torch

from minimal.core.gpt import GPT
from minimal.core.rl import kl_k1, kl_k2, kl_k3
from minimal.core.train import one_thread

Verifier = Callable[[tuple[int, ...], tuple[int, ...]], float]


class TokenMDP(gym.Env):
    """Text generation as an MDP: observation = prompt + response so far (a tuple of ids).

    ``step(token)`` appends the token; the episode terminates at ``eos`` or after
    ``max_new_tokens`` tokens, and only then pays ``verifier(prompt, response)``.
    """

    def __init__(self, prompt: list[int], vocab_size: int, eos: int, max_new_tokens: int,
                 verifier: Verifier):
        if not 0 <= eos < vocab_size:
            raise ValueError(f"eos = {eos} is not a token id in [0, {vocab_size})")
        if max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
        if not prompt or any(not 0 <= t < vocab_size for t in prompt):
            raise ValueError(f"prompt must be a non-empty list of ids in [0, {vocab_size})")
        self.prompt, self.eos, self.max_new_tokens = tuple(prompt), eos, max_new_tokens
        self.verifier = verifier
        self.action_space = gym.spaces.Discrete(vocab_size)
        self.observation_space = gym.spaces.Sequence(gym.spaces.Discrete(vocab_size))
        self.state = self.prompt

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.prompt
        return self.state, {}

    def step(self, token: int):
        if not self.action_space.contains(token):
            raise ValueError(f"token must be an int in [0, {self.action_space.n}), got {token!r}")
        self.state = self.state + (int(token),)  # deterministic transition: append
        response = self.state[len(self.prompt):]
        done = int(token) == self.eos or len(response) >= self.max_new_tokens
        reward = float(self.verifier(self.prompt, response)) if done else 0.0
        return self.state, reward, done, False, {}


def all_responses(vocab_size: int, eos: int, max_new_tokens: int) -> list[tuple[int, ...]]:
    """Every complete response: k words then eos (k < max_new_tokens), or max_new_tokens words."""
    words = [t for t in range(vocab_size) if t != eos]
    out = []
    for k in range(max_new_tokens + 1):
        for body in itertools.product(words, repeat=k):
            out.append(body + (eos,) if k < max_new_tokens else body)
    return out


def response_logprobs(model: GPT, prompt: tuple[int, ...], responses: list[tuple[int, ...]]):
    """Per-token log pi(y_t | x, y_<t), (R, L) zero-padded, and the mask (R, L) of real tokens.

    Their row sums are log pi(y | x) (eq. ``sequence-logprob``).
    """
    L, P = max(len(y) for y in responses), len(prompt)
    tokens = torch.zeros(len(responses), P + L, dtype=torch.long)  # (R, P+L), padded with 0
    mask = torch.zeros(len(responses), L)
    for i, y in enumerate(responses):
        tokens[i, :P + len(y)] = torch.tensor(prompt + y)
        mask[i, :len(y)] = 1.0
    per_token = model.token_logprobs(tokens)[:, P - 1:]  # (R, L): predictions of y_1..y_L
    return per_token * mask, mask


@dataclass
class Estimators:
    """Exact mean gradient and variance (trace of the covariance) of each estimator."""

    true_grad: torch.Tensor      # gradient of J(theta) = sum_y pi(y|x) R(y), by autograd
    means: dict[str, torch.Tensor]
    variances: dict[str, float]
    J: float


def prefix_values(probs: torch.Tensor, rewards: torch.Tensor, responses) -> torch.Tensor:
    """V(x, y_<t) = E[R | prefix] under pi, for every response and position t, (R, L + 1).

    Column t (0-based) is the value of the prefix of the first t response tokens, i.e. the
    state before token t + 1; column len(y) is the complete response, whose value is its
    reward R(y) (entries past it are 0).
    """
    L = max(len(y) for y in responses)
    total, mass = {}, {}
    for p, r, y in zip(probs.tolist(), rewards.tolist(), responses):
        for t in range(len(y) + 1):
            total[y[:t]] = total.get(y[:t], 0.0) + p * r
            mass[y[:t]] = mass.get(y[:t], 0.0) + p
    V = torch.zeros(len(responses), L + 1)
    for i, y in enumerate(responses):
        for t in range(len(y) + 1):
            V[i, t] = total[y[:t]] / mass[y[:t]]
    return V


def gradient_estimators(model: GPT, prompt, responses, rewards: torch.Tensor) -> Estimators:
    """Four single-sample estimators of grad J (eq. ``token-pg``), computed exactly.

    * ``no baseline``: grad log pi(y|x) * R(y)  (REINFORCE on whole responses);
    * ``bandit (b = J)``: grad log pi(y|x) * (R(y) - J), the sequence-level baseline
      that group-mean methods approximate;
    * ``sequential (b = V(prefix))``: sum_t grad log pi(y_t|...) * (R(y) - V(x, y_<t)),
      the Monte-Carlo weight with the per-token critic baseline, with the exact V;
    * ``TD advantage``: sum_t grad log pi(y_t|...) * (V(x, y_<=t) - V(x, y_<t)), eq.
      ``token-td-advantage``: the exact advantage of each token (transitions are
      deterministic, so Q(s_t, y_t) = V(s_{t+1}); the value after the last token is R(y)).
    All four have mean grad J; their variances differ.
    """
    with one_thread():  # hundreds of tiny backward passes: threads only add overhead
        return _gradient_estimators(model, prompt, responses, rewards)


def _gradient_estimators(model, prompt, responses, rewards) -> Estimators:
    if rewards.shape != (len(responses),):
        raise ValueError(f"rewards must have shape ({len(responses)},), got {tuple(rewards.shape)}")
    params = [p for p in model.parameters() if p.requires_grad]
    flat = lambda gs: torch.cat([g.reshape(-1) for g in gs])  # noqa: E731
    per_token, mask = response_logprobs(model, tuple(prompt), responses)  # (R, L)
    logp = per_token.sum(-1)  # (R,) log pi(y|x)
    probs = logp.exp()
    if not torch.allclose(probs.sum(), torch.tensor(1.0), atol=1e-4):
        raise ValueError(f"responses cover probability {probs.sum().item():.4f}, not 1: "
                         "pass all_responses(...) for this vocabulary, eos and length")
    J = (probs * rewards).sum()
    true_grad = flat(torch.autograd.grad(J, params, retain_graph=True))
    V = prefix_values(probs.detach(), rewards, responses)  # (R, L + 1)
    weights = {"no baseline": rewards[:, None].expand_as(mask),
               "bandit (b = J)": (rewards - J.detach())[:, None].expand_as(mask),
               "sequential (b = V(prefix))": rewards[:, None] - V[:, :-1],
               "TD advantage": V[:, 1:] - V[:, :-1]}  # (R, L) each
    means, variances = {}, {}
    for name, w in weights.items():
        gs = torch.stack([flat(torch.autograd.grad((per_token[i] * w[i] * mask[i]).sum(), params,
                                                   retain_graph=True))
                          for i in range(len(responses))])  # (R, n_params)
        mean = (probs.detach()[:, None] * gs).sum(0)
        second = (probs.detach() * gs.pow(2).sum(-1)).sum()
        means[name], variances[name] = mean, float(second - mean.pow(2).sum())
    return Estimators(true_grad, means, variances, float(J.detach()))


def sequence_kl(model: GPT, ref: GPT, prompt, responses) -> tuple[float, float, float]:
    """KL(pi(.|x) || pi_ref(.|x)) three ways (eq. ``kl-decomposition``), all equal:

    over whole responses; as the expected sum of per-token log-ratios log pi/pi_ref of the
    sampled tokens; and as the expected sum of full per-token KLs at each visited prefix.
    """
    with torch.no_grad(), one_thread():
        lp, mask = response_logprobs(model, tuple(prompt), responses)  # (R, L)
        lq, _ = response_logprobs(ref, tuple(prompt), responses)
        p = lp.sum(-1).exp()  # (R,)
        by_sequence = float((p * (lp.sum(-1) - lq.sum(-1))).sum())
        by_token_ratio = float((p[:, None] * (lp - lq) * mask).sum())
        # full next-token KL at each prefix, weighted by the prefix's probability
        prefixes = {y[:t] for y in responses for t in range(len(y))}
        by_token_kl = 0.0
        P = len(prompt)
        for pre in prefixes:
            ids = torch.tensor([tuple(prompt) + pre])  # (1, P + t)
            log_pi = torch.log_softmax(model(ids)[0][0, -1].float(), -1)  # (V,)
            log_ref = torch.log_softmax(ref(ids)[0][0, -1].float(), -1)
            # probability of reaching this prefix: product of its token probabilities
            reach = model.token_logprobs(ids)[0, P - 1:].sum().exp() if pre else torch.tensor(1.0)
            by_token_kl += float(reach * (log_pi.exp() * (log_pi - log_ref)).sum())
    return by_sequence, by_token_ratio, by_token_kl


def kl_estimator_moments(q: torch.Tensor, p: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Exact (mean, variance) of the one-sample estimators k1, k2, k3 of KL(q || p), y ~ q.

    ``q`` and ``p`` are probability vectors over the same finite set; eq. ``kl-estimators``.
    Also returns ``"KL"``: (the exact KL(q || p), 0).
    """
    if q.shape != p.shape or q.dim() != 1:
        raise ValueError(f"q and p must be probability vectors of one shape, got "
                         f"{tuple(q.shape)} and {tuple(p.shape)}")
    q, p = q.double(), p.double()
    lq, lp = q.log(), p.log()
    out = {"KL": (float((q * (lq - lp)).sum()), 0.0)}
    for name, k in (("k1", kl_k1), ("k2", kl_k2), ("k3", kl_k3)):
        values = k(lq, lp)  # the estimator's value at each outcome y
        mean = (q * values).sum()
        out[name] = (float(mean), float((q * (values - mean).pow(2)).sum()))
    return out


def kl_loss_gradients(logits: torch.Tensor, p: torch.Tensor) -> dict[str, torch.Tensor]:
    """Expected gradient in ``logits`` of each KL estimator used as a loss (eq. ``kl-in-loss-gradients``).

    q = softmax(logits) is the policy, p a fixed reference.  For k in (k1, k2, k3) this is
    E_{y ~ q}[grad k(y)], the sampling distribution held fixed, as when a KL estimate at
    on-policy samples is added to the loss (the KL in the loss).  Also returns the true
    gradients of the reverse KL(q || p) (``"grad KL(q||p)"``) and of the forward KL(p || q)
    (``"grad KL(p||q)"``).  Exact, in float64.
    """
    theta = logits.detach().double().requires_grad_(True)
    lp = p.double().log()
    out = {}
    for name, k in (("k1", kl_k1), ("k2", kl_k2), ("k3", kl_k3)):
        lq = torch.log_softmax(theta, -1)
        weights = lq.exp().detach()  # sampling distribution: not differentiated
        out[name] = torch.autograd.grad((weights * k(lq, lp)).sum(), theta)[0]
    lq = torch.log_softmax(theta, -1)
    out["grad KL(q||p)"] = torch.autograd.grad((lq.exp() * (lq - lp)).sum(), theta)[0]
    lq = torch.log_softmax(theta, -1)
    out["grad KL(p||q)"] = torch.autograd.grad((lp.exp() * (lp - lq)).sum(), theta)[0]
    return out


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
