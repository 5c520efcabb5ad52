"""The policy-gradient equations every RL trainer in the book shares, each written once.

Tensor in, tensor out, with the equation's scalars as explicit arguments (never a
config or a model), so each function can be read beside its equation and tested on a
hand-computed case (``tests/test_equations.py``).  Read top to bottom:

* :func:`gae`: generalized advantage estimation (chapter 1, eq. ``gae``);
* :func:`whiten`: advantages normalised to mean 0 and standard deviation 1 over a batch;
* :func:`group_advantages`: reward minus the group mean, over the group's or the
  batch's standard deviation, or over nothing (chapter 2, eq. ``group-advantage``);
* :func:`leave_one_out_advantages`: reward minus the mean of the group's *other* samples
  (RLOO; chapter 2, eq. ``rloo-advantage``);
* :func:`soft_overlong_penalty`: DAPO's length-aware reward term, 0 up to a buffer before the
  length limit, then falling linearly to -1 at the limit;
* :func:`pass_at_k_from_counts`: the unbiased pass@k estimator from c right samples out of n
  (chapter 2; the tasks' ``pass_at_k`` draw the samples);
* :func:`clipped_surrogate`: PPO's pessimistic surrogate with clip range
  ``[1 - eps_low, 1 + eps_high]`` (chapter 1, eq. ``ppo-clip``; chapter 2, eq. ``grpo-loss``);
* :func:`kl_k1` and :func:`kl_k3`: the two one-sample estimators of a KL divergence that
  the trainers use (chapter 1, section "PPO"; chapter 2, eq. ``grpo-loss``), and
  :func:`kl_k2`, the third one that chapter 1 compares them with (eq. ``kl-estimators``;
  :mod:`minimal.token_mdp` computes all three exactly).

Who calls what: :mod:`minimal.policy_gradient` (CartPole) uses :func:`gae`,
:func:`whiten`, :func:`clipped_surrogate` and :func:`kl_k3`; :mod:`minimal.rlhf_ppo`
uses :func:`gae`, :func:`whiten`, :func:`clipped_surrogate` and :func:`kl_k1`;
:mod:`minimal.grpo` uses :func:`group_advantages`, :func:`leave_one_out_advantages`,
:func:`soft_overlong_penalty`, :func:`clipped_surrogate`, :func:`kl_k3` and :func:`kl_k1`.
Logged metrics follow one convention: ``approx_kl`` is
always k3 and ``old_approx_kl`` always k1, both of KL(pi_old || pi_theta).
"""

from __future__ import annotations

import torch


def gae(rewards, values, next_values, dones, gamma: float, gae_lambda: float):
    """Generalized advantage estimation (eq. ``gae``); all inputs (T, N).

    delta_t = r_t + gamma V(s_{t+1}) - V(s_t);  A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}.
    With lambda = 1 this is the Monte Carlo return-to-go minus V(s_t) (REINFORCE's advantage),
    bootstrapped only where the rollout ends mid-episode; with lambda = 0 it is the one-step TD error.
    Returns (advantages, value targets A_t + V(s_t)), both (T, N).
    """
    if not (rewards.shape == values.shape == next_values.shape == dones.shape):
        raise ValueError(f"gae needs equal shapes, got rewards {tuple(rewards.shape)}, values "
                         f"{tuple(values.shape)}, next_values {tuple(next_values.shape)}, "
                         f"dones {tuple(dones.shape)}")
    delta = rewards + gamma * next_values - values  # (T, N) one-step TD errors
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])  # (N,)
    for t in reversed(range(len(rewards))):
        running = delta[t] + gamma * gae_lambda * (1.0 - dones[t]) * running
        adv[t] = running
    return adv, adv + values


