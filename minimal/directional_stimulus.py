"""Directional stimulus prompting as a contextual bandit over hints.

Chapter "Inverse RL for alignment", section "Beyond a scalar reward".  Li et al. (2023)
leave a black-box LLM untouched and train a small policy p_psi(z | x) that writes an
instance-specific hint z (for example keywords) into the black box's prompt; the reward
is a score of the black box's output.  Seen from the small policy, the black box and the
scorer together are an unknown, stochastic reward q(x, z): a contextual bandit whose arms
are hints.  This toy keeps exactly that structure and nothing else:

* ``n_inputs`` input types x, ``n_hints`` hints z.  Hint 0 is a generic instruction that
  works moderately for every input (success ``q_generic``); every input x has one *key*
  hint, key(x) in 1..n_hints-1, which makes the black box succeed with ``q_key``; the
  other specific hints mislead it (``q_wrong``);
* a black-box call returns a Bernoulli(q(x, z)) score, never a gradient;
* the small policy is a table of logits, p_psi(z | x) = softmax(psi[x]), trained by
  REINFORCE on sampled calls with a batch-mean baseline and an exact KL to the
  reference p_ref (uniform here), eq. ``dsp-objective``:

      J(psi) = E_x[ E_{z ~ p_psi(.|x)} q(x, z) - beta KL(p_psi(.|x) || p_ref(.|x)) ],

  whose maximiser is p* ∝ p_ref exp(q / beta) (eq. ``kl-optimal-policy``).

Reading order: :class:`DSPConfig`, :func:`make_black_box`, :func:`optimal_policy`,
:func:`train_hint_policy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class DSPConfig:
    """The hint bandit and the REINFORCE run on it."""

    n_inputs: int = 20  # input types x
    n_hints: int = 10  # hints z; hint 0 is the generic one
    q_generic: float = 0.5  # success rate of the black box with the generic hint
    q_key: float = 0.9  # ... with the input's key hint
    q_wrong: float = 0.2  # ... with any other specific hint
    beta: float = 0.02  # KL weight towards p_ref
    steps: int = 300  # optimizer steps
    batch_size: int = 64  # black-box calls per step
    lr: float = 0.5  # Adam learning rate on the logits
    seed: int = 0


def make_black_box(cfg: DSPConfig, gen: torch.Generator) -> torch.Tensor:
    """q(x, z), the black box's success probability with hint z on input x, shape (n_inputs, n_hints)."""
    key = torch.randint(1, cfg.n_hints, (cfg.n_inputs,), generator=gen)  # (n_inputs,)
    q = torch.full((cfg.n_inputs, cfg.n_hints), cfg.q_wrong, dtype=torch.float64)
    q[:, 0] = cfg.q_generic
    q[torch.arange(cfg.n_inputs), key] = cfg.q_key
    return q


def optimal_policy(q: torch.Tensor, beta: float) -> torch.Tensor:
    """argmax of eq. ``dsp-objective`` with a uniform p_ref: p*(z | x) ∝ exp(q(x, z) / beta), (X, Z)."""
    return torch.softmax(q / beta, dim=-1)


def train_hint_policy(cfg: DSPConfig) -> dict[str, Any]:
    """REINFORCE on sampled black-box calls for eq. ``dsp-objective``; return success rates.

    ``success`` is the exact expected score E_x E_{z ~ p} q(x, z) of a policy (inputs
    uniform); the baselines are the reference p_ref, the best single hint for all inputs
    (a fixed hand-written prompt) and the oracle that always plays the key hint.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    q = make_black_box(cfg, gen)  # (X, Z), unknown to the learner
    logits = torch.zeros(cfg.n_inputs, cfg.n_hints, dtype=torch.float64, requires_grad=True)
    log_ref = torch.full_like(q, -torch.log(torch.tensor(float(cfg.n_hints))))  # uniform p_ref
    opt = torch.optim.Adam([logits], lr=cfg.lr)

    def success(p: torch.Tensor) -> float:
        return float((p * q).sum(-1).mean())

    curve = [success(torch.softmax(logits.detach(), -1))]
    for _ in range(cfg.steps):
        x = torch.randint(cfg.n_inputs, (cfg.batch_size,), generator=gen)  # (B,)
        logp = torch.log_softmax(logits, -1)  # (X, Z)
        z = torch.multinomial(logp[x].exp().detach(), 1, generator=gen).squeeze(1)  # (B,)
        score = torch.bernoulli(q[x, z], generator=gen)  # (B,) one black-box call each
        adv = score - score.mean()  # batch-mean baseline
        pg = -(adv * logp[x, z]).mean()  # REINFORCE: the black box needs no gradient
        kl = (logp.exp() * (logp - log_ref)).sum(-1)[x].mean()  # exact KL(p_psi || p_ref)
        opt.zero_grad()
        (pg + cfg.beta * kl).backward()
        opt.step()
        curve.append(success(torch.softmax(logits.detach(), -1)))
    policy = torch.softmax(logits.detach(), -1)
    return {"q": q, "policy": policy, "curve": curve, "success": curve[-1],
            "reference": success(torch.full_like(q, 1 / cfg.n_hints)),
            "best_fixed_hint": float(q.mean(0).max()),
            "oracle": float(q.max(-1).values.mean()),
            "closed_form": success(optimal_policy(q, cfg.beta)),
            "calls": cfg.steps * cfg.batch_size}


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
