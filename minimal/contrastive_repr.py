"""Temporal contrastive features vs an autoencoder on noisy observations (an illustration).

Chapter "Representations and offline RL", section "Representations".  A hidden
state ``x_t`` walks on a ring of ``n_states`` positions; we see only an
observation that mixes a weak view of the state with loud noise,

    o_t = [ signal_scale * E[x_t]  ,  noise_scale * xi_t ],                     (Eq. ring-noisy-obs)

where ``E`` embeds each state as a fixed random unit vector and ``xi_t`` is
Gaussian noise that is either fresh every step (``noise_corr = 0``, "iid noise")
or an AR(1) process that persists in time (``noise_corr`` near 1, "exogenous
noise" in the sense of Misra et al., 2024).  Two encoders compress ``o_t`` to
``n_features`` numbers:

* **autoencoder**: minimise ``||o_t - dec(phi(o_t))||^2``.  The loud noise
  dimensions dominate the error, so a small bottleneck spends itself on them.
* **temporal contrastive** (InfoNCE): score ``phi(o_t)^T W phi(o_{t+1})`` and
  pick the true next observation among the batch's others,

    L = -E log [ exp(score(o_t, o_t+1)) / sum_j exp(score(o_t, o'_j)) ]
                                                                  (Eq. temporal-infonce)

  Only what *persists from one step to the next* helps; fresh noise does not,
  so the features keep the state.  Noise that persists (exogenous) helps too,
  and then the contrastive features spend capacity on it as well.

We score a representation by a linear probe: least squares from the features
to the one-hot state on held-out steps, then the accuracy of its argmax.  This
is a toy chosen to make the mechanism visible, not a reproduction of any paper's
experiment.

    python -m minimal.contrastive_repr                          # ~2 s on CPU
    python -m minimal.contrastive_repr --set method=autoencoder
    python -m minimal.contrastive_repr --preset gpu
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.train import History, one_thread, train


@dataclass
class ContrastiveConfig(TrainConfig):
    """The noisy ring world, the encoder, and how it is trained.

    ``gpu`` preset: for a million-step dataset, 256 noise dimensions and a 512-wide encoder.
    What it delivers on an H100/H200-class GPU (wall time, throughput, memory, the metric
    reached) is not measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    method: str = param("contrastive", "representation objective",
                        choices=("contrastive", "autoencoder"))
    n_states: int = param(8, "positions on the ring (the latent state)", ge=2)
    d_signal: int = param(8, "observation dimensions that carry the state", gt=0)
    d_noise: int = param(32, "observation dimensions of pure noise", ge=0)
    signal_scale: float = param(1.0, "size of the state's embedding", gt=0)
    noise_scale: float = param(2.0, "standard deviation of the noise dimensions", ge=0)
    noise_corr: float = param(0.0, "AR(1) coefficient of the noise: 0 iid, near 1 exogenous",
                              ge=0, lt=1)
    n_steps_data: int = param(20_000, "length of the observed trajectory", ge=100)
    n_features: int = param(4, "size of the learned representation (the bottleneck)", gt=0)
    n_hidden: int = param(64, "hidden units of the encoder MLP", gt=0)
    data_seed: int = param(0, "seed of the trajectory and the embedding", ge=0)
    steps: int = TrainConfig.redefault("steps", 600)
    batch_size: int = param(256, "pairs (o_t, o_t+1) per batch; also the InfoNCE negatives",
                            ge=2)
    lr: float = TrainConfig.redefault("lr", 1e-2, doc="peak AdamW learning rate (1e-3 to 3e-2)")
    log_every: int = TrainConfig.redefault("log_every", 50)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "n_steps_data": 1_000_000,
                "d_noise": 256, "n_hidden": 512, "steps": 5000, "batch_size": 4096,
                "ckpt_dir": "checkpoints/contrastive_repr"},
    }


# --------------------------------------------------------------------- data
def ring_world(cfg: ContrastiveConfig) -> tuple[np.ndarray, np.ndarray]:
    """Latent states ``x`` (T,) and observations ``o`` (T, d) of Eq. ``ring-noisy-obs``."""
    rng = np.random.default_rng(cfg.data_seed)
    T = cfg.n_steps_data
    x = np.cumsum(rng.integers(-1, 2, size=T)) % cfg.n_states          # lazy ring walk
    embed = rng.normal(size=(cfg.n_states, cfg.d_signal))
    embed /= np.linalg.norm(embed, axis=1, keepdims=True)              # unit vectors
    xi = rng.normal(size=(T, cfg.d_noise))
    if cfg.noise_corr > 0:  # AR(1) with unit stationary variance
        for t in range(1, T):
            xi[t] = cfg.noise_corr * xi[t - 1] + np.sqrt(1 - cfg.noise_corr ** 2) * xi[t]
    obs = np.concatenate([cfg.signal_scale * embed[x], cfg.noise_scale * xi], 1)  # (T, d)
    return x, obs.astype(np.float32)


