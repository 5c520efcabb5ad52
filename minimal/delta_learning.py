"""Delta learning in logistic regression: weak pairs, strong student.

Chapter "Inverse RL for alignment", section "General preferences and what
data to use".  Geng et al. (2025) observe that preference pairs whose chosen
and rejected responses are *both* weak can still improve a stronger model, as
long as the chosen one is a little better; they prove it for logistic
regression.  This module builds our own version of that toy:

* inputs x ~ N(0, I_d); the truth labels y = sign(w* . x);
* a linear model w predicts y with pi_w(y | x) = sigma(y w . x), so its
  accuracy is 1 - angle(w, w*) / pi (eq. ``linear-accuracy``);
* two weak teachers w_c (chosen) and w_r (rejected) with cosines
  ``cos_chosen`` > ``cos_rejected`` to w*, and a student w_0 with a higher
  cosine ``cos_student``.  A fraction ``shared`` of the teachers' error
  direction is common to both (models of one family make the same mistakes);
* **pairwise (DPO) tuning**: on each x, the chosen label y_c = sign(w_c . x)
  and the rejected y_r = sign(w_r . x); the DPO loss with pi_ref = pi_{w_0}
  (eq. ``dpo-loss``) is, since log pi_w(y_c|x) - log pi_w(y_r|x) = y_c w . x
  when y_c != y_r and 0 otherwise (eq. ``delta-dpo-logreg``),

      L(w) = E_x[ -log sigma(beta 1[y_c != y_r] y_c (w - w_0) . x) ];

* **SFT** on the better teacher's labels: E_x[-log sigma(y_c w . x)].

Both run on the shared loop :func:`minimal.core.train.train` from w_0.  Reading
order: :class:`DeltaConfig`, :func:`make_weights`, :func:`accuracy`,
:func:`train_student`, :func:`delta_experiment`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from minimal.core.config import TrainConfig, param, run_cli
from minimal.core.preference_losses import dpo_loss
from minimal.core.train import train


@dataclass
class DeltaConfig(TrainConfig):
    """A student tuned on weak-teacher data, by DPO on pairs or by SFT.

    ``gpu`` preset: for the student at dimension 2000 on 200k examples.  What it delivers on
    an H100/H200-class GPU (wall time, throughput, memory, the metric reached) is not
    measured yet: ``bash benchmarks/gpu_check.sh`` measures it.
    """

    objective: str = param("dpo", "'dpo' on (chosen, rejected) pairs or 'sft' on chosen labels",
                           choices=("dpo", "sft"))
    dim: int = param(100, "input dimension d (typical 20 to 1000; at least 5 directions "
                     "are needed for the teachers and the student)", ge=5)
    n_train: int = param(5000, "training inputs", gt=0)
    cos_student: float = param(0.6, "cosine of the student w_0 with w*", gt=0, lt=1)
    cos_chosen: float = param(0.35, "cosine of the better (chosen) teacher with w*", gt=0, lt=1)
    cos_rejected: float = param(0.25, "cosine of the worse (rejected) teacher with w*", gt=0, lt=1)
    shared: float = param(0.99, "fraction of the teachers' error direction they share", ge=0, le=1)
    beta: float = param(1.0, "DPO temperature beta (larger = smaller moves from w_0)", gt=0)
    steps: int = TrainConfig.redefault("steps", 200)
    batch_size: int = TrainConfig.redefault("batch_size", 256, doc="inputs per step")
    lr: float = TrainConfig.redefault("lr", 0.01, doc="Adam learning rate (typical 0.003 to 0.03)")
    weight_decay: float = TrainConfig.redefault(
        "weight_decay", 0.0, doc="weight decay (0 keeps the student's own scale)")
    warmup_steps: int = TrainConfig.redefault("warmup_steps", 0, doc="linear warm-up steps")
    min_lr_ratio: float = TrainConfig.redefault(
        "min_lr_ratio", 1.0, doc="final LR as a fraction of lr (1 = constant)")
    grad_clip: float = TrainConfig.redefault(
        "grad_clip", 0.0, doc="clip the global grad norm (0 disables)")
    progress: bool = TrainConfig.redefault("progress", False)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"device": "cuda", "dtype": "bfloat16", "dim": 2000, "n_train": 200_000,
                "steps": 2000, "batch_size": 4096, "ckpt_dir": "checkpoints/delta"},
    }

    def check(self) -> None:
        super().check()
        if not self.cos_rejected < self.cos_chosen < self.cos_student:
            self.fail("need cos_rejected < cos_chosen < cos_student (two weak teachers, "
                      f"one slightly better, and a stronger student); got {self.cos_rejected}, "
                      f"{self.cos_chosen}, {self.cos_student}")


def accuracy(w: torch.Tensor, w_star: torch.Tensor) -> float:
    """P_x[sign(w . x) = sign(w* . x)] = 1 - angle(w, w*) / pi for Gaussian x (eq. ``linear-accuracy``)."""
    cos = F.cosine_similarity(w.double().flatten(), w_star.double().flatten(), dim=0)
    return 1 - math.acos(float(cos.clamp(-1, 1))) / math.pi


def make_weights(cfg: DeltaConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """w*, the student w_0 and the teachers w_c, w_r, each a unit vector of shape (d,).

    The student's error direction v is independent of the teachers'.  The
    teachers' errors are u_c = sqrt(shared) u + sqrt(1 - shared) e_c (and the
    same with e_r): a common part u and a private part.
    """
    q, _ = torch.linalg.qr(torch.randn(cfg.dim, 5, generator=gen, dtype=torch.float64))
    w_star, v, u, e_c, e_r = q.T  # five orthonormal directions, each (d,)

    def unit(cos: float, err: torch.Tensor) -> torch.Tensor:
        return cos * w_star + math.sqrt(1 - cos**2) * err

    a, b = math.sqrt(cfg.shared), math.sqrt(1 - cfg.shared)
    return {"w_star": w_star, "student": unit(cfg.cos_student, v),
            "chosen": unit(cfg.cos_chosen, a * u + b * e_c),
            "rejected": unit(cfg.cos_rejected, a * u + b * e_r)}


class LinearModel(nn.Module):
    """pi_w(y | x) = sigma(y w . x) for y in {-1, +1}."""

    def __init__(self, w0: torch.Tensor, scale: float):
        super().__init__()
        self.w = nn.Parameter((scale * w0).float().clone())  # (d,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w  # (B,) logit of y = +1


def train_student(cfg: DeltaConfig, student_scale: float = 3.0) -> dict[str, Any]:
    """Tune the student with ``cfg.objective``; return accuracies (curve and final).

    ``student_scale`` is |w_0|: how confident the reference student is.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    w = make_weights(cfg, gen)
    x = torch.randn(cfg.n_train, cfg.dim, generator=gen)  # (n, d)
    y_c = torch.sign(x @ w["chosen"].float())  # (n,) chosen teacher's labels
    y_r = torch.sign(x @ w["rejected"].float())  # (n,) rejected teacher's labels
    model = LinearModel(w["student"], student_scale)
    w0 = model.w.detach().clone()  # (d,) the reference pi_ref = pi_{w_0}

    def get_batch(g: torch.Generator):
        return torch.randint(cfg.n_train, (cfg.batch_size,), generator=g)

    def loss_fn(m: LinearModel, idx: torch.Tensor):
        xb, yc, yr = x[idx].to(m.w.device), y_c[idx].to(m.w.device), y_r[idx].to(m.w.device)
        if cfg.objective == "sft":
            loss = -F.logsigmoid(yc * m(xb)).mean()
        else:  # eq. delta-dpo-logreg: only disagreements carry a preference
            differ = (yc != yr).float()  # (B,)
            h = yc * (m(xb) - xb @ w0.to(m.w.device))  # (B,) log-ratio margin
            loss = dpo_loss(differ * h, cfg.beta).mean()
        return loss, {"accuracy": accuracy(m.w.detach().cpu(), w["w_star"])}

    history = train(model, cfg, get_batch, loss_fn, desc=f"delta-{cfg.objective}")
    return {"steps": [0] + history.steps,
            "accuracy": [accuracy(w0, w["w_star"])] + history.metrics["accuracy"],
            "final": accuracy(model.w.detach().cpu(), w["w_star"]),
            "student": accuracy(w["student"], w["w_star"]),
            "chosen": accuracy(w["chosen"], w["w_star"]),
            "rejected": accuracy(w["rejected"], w["w_star"]),
            "agree": float((y_c == y_r).float().mean())}


def delta_experiment(seeds=(0, 1, 2), **overrides) -> dict[str, list[float]]:
    """Final accuracy of DPO-on-pairs and SFT-on-chosen, and the fixed baselines, per seed."""
    out: dict[str, list[float]] = {"dpo": [], "sft": [], "student": [], "chosen": [], "rejected": []}
    for s in seeds:
        dpo = train_student(DeltaConfig(objective="dpo", seed=s, **overrides))
        sft = train_student(DeltaConfig(objective="sft", seed=s, **overrides))
        out["dpo"].append(dpo["final"])
        out["sft"].append(sft["final"])
        for k in ("student", "chosen", "rejected"):
            out[k].append(dpo[k])
    return out


def main(argv: list[str] | None = None) -> None:
    cfg = DeltaConfig.cli(argv, description="Delta learning in logistic regression")
    res = train_student(cfg)
    print(f"accuracy: rejected teacher {res['rejected']:.3f}, chosen teacher {res['chosen']:.3f}, "
          f"student before {res['student']:.3f}, after {cfg.objective} {res['final']:.3f}")


if __name__ == "__main__":
    run_cli(main)
