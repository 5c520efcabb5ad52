"""Mutation check of the equation tests: every one-line change to a key equation must fail them.

Each mutation below replaces one exact piece of a key equation's code (a term dropped, a
sign flipped, a clip side or a normalisation swapped, a coefficient ignored) and runs
``pytest -m unit`` on the equation tests; the check passes when every mutation makes them
fail.  Mutations are made in a copy of the checkout (``minimal/``, ``tests/``, ``assets/``
and ``pyproject.toml`` in a temporary folder, put first on ``PYTHONPATH``), so the working
tree is never touched.  Run ``python tools/mutate.py`` or ``make mutate`` (about a
minute); ``tests/test_mutations.py`` runs it and checks that every mutation still applies
to the code as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_equations.py", "tests/test_reasoning_grpo.py", "tests/test_rl_basics_token_mdp.py",
         "tests/test_irl_preference_theory.py"]

# (file, exact text, replacement, what the change means)
MUTATIONS = [
    ("minimal/core/rl.py", "delta = rewards + gamma * next_values - values",
     "delta = rewards + next_values - values", "GAE: TD error without gamma"),
    ("minimal/core/rl.py", "running = delta[t] + gamma * gae_lambda * (1.0 - dones[t]) * running",
     "running = delta[t] + gamma * (1.0 - dones[t]) * running", "GAE: lambda dropped"),
    ("minimal/core/rl.py", "running = delta[t] + gamma * gae_lambda * (1.0 - dones[t]) * running",
     "running = delta[t] + gamma * gae_lambda * running", "GAE: episode ends ignored"),
    ("minimal/core/rl.py", "return adv, adv + values", "return adv, adv",
     "GAE: value targets without V"),
    ("minimal/core/rl.py", "return (adv - adv.mean()) / (adv.std() + eps)",
     "return (adv - adv.mean()) / (adv.std(correction=0) + eps)", "whiten: biased std"),
    ("minimal/core/rl.py", "centered = rewards - rewards.mean(1, keepdim=True)",
     "centered = rewards - rewards.mean()", "group advantages: batch mean as baseline"),
    ("minimal/core/rl.py", "return centered / (rewards.std(1, keepdim=True) + eps)",
     "return centered / (rewards.std() + eps)", "group advantages: batch std for 'group'"),
    ("minimal/core/rl.py", "return centered / (rewards.std() + eps)", "return centered",
     "group advantages: no std for 'batch'"),
    ("minimal/core/rl.py", "clipped = ratio.clamp(1 - eps_low, 1 + eps_high)",
     "clipped = ratio.clamp(1 - eps_high, 1 + eps_low)", "clipped surrogate: sides swapped"),
    ("minimal/core/rl.py", "return -torch.minimum(ratio * adv, clipped * adv)",
     "return -torch.maximum(ratio * adv, clipped * adv)", "clipped surrogate: optimistic"),
    ("minimal/core/rl.py", "return -torch.minimum(ratio * adv, clipped * adv)",
     "return -clipped * adv", "clipped surrogate: clipped term only"),
    ("minimal/core/rl.py", "(adv > 0) & (ratio > 1 + eps_high)", "(adv > 0) & (ratio > 1 + eps_low)",
     "clip_active: wrong side"),
    ("minimal/core/rl.py", "return logp_q - logp_p", "return logp_p - logp_q", "k1: sign"),
    ("minimal/core/rl.py", "log_rho = logp_p - logp_q", "log_rho = logp_q - logp_p",
     "k3: ratio inverted"),
    ("minimal/core/rl.py", "return (log_rho.exp() - 1) - log_rho",
     "return (log_rho.exp() - 1) + log_rho", "k3: sign of the log term"),
    ("minimal/core/preference_losses.py", "return -F.logsigmoid(r_w - r_l)",
     "return -F.logsigmoid(r_l - r_w)", "Bradley-Terry: order"),
    ("minimal/core/preference_losses.py", "return (logp_w - logp_ref_w) - (logp_l - logp_ref_l)",
     "return (logp_w - logp_ref_w) - (logp_l + logp_ref_l)", "margin: reference sign"),
    ("minimal/core/preference_losses.py", "return -F.logsigmoid(beta * h)",
     "return -F.logsigmoid(h)", "DPO: beta dropped"),
    ("minimal/core/preference_losses.py", "return (h - 1 / (2 * tau)) ** 2",
     "return (h - 1 / tau) ** 2", "IPO: target 1/tau"),
    ("minimal/rlhf_ppo.py", "rewards = -beta * kl_t", "rewards = beta * kl_t",
     "RLHF: KL penalty turned into a bonus"),
    ("minimal/rlhf_ppo.py", "rewards[:, -1] += proxy", "rewards[:, 0] += proxy",
     "RLHF: reward on the first token"),
    ("minimal/rlhf_ppo.py", "rewards = token_rewards(kl_t, proxy, cfg.beta)",
     "rewards = token_rewards(kl_t, proxy, -cfg.beta)", "RLHF: the trainer flips beta"),
    ("minimal/dpo.py", 'dpo_loss(h, cfg.beta) if cfg.loss == "dpo"', 'dpo_loss(h, 1.0) if cfg.loss == "dpo"',
     "DPO: the trainer ignores beta"),
    ("minimal/policy_gradient.py", "- cfg.ent_coef * entropy", "+ cfg.ent_coef * entropy",
     "PPO: entropy penalised"),
    ("minimal/policy_gradient.py", "cfg.vf_coef * value_loss", "value_loss", "PPO: c_V dropped"),
    ("minimal/policy_gradient.py", "approx_kl = kl_k3(logp_old, logp).mean()",
     "approx_kl = kl_k1(logp_old, logp).mean()", "PPO: k1 reported as approx_kl"),
    ("minimal/grpo.py", "per_token = per_token + cfg.beta * kl_k3(logp, batch.logp_ref)",
     "per_token = per_token + cfg.beta * kl_k3(batch.logp_ref, logp)", "GRPO: KL direction"),
    ("minimal/grpo.py", "loss = (per_token * m).sum() / n_tokens",
     "loss = (per_token * m).mean()", "GRPO: token aggregation over padding"),
    ("minimal/core/gpt.py", 'logits[..., list(banned_ids)] = float("-inf")', "pass",
     "GPT: banned tokens not renormalised"),
    ("minimal/core/gpt.py", 'logits[:, list(banned_ids)] = float("-inf")', "pass",
     "GPT: banned tokens sampled"),
    ("minimal/core/rl.py", "return 0.5 * (logp_p - logp_q).pow(2)", "return (logp_p - logp_q).pow(2)",
     "k2: the one half dropped"),
    ("minimal/core/rl.py", "others = (rewards.sum(1, keepdim=True) - rewards) / (G - 1)",
     "others = rewards.sum(1, keepdim=True) / G", "RLOO: the sample in its own baseline"),
    ("minimal/core/rl.py", "return -(over / buffer).clamp(max=1.0)",
     "return -(over / max_len).clamp(max=1.0)", "soft overlong penalty: scaled by the limit, not the buffer"),
    ("minimal/preference_bandit.py", "return phi[demos].mean(0) - maxent_policy(phi, w) @ phi",
     "return phi[demos].mean(0)", "max-ent gradient: model features dropped"),
    ("minimal/preference_bandit.py", "return p * ((at_most**n - below**n) / group)[group_of]",
     "return p * (at_most**n / group)[group_of]", "best-of-n: ties below not removed"),
    ("minimal/preference_bandit.py", "return math.log(n) - (n - 1) / n", "return math.log(n)",
     "best-of-n KL: the (n - 1)/n term dropped"),
    ("minimal/preference_bandit.py", "return beta * torch.sigmoid(-beta * h)",
     "return beta * torch.sigmoid(beta * h)", "DPO gradient weight: sign of the margin"),
]


def applies(path: str, old: str) -> bool:
    return (ROOT / path).read_text(encoding="utf-8").count(old) == 1


def copy_checkout(dest: Path) -> None:
    for name in ("minimal", "tests", "assets"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def survives(copy: Path, path: str, old: str, new: str) -> bool:
    """True when the equation tests still pass with the mutation in place (a gap)."""
    file = copy / path
    original = file.read_text(encoding="utf-8")
    try:
        file.write_text(original.replace(old, new), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(copy)}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-m", "unit",
                               "-p", "no:cacheprovider", *TESTS], cwd=copy, env=env,
                              capture_output=True, text=True)
        return proc.returncode == 0
    finally:
        file.write_text(original, encoding="utf-8")


def main() -> int:
    missing = [m for m in MUTATIONS if not applies(m[0], m[1])]
    for path, old, _, what in missing:
        print(f"does not apply (the code changed?): {what}: {path}: {old!r}")
    if missing:
        return 2
    gaps = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        copy_checkout(copy)
        if survives(copy, MUTATIONS[0][0], "", ""):  # unmutated: the tests must pass
            print("the equation tests pass on the unchanged code")
        else:
            print("the equation tests fail on the unchanged code: fix them first")
            return 2
        for path, old, new, what in MUTATIONS:
            alive = survives(copy, path, old, new)
            print(f"{'SURVIVES' if alive else 'caught  '}  {what}", flush=True)
            if alive:
                gaps.append(what)
    print(f"{len(MUTATIONS) - len(gaps)} of {len(MUTATIONS)} mutations caught")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