# -------------------------------------------------------------------- model
class Encoder(nn.Module):
    """phi(o): an MLP to ``n_features`` numbers, with the head its objective needs."""

    def __init__(self, d_obs: int, n_features: int, n_hidden: int, method: str):
        super().__init__()
        self.method = method
        self.phi = nn.Sequential(nn.Linear(d_obs, n_hidden), nn.ReLU(),
                                 nn.Linear(n_hidden, n_features))
        if method == "autoencoder":
            self.decoder = nn.Sequential(nn.Linear(n_features, n_hidden), nn.ReLU(),
                                         nn.Linear(n_hidden, d_obs))
        else:
            self.W = nn.Parameter(torch.eye(n_features))  # bilinear score matrix

    def forward(self, o: torch.Tensor) -> torch.Tensor:
        return self.phi(o)  # (B, k)


def representation_loss(model: Encoder, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. ``temporal-infonce`` (contrastive) or the reconstruction error (autoencoder)."""
    o_now, o_next = batch                                  # (B, d) each
    z_now = model(o_now)                                   # (B, k)
    if model.method == "autoencoder":
        loss = F.mse_loss(model.decoder(z_now).float(), o_now)
        return loss, {"recon_mse": loss.item()}
    scores = (z_now @ model.W) @ model(o_next).T           # (B, B): row i, true pair at i
    labels = torch.arange(len(o_now), device=o_now.device)
    loss = F.cross_entropy(scores.float(), labels)
    acc = (scores.argmax(1) == labels).float().mean()
    return loss, {"infonce": loss.item(), "pair_acc": acc.item()}


def linear_probe_accuracy(features: np.ndarray, x: np.ndarray, n_states: int,
                          n_train: int) -> float:
    """Least squares from features (plus a bias) to one-hot states on the first
    ``n_train`` steps; accuracy of the argmax on the rest."""
    if len(features) != len(x):
        raise ValueError(f"features ({len(features)}) and states ({len(x)}) differ in length")
    if not 0 < n_train < len(x):
        raise ValueError(f"n_train must lie in (0, {len(x)}), got {n_train}")
    X = np.c_[features, np.ones(len(features))].astype(np.float64)
    Y = np.eye(n_states)[x]
    coef, *_ = np.linalg.lstsq(X[:n_train], Y[:n_train], rcond=None)
    return float(((X[n_train:] @ coef).argmax(1) == x[n_train:]).mean())


# ----------------------------------------------------------------------- run
@dataclass
class ReprResult:
    model: Encoder
    history: History
    probe_accuracy: float  # held-out linear-probe accuracy of the learned features


def train_representation(cfg: ContrastiveConfig) -> ReprResult:
    """Train the encoder on the first 80% of the trajectory, probe on held-out steps."""
    x, obs = ring_world(cfg)
    n_train = int(0.8 * len(x))
    o = torch.as_tensor(obs)

    def get_batch(gen: torch.Generator):
        t = torch.randint(n_train - 1, (cfg.batch_size,), generator=gen)  # (B,)
        return o[t], o[t + 1]

    with one_thread():
        torch.manual_seed(cfg.seed)
        model = Encoder(obs.shape[1], cfg.n_features, cfg.n_hidden, cfg.method)
        history = train(model, cfg, get_batch, representation_loss, desc=cfg.method)
        model.cpu()
        with torch.no_grad():
            feats = model(o).float().numpy()  # (T, k)
    acc = linear_probe_accuracy(feats, x, cfg.n_states, n_train)
    return ReprResult(model, history, acc)


def compare_representations(seeds=(0, 1, 2), progress: bool = False,
                            **overrides) -> dict[str, np.ndarray]:
    """Held-out probe accuracy per seed for both methods (same data per seed).

    ``progress`` shows one bar over the ``2 * len(seeds)`` trainings."""
    if len(seeds) == 0:
        raise ValueError("compare_representations needs at least one seed")
    jobs = [(method, s) for method in ("contrastive", "autoencoder") for s in seeds]
    accuracy = {job: train_representation(ContrastiveConfig.from_preset(
                    "laptop", method=job[0], seed=job[1], data_seed=job[1], progress=False,
                    **overrides)).probe_accuracy
                for job in tqdm(jobs, desc="representations", disable=not progress, leave=False)}
    return {method: np.array([accuracy[method, s] for s in seeds])
            for method in ("contrastive", "autoencoder")}


def main(argv: list[str] | None = None) -> ReprResult:
    cfg = ContrastiveConfig.cli(argv, description="Contrastive vs autoencoder features.")
    result = train_representation(cfg)
    print(f"{cfg.method}: linear-probe accuracy of the state {result.probe_accuracy:.3f} "
          f"(chance {1 / cfg.n_states:.3f})")
    return result


if __name__ == "__main__":
    run_cli(main)
