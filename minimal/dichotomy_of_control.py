"""Dichotomy of Control (DoC) at tabular scale: condition on what you control, not on luck.

Chapter "Representations and offline RL", section "Dichotomy of Control"
(Yang et al., 2023).  Instead of conditioning the policy on the observed return
``G`` (RCSL, :mod:`minimal.return_conditioning`), DoC conditions it on a latent
``z`` inferred from the future, and forbids ``z`` to carry information about
what the environment decided:

    min  E_(s,a,G)~D E_z~q(z|s,a,G) [ -log pi(a|s,z) + (V(s,z) - G)^2 ]   (Eq. doc-loss)
    s.t. I(G ; z | s, a) = 0                                             (Eq. doc-constraint)

The constraint is enforced with a penalty ``beta * I_hat``, where ``I_hat`` is
the contrastive (energy-based) estimate of the conditional mutual information

    I_hat(f) = E [ f(s,a,G,z) - log sum_g' rho(g'|s,a) exp f(s,a,g',z) ]
                                                                         (Eq. doc-contrastive)

with ``rho(g | s, a)`` the data's return distribution after ``(s, a)``.  For any
energy ``f`` this is a lower bound on ``I(G; z | s, a)``, tight at the best ``f``,
so the energy table is trained to *maximise* it while the encoder ``q`` is trained
to *minimise* it (one scalar loss with stop-gradients does both, see
:func:`doc_loss`).  At test time we pick, in each state, the latent with the
highest predicted value among those the data supports, and act with
``pi(. | s, z*)``; its *promise* is ``V(s0, z*)`` (Eq. doc-inference).

What this simplifies relative to the paper, on purpose:

* **Tables, not transformers.**  ``q``, ``pi``, ``V`` and ``f`` are tables indexed
  by (state, action, return-to-go, latent), as in the authors' tabular script.
  The paper's neural version conditions on the whole history with a transformer.
* **The future is the return-to-go.**  The latent is inferred from ``(s_t, a_t,
  G_t)`` and the constraint removes information about ``G_t`` given ``(s_t, a_t)``.
  The paper's constraint is on the next state and reward, ``I(r_t, s_{t+1}; z |
  tau_{0:t}, a_t) = 0``, at every step; in a one-step bandit the two coincide.
* **Exact expectations over z.**  With a handful of discrete latents we sum over
  them instead of sampling (no straight-through estimator, less noise).
* **The prior is the aggregate posterior.**  ``p(z | s)`` is computed exactly from
  the data and ``q`` rather than learned as a separate network.
* **Value by squared error** rather than a categorical distribution over returns.
* **An explicit min-max.**  The energy is trained to tighten the bound and the
  encoder to lower it.  That is our reading of how the contrastive penalty is
  meant to be optimised; compare with the authors' code before relying on it.

Because the latent sees only ``(s, a, G)`` and may not carry ``G`` beyond what
``a`` says, it can carry at most the action, and the value ``V(s, z)`` it can
learn is the behaviour policy's ``Q^pi_b(s, a)``.  In a sequential task our DoC
is therefore (an estimate of) *one-step policy improvement*, ``argmax_a
Q^pi_b(s, a)`` (Brandfonbrener et al., 2021; Eq. ``doc-one-step``), and
:func:`compare` computes that baseline beside it, exactly and from the data.

    python -m minimal.dichotomy_of_control                          # bandit, a few seconds on CPU
    python -m minimal.dichotomy_of_control --set env=frozenlake
    python -m minimal.dichotomy_of_control --preset gpu
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from minimal.core.config import param, run_cli
from minimal.core.train import History, one_thread, train
from minimal.return_conditioning import (
    OfflineConfig,
    batch_sampler,
    make_dataset,
    policy_value,
    train_rcsl,
)
from minimal.worlds.offline_envs import BernoulliBandit, Steps, frozenlake_behaviour


@dataclass
class DoCConfig(OfflineConfig):
    """DoC: the offline data and training fields of RCSL plus the latent and the penalty.

    ``gpu`` preset: for DoC on 100k offline episodes with batches of 4096.  What it delivers
    on an H100/H200-class GPU (wall time, throughput, memory, the metric reached) is not
    measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    n_latents: int = param(4, "number of discrete latents z (at least the number of actions)",
                           ge=2)
    beta: float = param(2.0, "weight of the mutual-information penalty (0 turns DoC into a "
                        "latent RCSL; 0.5 to 5 works here)", ge=0)
    min_prior: float = param(0.01, "ignore latents with prior p(z|s) below this at test time",
                             ge=0, lt=1)
    steps: int = OfflineConfig.redefault("steps", 600)
    lr: float = OfflineConfig.redefault(
        "lr", 3e-2, doc="peak AdamW learning rate (tables like larger steps: 1e-2 to 1e-1)")

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "n_episodes": 100_000, "n_latents": 8,
                "steps": 5000, "batch_size": 4096, "ckpt_dir": "checkpoints/doc"},
    }


