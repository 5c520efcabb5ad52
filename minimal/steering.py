"""Entropic activation steering (EAST) for the bandit transformer.

Chapter "In-context decision making", section "Steering exploration".
EAST (Rahn et al., 2024) makes an overconfident in-context agent explore more
without training it.  It logs the agent's own interactions, reads the
residual-stream activation h_i at one layer at each decision point i, and
weighs each by the entropy H_i of the action distribution there (eq.
``east-vector``); we centre the activations first, so that the vector points
from a typical state towards the uncertain ones,

    u = sum_i H_i (h_i - hbar) / sum_i H_i,     hbar = mean_i h_i.

At test time s * u is added to the output of that layer at every
position (eq. ``east-steer``); s = 0 is the unsteered agent (the code calls it
``scale``).  Reading order: :func:`activations_and_entropy`,
:func:`entropy_steering_vector`, :func:`steering`, :func:`steering_sweep`, and the
two controls: the same sweep along :func:`random_unit_directions`, and
:func:`temperature_sweep`.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from minimal.bandit_algorithms import Trajectory, min_fraction, suffix_failure_frequency
from minimal.dpt import BanditTransformer, run_agent
from minimal.worlds.bandits import sample_bandits


def _check_layer(model: BanditTransformer, layer: int) -> None:
    n = len(model.gpt.blocks)
    if not isinstance(layer, int) or not 0 <= layer < n:
        raise ValueError(f"layer must be a block index in [0, {n}), got {layer!r}")


@torch.no_grad()
def activations_and_entropy(model: BanditTransformer, traj: Trajectory, layer: int):
    """Activations after block ``layer`` and action entropies at every decision point.

    One causal forward pass over each logged history gives, at position t, the
    state in which the agent chose a_{t+1}.  Returns h (N*H, C) and H_i (N*H,).
    """
    _check_layer(model, layer)
    captured = {}
    hook = model.gpt.blocks[layer].register_forward_hook(
        lambda mod, inp, out: captured.__setitem__("h", out))
    try:
        actions = torch.as_tensor(traj.actions[:, :-1], dtype=torch.long)  # (N, H-1)
        rewards = torch.as_tensor(traj.rewards[:, :-1], dtype=torch.float32)
        logits = model(actions, rewards)  # (N, H, K): decision points 1..H
    finally:
        hook.remove()
    logp = F.log_softmax(logits.float(), -1)  # (N, H, K)
    entropy = -(logp.exp() * logp).sum(-1)  # (N, H)
    h = captured["h"]  # (N, H, C)
    return h.reshape(-1, h.shape[-1]), entropy.reshape(-1)


def entropy_steering_vector(model: BanditTransformer, traj: Trajectory, layer: int) -> torch.Tensor:
    """The EAST direction u of eq. ``east-vector``, shape (C,)."""
    h, entropy = activations_and_entropy(model, traj, layer)  # (M, C), (M,)
    if float(entropy.sum()) <= 0:
        raise ValueError("every logged action distribution has zero entropy; "
                         "log a more stochastic agent")
    centred = h - h.mean(0, keepdim=True)  # (M, C)
    return (entropy[:, None] * centred).sum(0) / entropy.sum()  # (C,)


@contextmanager
def steering(model: BanditTransformer, layer: int, vector: torch.Tensor, scale: float):
    """Inside the ``with`` block, block ``layer`` outputs x + scale * vector (eq. ``east-steer``)."""
    _check_layer(model, layer)
    C = model.gpt.cfg.n_embd
    if vector.shape != (C,):
        raise ValueError(f"steering vector must have shape ({C},), got {tuple(vector.shape)}")
    delta = scale * vector
    handle = model.gpt.blocks[layer].register_forward_hook(lambda mod, inp, out: out + delta)
    try:
        yield model
    finally:
        handle.remove()


def steering_sweep(model: BanditTransformer, vector: torch.Tensor, layer: int, scales,
                   horizon: int, n_runs: int = 300, seed: int = 400, noise: float = 0.3,
                   progress: bool = False) -> dict[str, list[float]]:
    """Online runs of the steered agent for each scale on the same test bandits.

    Reports the mean action entropy (nats), MinFrac, SuffFailFreq at H/2, the
    number of distinct arms tried, and the regret at the horizon.  ``progress``
    shows a bar over the scales.
    """
    out = {k: [] for k in ("scale",) + METRICS}
    for scale in tqdm(scales, desc="steering scales", disable=not progress, leave=False):
        bandit = sample_bandits(n_runs, model.n_arms, np.random.default_rng(seed), "gaussian",
                                noise)
        with steering(model, layer, vector, scale):
            roll = run_agent(model, bandit, horizon, seed=seed)
        out["scale"].append(float(scale))
        _append_metrics(out, roll, horizon)
    return out


def temperature_sweep(model: BanditTransformer, temperatures, horizon: int, n_runs: int = 300,
                      seed: int = 400, noise: float = 0.3) -> dict[str, list[float]]:
    """The control for steering: sample from softmax(logits / T), unsteered, for each T.

    Same test bandits and metrics as :func:`steering_sweep` with the same ``seed``;
    T = 1 is the unsteered agent.
    """
    out = {k: [] for k in ("temperature",) + METRICS}
    for T in temperatures:
        bandit = sample_bandits(n_runs, model.n_arms, np.random.default_rng(seed), "gaussian",
                                noise)
        roll = run_agent(model, bandit, horizon, seed=seed, temperature=T)
        out["temperature"].append(float(T))
        _append_metrics(out, roll, horizon)
    return out


def random_unit_directions(n: int, dim: int, seed: int = 0) -> list[torch.Tensor]:
    """``n`` directions drawn uniformly on the unit sphere of R^dim: the control for u/|u|."""
    g = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    return [v / v.norm() for v in g]


METRICS = ("entropy", "min_frac", "suffix_fail", "arms_tried", "regret")


def _append_metrics(out: dict, roll, horizon: int) -> None:
    """Mean action entropy (nats), MinFrac, SuffFailFreq(H/2), arms tried and regret(H)."""
    out["entropy"].append(float(roll.entropy().mean()))
    out["min_frac"].append(min_fraction(roll))
    out["suffix_fail"].append(suffix_failure_frequency(roll, horizon // 2))
    out["arms_tried"].append(float(np.mean([len(np.unique(row)) for row in roll.actions])))
    out["regret"].append(float(roll.cumulative_regret()[:, -1].mean()))


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
