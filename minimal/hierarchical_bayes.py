"""The hierarchical Bayesian account of memorizing vs generalizing (Wurgaft et al., 2025).

Chapter "In-context learning as rational (Bayesian) inference", section
"A Bayesian model of training".  Training is read as Bayesian inference over
two *strategies*, M and G (:mod:`minimal.worlds.icl_tasks`).  After seeing N training
sequences the posterior log-odds of M over G are (eq. ``icl-hierarchical``)

    eta(N, D) = a * N^alpha * DeltaL(D)  -  b * DeltaK(D),

a likelihood term that grows with the data (DeltaL = L(G) - L(M) > 0 is how
much lower M's loss is on the training mixture; alpha < 1 discounts the data
as in a power-law learning curve) minus a prior term that charges M for its
extra complexity DeltaK (here the number of urn parameters it must store,
D (K - 1)).  The network's prediction is the posterior-weighted average
(eq. ``icl-mixture``)

    p_hat = sigmoid(eta) M + (1 - sigmoid(eta)) G,

with three free parameters (a, alpha, b) shared by all D.  Setting eta = 0
gives the predicted transition time (eq. ``icl-transition``)

    N*(D) = (b DeltaK(D) / (a DeltaL(D)))^(1 / alpha),

superlinear in D when DeltaL shrinks as D grows or when alpha < 1.

Reading order: :func:`loss_gap`, :func:`complexity_gap`, :func:`mixture_kl`,
:func:`kl_table`, :class:`HBFit`, :func:`fit_hierarchical`, :func:`bayes_learner`,
:func:`mixture_distance`, :func:`best_weights`,
:func:`agreement`, :func:`transition_step`, :func:`fit_power_law`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from minimal.icl_training import ICLRun
from minimal.worlds.icl_tasks import (
    expected_loss,
    generalizing_predictor,
    kl,
    memorizing_predictor,
    sample_sequences,
)


def loss_gap(run: ICLRun, n: int = 4096) -> float:
    """DeltaL(D) = L(G) - L(M) on the training mixture (eq. ``icl-hierarchical``), nats.

    Estimated on ``n`` fresh contexts from the training urns (no network involved),
    with a fixed seed so the same run always gets the same number.
    """
    cfg = run.cfg
    x, tid = sample_sequences(run.tasks, n, cfg.seq_len, torch.Generator().manual_seed(7))
    theta = run.tasks[tid]  # (n, K)
    return (expected_loss(generalizing_predictor(x, cfg.K, cfg.alpha), theta)
            - expected_loss(memorizing_predictor(x, run.tasks), theta))


def complexity_gap(run: ICLRun) -> float:
    """DeltaK(D) = D (K - 1): the urn parameters M stores and G does not."""
    return float(run.cfg.D * (run.cfg.K - 1))


def mixture_kl(run: ICLRun, w: torch.Tensor) -> torch.Tensor:
    """Mean KL(w M + (1 - w) G || net) per snapshot, for weights w of shape (S,)."""
    w = w.reshape(-1, 1, 1, 1)  # (S, 1, 1, 1)
    mix = w * run.M + (1 - w) * run.G  # (S, n, T, K)
    return kl(mix, run.probs.double()).mean(dim=(1, 2))  # (S,)


def kl_table(run: ICLRun, grid: int = 101) -> torch.Tensor:
    """mixture_kl at weights linspace(0, 1, grid) for every snapshot: (grid, S)."""
    ws = torch.linspace(0, 1, grid, dtype=torch.float64)
    S = len(run.steps)
    return torch.stack([mixture_kl(run, torch.full((S,), float(w), dtype=torch.float64))
                        for w in ws])  # (grid, S)


def _interp(table: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear read of ``table`` (grid, S) at weights w (S,), differentiable in w."""
    grid = table.shape[0]
    pos = w.clamp(0, 1) * (grid - 1)  # (S,)
    lo = pos.detach().floor().clamp(max=grid - 2).long()  # (S,)
    frac = pos - lo  # (S,)
    cols = torch.arange(table.shape[1])
    return table[lo, cols] * (1 - frac) + table[lo + 1, cols] * frac  # (S,)


@dataclass
class HBFit:
    """Fitted parameters of eq. ``icl-hierarchical`` (N counts training sequences).

    ``alpha`` is the exponent the text writes kappa (not the Dirichlet concentration,
    ``ICLConfig.alpha``).
    """

    a: float
    alpha: float
    b: float

    def log_odds(self, N, delta_L, delta_K):
        """eta(N, D) of eq. ``icl-hierarchical``."""
        return self.a * np.power(N, self.alpha) * delta_L - self.b * delta_K

    def weight(self, N, delta_L, delta_K):
        """Posterior weight on M, sigmoid(eta) (eq. ``icl-mixture``)."""
        return 1.0 / (1.0 + np.exp(-self.log_odds(N, delta_L, delta_K)))

    def transition(self, delta_L, delta_K) -> float:
        """N* with eta = 0 (eq. ``icl-transition``), in training sequences."""
        return float((self.b * delta_K / (self.a * delta_L)) ** (1.0 / self.alpha))


def _sequences_seen(run: ICLRun) -> torch.Tensor:
    return torch.tensor(run.steps, dtype=torch.float64) * run.cfg.batch_size  # (S,)