def whiten(adv: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(A - mean A) / (std A + eps) over every entry: the usual PPO advantage normalisation."""
    return (adv - adv.mean()) / (adv.std() + eps)


def group_advantages(rewards: torch.Tensor, norm: str, eps: float = 1e-6) -> torch.Tensor:
    """Eq. ``group-advantage`` on rewards of shape (B, G) -> advantages (B, G).

    ``group``: (r - group mean) / group std; ``batch``: (r - group mean) /
    batch std; ``none``: r - group mean.  A group whose samples all got the
    same reward has zero advantage under every choice: it teaches nothing.
    Eq. ``grpo-gradient-weights`` (chapter 2) shows what ``group`` does to the
    gradient: a prompt with success rate p is weighted by 1 / sqrt(p (1 - p)), the
    difficulty bias that Dr. GRPO removes with ``none``.
    """
    if rewards.dim() != 2 or rewards.size(1) < 2:
        raise ValueError(f"rewards must have shape (prompts, group_size >= 2), "
                         f"got {tuple(rewards.shape)}")
    if norm not in ("group", "batch", "none"):
        raise ValueError(f"unknown advantage normalisation {norm!r}")
    centered = rewards - rewards.mean(1, keepdim=True)  # (B, G) group baseline
    if norm == "group":
        return centered / (rewards.std(1, keepdim=True) + eps)
    if norm == "batch":
        return centered / (rewards.std() + eps)
    return centered


def leave_one_out_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Eq. ``rloo-advantage`` on rewards (B, G) -> advantages (B, G).

    A_i = r_i - (1 / (G - 1)) sum_{j != i} r_j = G / (G - 1) (r_i - mean r): each sample's
    baseline is the mean of the other G - 1 samples of its group, so it does not depend on
    the sample it scores (unbiased), and no standard deviation divides it.
    """
    if rewards.dim() != 2 or rewards.size(1) < 2:
        raise ValueError(f"rewards must have shape (prompts, group_size >= 2), "
                         f"got {tuple(rewards.shape)}")
    G = rewards.size(1)
    others = (rewards.sum(1, keepdim=True) - rewards) / (G - 1)  # (B, G) mean of the others
    return rewards - others


def soft_overlong_penalty(lengths: torch.Tensor, max_len: int, buffer: int) -> torch.Tensor:
    """Eq. ``soft-overlong``: DAPO's soft overlong punishment, a reward term for response
    lengths |y| (N,) -> (N,).

    0 while |y| <= max_len - buffer; (max_len - buffer - |y|) / buffer inside the last
    ``buffer`` tokens of the limit (from 0 down to -1 at |y| = max_len); -1 beyond.
    """
    if not 0 < buffer <= max_len:
        raise ValueError(f"need 0 < buffer <= max_len, got buffer={buffer}, max_len={max_len}")
    over = (lengths.float() - (max_len - buffer)).clamp(min=0)  # tokens inside the buffer
    return -(over / buffer).clamp(max=1.0)


def pass_at_k_from_counts(correct: torch.Tensor, n: int, ks) -> dict[int, float]:
    """Pass@k from ``correct`` (N,) right samples out of ``n`` per prompt, for each k in ``ks``.

    The unbiased estimator ``1 - C(n - c, k) / C(n, k)`` (the chance that k of the n samples,
    drawn without replacement, are all wrong, subtracted from 1), averaged over prompts.
    """
    if not ks or max(ks) > n or min(ks) < 1:
        raise ValueError(f"need 1 <= k <= n = {n} for every k, got {list(ks)}")
    out = {}
    for k in ks:
        # C(n-c, k) / C(n, k) = prod_{i=0}^{k-1} (n - c - i) / (n - i), zero when n - c < k
        i = torch.arange(k).unsqueeze(0)  # (1, k)
        fail_all = ((n - correct.unsqueeze(1) - i).clamp(min=0) / (n - i)).prod(1)  # (N,)
        out[k] = (1 - fail_all).mean().item()
    return out


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, eps_low: float,
                      eps_high: float) -> torch.Tensor:
    """Eq. ``ppo-clip`` elementwise, as a loss: -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A).

    ``ratio`` is rho = pi_theta / pi_old; ``adv`` broadcasts against it.  Symmetric PPO has
    ``eps_low = eps_high = epsilon``; clip-higher (DAPO) raises ``eps_high`` only.  The caller
    averages (over samples, or over tokens and sequences: eq. ``loss-aggregation``).
    """
    clipped = ratio.clamp(1 - eps_low, 1 + eps_high)
    return -torch.minimum(ratio * adv, clipped * adv)


def clip_active(ratio: torch.Tensor, adv: torch.Tensor, eps_low: float,
                eps_high: float) -> torch.Tensor:
    """Where the clip of :func:`clipped_surrogate` takes the gradient away: the ratio has left
    its range on the side the advantage's sign pushes it to.  Bool, the shape of ``ratio * adv``."""
    return (adv > 0) & (ratio > 1 + eps_high) | (adv < 0) & (ratio < 1 - eps_low)


def kl_k1(logp_q: torch.Tensor, logp_p: torch.Tensor) -> torch.Tensor:
    """k1 = log q(y) - log p(y) at samples y ~ q: unbiased for KL(q || p), but each term may be < 0."""
    return logp_q - logp_p


def kl_k2(logp_q: torch.Tensor, logp_p: torch.Tensor) -> torch.Tensor:
    """k2 = (log p(y) - log q(y))^2 / 2 at samples y ~ q (eq. ``kl-estimators``).

    Never negative and biased for KL(q || p); its mean is KL to second order in log rho.
    """
    return 0.5 * (logp_p - logp_q).pow(2)


def kl_k3(logp_q: torch.Tensor, logp_p: torch.Tensor) -> torch.Tensor:
    """k3 = (rho - 1) - log rho with rho = p(y) / q(y), at samples y ~ q.

    Unbiased for KL(q || p), like k1, and never negative (log rho <= rho - 1), so its
    one-sample values have lower variance when p and q are close.
    """
    log_rho = logp_p - logp_q
    return (log_rho.exp() - 1) - log_rho


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
