"""The preference losses the book uses, each written once: Bradley-Terry, DPO and IPO.

Tensor in, tensor out, *per pair* (no reduction: the caller averages, weights or masks),
with the equation's scalars as explicit arguments.  Equation labels refer to chapter 3
("Inverse RL for alignment"):

* :func:`bt_loss`: -log sigma(r_w - r_l), the Bradley-Terry negative log-likelihood
  (eq. ``bt-loss``, of the preference model eq. ``bt-preference``); the reward model, the
  tabular Bradley-Terry fit, and CPL (chapter 4,
  eq. ``cpl-loss``, with scores in place of rewards) call it;
* :func:`log_ratio_margin`: h = log pi/pi_ref (y_w) - log pi/pi_ref (y_l), the number DPO
  and IPO share;
* :func:`dpo_loss`: -log sigma(beta h) (eq. ``dpo-loss``; its gradient is eq. ``dpo-gradient``);
* :func:`ipo_loss`: (h - 1 / (2 tau))^2 (eq. ``ipo-loss``: Psi-preference optimisation,
  eq. ``psi-po``, with the identity Psi; population target margin eq. ``ipo-population-margin``).

DPO on the tiny GPT (:mod:`minimal.dpo`), on the categorical bandit and its population
fit (:mod:`minimal.preference_bandit`) and in logistic regression
(:mod:`minimal.delta_learning`) all call :func:`dpo_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bt_loss(r_w: torch.Tensor, r_l: torch.Tensor) -> torch.Tensor:
    """-log sigma(r_w - r_l) per pair (eq. ``bt-loss``): the chosen response's score minus the
    rejected one's, through the Bradley-Terry model (eq. ``bt-preference``)."""
    return -F.logsigmoid(r_w - r_l)


def log_ratio_margin(logp_w, logp_l, logp_ref_w, logp_ref_l):
    """h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l), shape (B,) (eq. ``dpo-loss``).

    All four inputs must be sequence log-probabilities of the same shape (B,):
    mixing (B,) with (B, 1) would broadcast to (B, B) and give a wrong loss.
    """
    shapes = {tuple(t.shape) for t in (logp_w, logp_l, logp_ref_w, logp_ref_l)}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"log-probabilities must all have the same shape (B,), got "
                         f"{[tuple(t.shape) for t in (logp_w, logp_l, logp_ref_w, logp_ref_l)]}")
    return (logp_w - logp_ref_w) - (logp_l - logp_ref_l)


def dpo_loss(h: torch.Tensor, beta: float) -> torch.Tensor:
    """-log sigma(beta h) per pair (eq. ``dpo-loss``), for the log-ratio margin ``h``.

    Its gradient is -beta sigma(-beta h) grad h (eq. ``dpo-gradient``): the weight
    :func:`minimal.preference_bandit.dpo_gradient_weight` times the difference of the chosen and
    rejected score functions.
    """
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta}")
    return -F.logsigmoid(beta * h)


def ipo_loss(h: torch.Tensor, tau: float) -> torch.Tensor:
    """(h - 1/(2 tau))^2 per pair (eq. ``ipo-loss``), for the log-ratio margin ``h``.

    Psi-preference optimisation (eq. ``psi-po``) with the identity Psi; its population
    minimiser has the finite margin of eq. ``ipo-population-margin``.
    """
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    return (h - 1 / (2 * tau)) ** 2


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