def fit_hierarchical(runs: list[ICLRun], iters: int = 400, min_step: int = 50) -> HBFit:
    """Fit (a, alpha, b) by minimizing the mean mixture KL over all runs and snapshots.

    Snapshots before ``min_step`` (the barely trained network, which is
    neither predictor) are left out.  The KL of each snapshot is tabulated on a
    grid of weights first (:func:`kl_table`), so each Adam step on
    (log a, alpha, log b) is cheap; the result is deterministic.
    """
    if not runs:
        raise ValueError("fit_hierarchical needs at least one run")
    if iters <= 0:
        raise ValueError(f"iters must be positive, got {iters}")
    data = []
    for run in runs:
        keep = torch.tensor(run.steps) >= min_step  # (S,)
        if not keep.any():
            raise ValueError(f"run with D={run.cfg.D} has no snapshot at step >= {min_step}")
        dL = loss_gap(run)
        if dL <= 0:
            raise ValueError(f"run with D={run.cfg.D}: loss gap L(G) - L(M) = {dL:.2g} "
                             "is not positive; M and G cannot be told apart")
        data.append((kl_table(run)[:, keep], _sequences_seen(run)[keep], dL, complexity_gap(run)))
    # start with every transition near the middle of training
    N_mid = float(np.median([N[-1] for _, N, _, _ in data])) / 2
    dK_mid = float(np.median([dK for *_, dK in data]))
    dL_mid = float(np.median([dL for _, _, dL, _ in data]))
    theta = torch.tensor([np.log(dK_mid * 1e-2 / (dL_mid * np.sqrt(N_mid))), 0.5, np.log(1e-2)],
                         dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.05)
    for _ in range(iters):
        opt.zero_grad()
        total = 0.0
        for table, N, dL, dK in data:
            eta = theta[0].exp() * N.pow(theta[1]) * dL - theta[2].exp() * dK  # (S_kept,)
            total = total + _interp(table, torch.sigmoid(eta)).mean()
        (total / len(data)).backward()
        opt.step()
    la, alpha, lb = theta.detach().tolist()
    return HBFit(a=float(np.exp(la)), alpha=float(alpha), b=float(np.exp(lb)))


def bayes_learner(T: int) -> HBFit:
    """The constants of eq. ``icl-hierarchical`` for an exact Bayesian learner (eq. ``icl-log-odds``).

    Exact posterior odds after N sequences are the prior odds, -DeltaK log 2 for a
    description-length prior 2^(-K) with K in bits, plus the summed log-likelihood
    ratio, N T DeltaL on average for sequences scored at T positions: a = T,
    alpha (the exponent kappa) = 1 and b = log 2 (one bit per stored parameter).
    """
    return HBFit(a=float(T), alpha=1.0, b=float(np.log(2.0)))


def mixture_distance(run: ICLRun, grid: int = 101) -> np.ndarray:
    """Per snapshot, min over w of KL(w M + (1 - w) G || net): distance to the nearest mixture."""
    return kl_table(run, grid).min(0).values.numpy()


def best_weights(run: ICLRun, grid: int = 101) -> np.ndarray:
    """Per snapshot, the weight w* in [0, 1] whose mixture is closest to the net (a grid search)."""
    ws = torch.linspace(0, 1, grid, dtype=torch.float64)
    return ws[kl_table(run, grid).argmin(0)].numpy()


@dataclass
class Agreement:
    """Mean KL(prediction || net) over snapshots for the model and the baselines."""

    hierarchical: float  # sigmoid(eta) M + (1 - sigmoid(eta)) G
    only_G: float  # always G
    only_M: float  # always M
    best_single: float  # the better of M and G, fixed per run (the one-predictor baseline)
    r2_weight: float  # R^2 of sigmoid(eta) against the per-snapshot best weight w*


def agreement(runs: list[ICLRun], fit: HBFit, min_step: int = 50) -> Agreement:
    """Score the fitted model against one-predictor baselines on the snapshots of ``runs``."""
    hb, g, m, single, w_fit, w_best = [], [], [], [], [], []
    for run in runs:
        keep = np.array(run.steps) >= min_step
        N = _sequences_seen(run).numpy()
        w = fit.weight(N, loss_gap(run), complexity_gap(run))
        hb.append(mixture_kl(run, torch.from_numpy(w)).numpy()[keep])
        g.append(run.d_G[keep])
        m.append(run.d_M[keep])
        single.append(min(run.d_G[keep].mean(), run.d_M[keep].mean()))
        w_fit.append(w[keep])
        w_best.append(best_weights(run)[keep])
    w_fit, w_best = np.concatenate(w_fit), np.concatenate(w_best)
    r2 = 1 - np.sum((w_best - w_fit) ** 2) / np.sum((w_best - w_best.mean()) ** 2)
    return Agreement(float(np.concatenate(hb).mean()), float(np.concatenate(g).mean()),
                     float(np.concatenate(m).mean()), float(np.mean(single)), float(r2))


def transition_step(run: ICLRun, margin: float = 0.1, patience: int = 2) -> int | None:
    """First snapshot step from which the net is clearly closer to M for ``patience`` snapshots.

    "Clearly" means a relative distance r = (d_G - d_M) / (d_G + d_M) above
    ``margin`` (r is noisy when M and G almost coincide, at large D).  None
    when that never happens within the run.
    """
    r = run.relative_distance
    for i in range(1, len(r) - patience + 1):
        if (r[i:i + patience] > margin).all():
            return run.steps[i]
    return None


def fit_power_law(x, y) -> tuple[float, float]:
    """Least-squares fit of log y = log c + gamma log x; returns (gamma, c)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"fit_power_law needs two equal-length arrays of >= 2 points, "
                         f"got {len(x)} and {len(y)}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("fit_power_law needs positive x and y")
    gamma, logc = np.polyfit(np.log(x), np.log(y), 1)
    return float(gamma), float(np.exp(logc))


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
