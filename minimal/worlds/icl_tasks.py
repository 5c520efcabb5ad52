"""Urn tasks and their two exact Bayesian predictors.

Chapter "In-context learning as rational (Bayesian) inference", section
"Two Bayesian predictors".  A *task* is an urn: a categorical distribution
``theta`` over ``K`` symbols, drawn from a Dirichlet prior (eq. ``icl-prior``),

    theta ~ Dirichlet(alpha * 1_K),   x_1, x_2, ... ~ Categorical(theta) i.i.d.

Training uses ``D`` urns drawn once and for all.  After a context
``x_{1:t}`` with symbol counts ``n_t``, two Bayes-optimal predictors of the
next symbol are available in closed form:

* the **memorizing** predictor M (eq. ``icl-memorizing``) puts a uniform prior
  on the D training urns only and averages them by their posterior weight,
  ``M(k | x_{1:t}) = sum_d w_d(t) theta_d[k]`` with
  ``w_d(t) propto prod_k theta_d[k]^{n_t[k]}``;
* the **generalizing** predictor G (eq. ``icl-generalizing``) uses the true
  Dirichlet prior; its posterior predictive is the smoothed frequency
  ``G(k | x_{1:t}) = (n_t[k] + alpha) / (t + K alpha)``.

M is optimal on the training mixture, G on the task distribution itself.
Reading order: :func:`sample_tasks`, :func:`sample_sequences`,
:func:`prefix_counts`, :func:`memorizing_predictor`,
:func:`generalizing_predictor`, :func:`kl`, :func:`expected_loss`.
"""

from __future__ import annotations

import numpy as np
import torch


def _check_positive_int(name: str, value) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def sample_tasks(D: int, K: int, alpha: float, seed: int) -> torch.Tensor:
    """D urns drawn from Dirichlet(alpha 1_K) (eq. ``icl-prior``); returns (D, K) float64."""
    _check_positive_int("D (number of training tasks)", D)
    _check_positive_int("K (alphabet size)", K)
    if K < 2:
        raise ValueError(f"K (alphabet size) must be at least 2, got {K}")
    if not alpha > 0:
        raise ValueError(f"alpha (Dirichlet concentration) must be positive, got {alpha!r}")
    theta = np.random.default_rng(seed).dirichlet(np.full(K, float(alpha)), size=D)  # (D, K)
    theta = np.clip(theta, 1e-6, None)  # keep every log finite; renormalize below
    return torch.from_numpy(theta / theta.sum(1, keepdims=True))


def sample_sequences(tasks: torch.Tensor, n: int, length: int,
                     gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences of ``length`` symbols, each from a uniformly chosen urn.

    Returns ``(x, task_id)`` with shapes (n, length) and (n,).
    """
    if tasks.dim() != 2:
        raise ValueError(f"tasks must have shape (D, K), got {tuple(tasks.shape)}")
    _check_positive_int("n", n)
    _check_positive_int("length", length)
    task_id = torch.randint(tasks.shape[0], (n,), generator=gen)  # (n,)
    x = torch.multinomial(tasks[task_id].float(), length, replacement=True, generator=gen)
    return x, task_id  # (n, length), (n,)


def prefix_counts(x: torch.Tensor, K: int) -> torch.Tensor:
    """n_t[k] = number of k among x_1..x_t, for t = 1..T; (n, T) -> (n, T, K) float64."""
    if x.dim() != 2:
        raise ValueError(f"sequences must have shape (n, T), got {tuple(x.shape)}")
    if x.numel() and (x.min() < 0 or x.max() >= K):
        raise ValueError(f"symbols must lie in 0..{K - 1}, "
                         f"got range {int(x.min())}..{int(x.max())}")
    onehot = torch.nn.functional.one_hot(x, K).double()  # (n, T, K)
    return onehot.cumsum(1)  # (n, T, K)


def memorizing_predictor(x: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
    """M(. | x_{1:t}) for t = 1..T (eq. ``icl-memorizing``); (n, T) -> (n, T, K)."""
    counts = prefix_counts(x, tasks.shape[1])  # (n, T, K)
    log_lik = counts @ tasks.log().T  # (n, T, D): log prod_k theta_d[k]^{n_t[k]}
    w = torch.softmax(log_lik, dim=-1)  # (n, T, D): posterior over the D urns
    return w @ tasks  # (n, T, K)


def generalizing_predictor(x: torch.Tensor, K: int, alpha: float) -> torch.Tensor:
    """G(. | x_{1:t}) = (n_t + alpha) / (t + K alpha) (eq. ``icl-generalizing``); (n, T, K)."""
    counts = prefix_counts(x, K)  # (n, T, K)
    return (counts + alpha) / (counts.sum(-1, keepdim=True) + K * alpha)


def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_k p_k log(p_k / q_k) over the last axis."""
    if p.shape != q.shape:
        raise ValueError(f"kl needs equal shapes, got {tuple(p.shape)} and {tuple(q.shape)}")
    p, q = p.double(), q.double()
    return (p * (p.clamp_min(1e-12).log() - q.clamp_min(1e-12).log())).sum(-1)


def expected_loss(pred: torch.Tensor, theta_true: torch.Tensor) -> float:
    """Mean cross-entropy of ``pred`` (n, T, K) on a next symbol drawn from ``theta_true`` (n, K).

    The expectation over the next symbol is exact; the mean over contexts is
    over the n given ones.  This is the loss L(Q) of eq. ``icl-hierarchical``.
    """
    if pred.dim() != 3 or theta_true.shape != (pred.shape[0], pred.shape[2]):
        raise ValueError(f"expected pred (n, T, K) and theta_true (n, K), got "
                         f"{tuple(pred.shape)} and {tuple(theta_true.shape)}")
    ce = -(theta_true.double()[:, None, :] * pred.double().clamp_min(1e-12).log()).sum(-1)
    return float(ce.mean())


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