# --------------------------------------------------------------------- model
class TabularDoC(nn.Module):
    """Tables for q(z|s,a,G), pi(a|s,z), V(s,z) and the energy f(s,a,G,z).

    ``rho`` is the empirical ``p_D(G | s, a)`` (a buffer, not trained), the
    proposal of Eq. ``doc-contrastive``.
    """

    def __init__(self, n_states: int, n_actions: int, n_returns: int, n_latents: int,
                 rho: torch.Tensor):
        super().__init__()
        if rho.shape != (n_states, n_actions, n_returns):
            raise ValueError(f"rho must have shape {(n_states, n_actions, n_returns)}, "
                             f"got {tuple(rho.shape)}")
        S, A, R, K = n_states, n_actions, n_returns, n_latents
        self.n_states, self.n_actions, self.n_returns, self.n_latents = S, A, R, K
        self.enc = nn.Parameter(torch.randn(S, A, R, K))     # q(z | s, a, G) logits
        self.pi = nn.Parameter(0.1 * torch.randn(S, K, A))   # pi(a | s, z) logits
        self.value = nn.Parameter(torch.zeros(S, K))         # V(s, z)
        self.energy = nn.Parameter(torch.zeros(S, A, R, K))  # f(s, a, G, z)
        self.register_buffer("log_rho", rho.clamp_min(1e-8).log())

    def posterior(self, s, a, G) -> torch.Tensor:
        return torch.softmax(self.enc[s, a, G].float(), -1)  # (B, K)

    def contrastive_mi(self, s, a, G, energy: torch.Tensor) -> torch.Tensor:
        """Per-example, per-latent term of Eq. ``doc-contrastive``: (B, K)."""
        pos = energy[s, a, G]                                             # (B, K)
        all_g = energy[s, a]                                              # (B, R, K)
        log_Z = torch.logsumexp(self.log_rho[s, a][..., None] + all_g, 1)  # (B, K)
        return pos - log_Z


def doc_loss(model: TabularDoC, batch, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. ``doc-loss`` plus ``beta`` times Eq. ``doc-contrastive``, as one scalar.

    The encoder sees the MI estimate through a frozen energy (it minimises it);
    the energy sees it through a frozen encoder (it maximises it, which makes the
    estimate tight).  Summing the two lets one optimizer step do both.
    """
    s, a, G, w = batch
    q = model.posterior(s, a, G)                                   # (B, K)
    log_pi = torch.log_softmax(model.pi[s].float(), -1)            # (B, K, A)
    nll = -(q * log_pi.gather(2, a[:, None, None].expand(-1, model.n_latents, 1))[..., 0]).sum(1)
    v_err = (q * (model.value[s].float() - G[:, None].float()) ** 2).sum(1)   # (B,)
    mi_for_q = (q * model.contrastive_mi(s, a, G, model.energy.detach())).sum(1)
    mi_for_f = (q.detach() * model.contrastive_mi(s, a, G, model.energy)).sum(1)
    nll, v_err, mi_for_q, mi_for_f = ((w * x).sum() for x in (nll, v_err, mi_for_q, mi_for_f))
    loss = nll + v_err + beta * mi_for_q - mi_for_f
    return loss, {"nll": nll.item(), "value_mse": v_err.item(), "mi_hat": mi_for_f.item()}


# ----------------------------------------------------------------- inference
def empirical_joint(data: Steps) -> np.ndarray:
    """``p_D(s, a, G)`` as an ``(S, A, R)`` table of frequencies."""
    joint = np.zeros((data.n_states, data.n_actions, data.n_returns))
    np.add.at(joint, (data.state, data.action, data.G), 1.0)
    return joint / joint.sum()


@torch.no_grad()
def exact_conditional_mi(model: TabularDoC, data: Steps) -> float:
    """The exact ``I(G; z | s, a)`` (nats) of the data joint times the encoder q.

    Not used for training: a check that the contrastive estimate did its job.
    """
    p_sag = torch.as_tensor(empirical_joint(data))                    # (S, A, R)
    joint = p_sag[..., None] * torch.softmax(model.enc.double(), -1)  # (S, A, R, K)
    p_sa = joint.sum((2, 3), keepdim=True)
    p_saG = joint.sum(3, keepdim=True)
    p_saz = joint.sum(2, keepdim=True)
    ratio = joint * p_sa / (p_saG * p_saz)
    terms = torch.where(joint > 0, joint * ratio.clamp_min(1e-300).log(), torch.zeros(()))
    return float(terms.sum())


@torch.no_grad()
def latent_prior(model: TabularDoC, data: Steps) -> np.ndarray:
    """``p(z | s)``: the aggregate posterior, ``sum_(a,G) p_D(a, G | s) q(z | s, a, G)``; (S, K)."""
    p_sag = torch.as_tensor(empirical_joint(data))
    p_sz = (p_sag[..., None] * torch.softmax(model.enc.double(), -1)).sum((1, 2))  # (S, K)
    p_s = p_sz.sum(1, keepdim=True)
    return torch.where(p_s > 0, p_sz / p_s.clamp_min(1e-300), torch.zeros(())).numpy()


@torch.no_grad()
def doc_policy(model: TabularDoC, data: Steps, min_prior: float = 0.01):
    """Eq. ``doc-inference``: in each state the supported latent of highest value.

    Returns ``(probs (S, A), z_star (S,), promise per state (S,))``.  States the data
    never visited get a uniform policy and a promise of NaN.
    """
    prior = latent_prior(model, data)                                # (S, K)
    V = model.value.float().cpu().numpy()                            # (S, K)
    supported = prior >= min_prior
    masked = np.where(supported, V, -np.inf)
    z_star = masked.argmax(1)                                        # (S,)
    probs = torch.softmax(model.pi.float(), -1).cpu().numpy()[np.arange(model.n_states), z_star]
    seen = supported.any(1)
    probs = np.where(seen[:, None], probs, 1.0 / model.n_actions).astype(np.float64)
    promise = np.where(seen, V[np.arange(model.n_states), z_star], np.nan)
    return probs, z_star, promise


# ---------------------------------------------------------------------- run
@dataclass
class DoCResult:
    """A trained DoC model, its test-time policy, promise and achieved return."""

    model: TabularDoC
    env: Any
    data: Steps
    history: History
    probs: np.ndarray     # pi(a | s, z*(s)), (S, A)
    z_star: np.ndarray    # chosen latent per state, (S,)
    promise: float        # V(s0, z*): the return DoC expects from its choice
    achieved: float       # exact expected return of acting with probs
    mi: float             # exact I(G; z | s, a) after training (nats)


def start_state(env) -> int:
    return int(getattr(env, "start", 0))


def train_doc(cfg: DoCConfig, data=None) -> DoCResult:
    """Train DoC (Eqs. ``doc-loss``, ``doc-contrastive``) on offline data and act with it."""
    env, steps = data if data is not None else make_dataset(cfg)
    if cfg.n_latents < steps.n_actions:
        cfg.fail(f"n_latents = {cfg.n_latents} is fewer than the {steps.n_actions} actions: "
                 "a latent must be able to name every action")
    joint = empirical_joint(steps)                                   # (S, A, R)
    p_sa = joint.sum(2, keepdims=True)
    rho = np.where(p_sa > 0, joint / np.maximum(p_sa, 1e-300), 1.0 / steps.n_returns)
    with one_thread():
        torch.manual_seed(cfg.seed)
        model = TabularDoC(steps.n_states, steps.n_actions, steps.n_returns, cfg.n_latents,
                           torch.as_tensor(rho, dtype=torch.float32))
        history = train(model, cfg, batch_sampler(steps, cfg.batch_size),
                        lambda m, b: doc_loss(m, b, cfg.beta), desc="DoC")
        model.cpu()
        probs, z_star, promise = doc_policy(model, steps, cfg.min_prior)
        mi = exact_conditional_mi(model, steps)
    s0 = start_state(env)
    return DoCResult(model, env, steps, history, probs, z_star, float(promise[s0]),
                     policy_value(env, probs), mi)


# ------------------------------------------------ the one-step baseline
def behaviour_policy(env, cfg: OfflineConfig) -> np.ndarray:
    """The behaviour policy that wrote ``cfg``'s dataset, as an ``(S, A)`` table."""
    if isinstance(env, BernoulliBandit):
        return np.array([[cfg.p_gamble, 1 - cfg.p_gamble]])
    return frozenlake_behaviour(env, cfg.p_random)


def exact_q(env, pi: np.ndarray) -> np.ndarray:
    """Exact ``Q^pi(s, a)``, ``(S, A)``: the arms' success rates in the bandit,
    finite-horizon policy evaluation on FrozenLake."""
    if isinstance(env, BernoulliBandit):
        return env.success[None].copy()
    return env.policy_q(pi)


def empirical_q(data: Steps) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo ``Q-hat^pi_b(s, a)``: the mean return-to-go that followed ``(s, a)`` in
    the data (every visit counts), and the visit counts; two ``(S, A)`` tables, NaN where
    ``(s, a)`` never occurs.  It is what ``V(s, z)`` fits when ``z`` names the action."""
    counts = np.zeros((data.n_states, data.n_actions))
    sums = np.zeros_like(counts)
    np.add.at(counts, (data.state, data.action), 1.0)
    np.add.at(sums, (data.state, data.action), data.G)
    return np.where(counts > 0, sums / np.maximum(counts, 1.0), np.nan), counts


def one_step_improvement(Q: np.ndarray) -> np.ndarray:
    """Eq. ``doc-one-step``: the greedy policy ``argmax_a Q^pi_b(s, a)`` as an ``(S, A)`` table.

    NaN entries (actions the data never shows) are never chosen; a state with no
    finite entry (never visited) gets the uniform policy.
    """
    Q = np.asarray(Q, dtype=float)
    seen = np.isfinite(Q).any(1)
    best = np.where(np.isfinite(Q), Q, -np.inf).argmax(1)
    table = np.eye(Q.shape[1])[best]
    return np.where(seen[:, None], table, 1.0 / Q.shape[1])


# --------------------------------------------------------------- experiments
def compare(env: str, seeds=(0, 1, 2), **overrides) -> dict[str, np.ndarray]:
    """RCSL and DoC on the same offline data, one dataset and one training run per seed.

    Returns arrays over seeds: ``rcsl_target`` (the highest return in the data),
    ``rcsl_achieved``, ``doc_promise`` (``V(s0, z*)``), ``doc_achieved``, ``doc_mi``;
    and the one-step baselines of Eq. ``doc-one-step``: ``behaviour`` (the exact value
    of the behaviour policy ``pi_b``), ``onestep_exact`` (the exact value of ``argmax_a
    Q^pi_b`` with the exact ``Q^pi_b``), ``onestep_data`` (the same with the data's
    Monte-Carlo estimate :func:`empirical_q`), ``optimal`` (the best policy's value) and
    ``doc_agrees`` (the share of the visited states where DoC's most likely action is
    the data's ``argmax_a Q-hat^pi_b``).
    ``overrides`` go to both configs where they apply (e.g. ``n_episodes``).
    """
    if len(seeds) == 0:
        raise ValueError("compare needs at least one seed")
    rc_fields = set(OfflineConfig.field_names())
    out: dict[str, list[float]] = {k: [] for k in (
        "rcsl_target", "rcsl_achieved", "doc_promise", "doc_achieved", "doc_mi", "behaviour",
        "onestep_exact", "onestep_data", "optimal", "doc_agrees")}
    for seed in seeds:
        base = {"env": env, "seed": seed, "data_seed": seed, "progress": False}
        doc_cfg = DoCConfig.from_preset("laptop", **base, **overrides)
        rc_cfg = OfflineConfig.from_preset(
            "laptop", **base, **{k: v for k, v in overrides.items()
                                 if k in rc_fields and k not in ("steps", "lr")})
        data = make_dataset(doc_cfg)
        rc, doc = train_rcsl(rc_cfg, data), train_doc(doc_cfg, data)
        world, steps = data
        pi_b = behaviour_policy(world, doc_cfg)
        q_hat, _ = empirical_q(steps)
        visited = np.unique(steps.state)
        best = (world.success.max() if isinstance(world, BernoulliBandit)
                else world.policy_value(world.optimal_policy()))
        agrees = doc.probs[visited].argmax(1) == np.nan_to_num(q_hat[visited], nan=-np.inf).argmax(1)
        for key, value in (("rcsl_target", rc.target), ("rcsl_achieved", rc.achieved),
                           ("doc_promise", doc.promise), ("doc_achieved", doc.achieved),
                           ("doc_mi", doc.mi), ("behaviour", policy_value(world, pi_b)),
                           ("onestep_exact",
                            policy_value(world, one_step_improvement(exact_q(world, pi_b)))),
                           ("onestep_data", policy_value(world, one_step_improvement(q_hat))),
                           ("optimal", float(best)), ("doc_agrees", float(agrees.mean()))):
            out[key].append(value)
    return {k: np.array(v) for k, v in out.items()}


def latent_sweep(result: DoCResult) -> tuple[np.ndarray, np.ndarray]:
    """One-state environments: for every supported latent z, its promise V(z) and the
    exact return of acting with pi(. | z).  Consistency means the two are equal."""
    if result.data.n_states != 1:
        raise ValueError("latent_sweep is for one-state environments (the bandit); "
                         f"this dataset has {result.data.n_states} states")
    prior = latent_prior(result.model, result.data)[0]
    pis = torch.softmax(result.model.pi.detach().float(), -1)[0].numpy().astype(np.float64)
    zs = np.flatnonzero(prior >= 0.01)
    promise = result.model.value.detach().float()[0].numpy()[zs]
    achieved = np.array([policy_value(result.env, pis[z][None]) for z in zs])
    return promise, achieved


def main(argv: list[str] | None = None) -> DoCResult:
    cfg = DoCConfig.cli(argv, description="Dichotomy of Control (tabular).")
    result = train_doc(cfg)
    print(f"{cfg.env}: DoC promises {result.promise:.3f}, achieves {result.achieved:.3f}; "
          f"I(G; z | s, a) = {result.mi:.4f} nats")
    return result


if __name__ == "__main__":
    run_cli(main)
