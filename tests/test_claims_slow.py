"""The book's headline claims over 10 seeds (slow; outside CI).

CI runs every claim test of the book over 3 seeds (``tests/test_<chapter>_*.py``).  This
file asks whether those claims hold beyond the seeds they were tuned on.  It holds a
registry, ``CLAIMS``: one :class:`Claim` per seeded claim test, each with

* ``chapter`` and ``claim`` (the claim in words), and ``mirrors``: the test it mirrors;
* ``measure(seed) -> dict``: the numbers for one seed, computed by the SAME experiment
  function with the SAME budget as that test (budgets and helpers are imported from the
  test module where it defines them, so the two cannot drift apart);
* ``checks(numbers) -> {condition: bool}``: the SAME assertions and margins as the test,
  restated for one seed (the claim tests inline their assertions, so each condition below
  copies one ``assert`` of the mirrored test);
* ``across_seeds(list of numbers)``: the few assertions a test makes over all its seeds
  together (a mean, or a max against a min), applied to all 10 seeds here; a test that
  asserts only such a mean has no per-seed checks (``checks`` returns ``{}``), and its row
  reports whether the mean holds over the 10 seeds instead of a pass rate;
* ``margin(numbers) -> float``: the slack of the claim's key inequality (positive: it
  holds), reported as mean +- standard deviation and minimum over the seeds.

Each slow test runs one claim on one range of ten seeds and passes if the claim holds for at
least ``MIN_PASS`` (8) of them and the across-seed assertions hold.  There are two ranges:
``SEEDS`` (0..9, on which the claims were developed) and ``HELD_OUT_SEEDS`` (drawn once at
random and never used while developing), so the report shows both how a claim does on its
own seeds and on seeds nobody tuned it on.  A claim that holds in fewer is marked ``xfail``
(``xfail`` for the development range, ``xfail_held_out`` for the other) with its measured
pass rate; no budget or margin is loosened here.  Every test rewrites
``benchmarks/claims.md`` with the results so far (one table per range).

Run (a few tens of minutes on 2 CPU cores)::

    .venv/bin/python -m pytest -m slow tests/test_claims_slow.py -p no:nbval \\
        -o addopts="-p no:cacheprovider" -q

Deterministic tests without a seed (value iteration, the IPO fixed point, the latent
sweeps of DoC, ...) are exact statements and have no entry here.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

# Budgets and helpers shared with the 3-seed tests (pytest puts tests/ on sys.path).
from test_bandit_distillation import LAYER as STEER_LAYER
from test_bandit_dpt import FAST as DPT_BUDGET
from test_icl_claims import DS as ICL_DS
from test_icl_claims import r_at
from test_reasoning_curriculum import BUDGET as PCL_BUDGET
from test_reasoning_grpo import ABLATION_RECIPES, ABLATION_STEPS
from test_rl_basics_policy_gradient import TEST_STEPS as PG_STEPS
from test_rl_basics_tabular import optimal_fraction
from test_rl_basics_token_mdp import PROMPT, RESPONSES, REWARDS, tiny_gpt

from minimal import algorithm_distillation as ad
from minimal import (
    contrastive_repr,
    cpl,
    delta_learning,
    dpo,
    dpt,
    grpo,
    prompt_curriculum,
    reward_learning,
    reward_model,
    rlhf_ppo,
    sft,
)
from minimal import dichotomy_of_control as doc
from minimal import policy_gradient as pg
from minimal import preference_bandit as pb
from minimal import rational_choice as rc
from minimal.bandit_algorithms import compare_baselines, suffix_failure_frequency
from minimal.core import train
from minimal.core.tabular import policy_evaluation, q_learning, value_iteration
from minimal.hierarchical_bayes import agreement, fit_hierarchical, transition_step
from minimal.icl_training import run_grid
from minimal.steering import entropy_steering_vector, steering_sweep
from minimal.token_mdp import gradient_estimators, sequence_kl
from minimal.worlds import icl_tasks
from minimal.worlds.bandits import sample_bandits
from minimal.worlds.gridworld import GridWorld

# Only the 10-seed sweep is slow; the registry check below is cheap and runs in CI too.

SEEDS = tuple(range(10))  # the development range: the seeds the claims were developed and tested on
# A second range, drawn once at random (2026-12-02, before any result on it was seen) and never
# used while developing a claim, a notebook or a test: what a reader's fresh seeds would show.
HELD_OUT_SEEDS = tuple(range(88914, 88924))
RANGES = {"development": SEEDS, "held-out": HELD_OUT_SEEDS}
RANGE_TITLES = {"development": "Seeds 0-9 (the development range)",
                "held-out": "Held-out seeds 88914-88923 (never used while developing)"}
MIN_PASS = 8  # a claim must hold for at least 8 of the 10 seeds
ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "benchmarks" / "claims.md"
COMMAND = ('.venv/bin/python -m pytest -m slow tests/test_claims_slow.py -p no:nbval '
           '-o addopts="-p no:cacheprovider" -q')


@dataclass(frozen=True)
class Claim:
    key: str
    chapter: int
    claim: str
    mirrors: str  # the 3-seed test, as a pytest node id
    measure: Callable[[int], dict]
    checks: Callable[[dict], dict[str, bool]]
    margin: Callable[[dict], float]
    margin_label: str
    across_seeds: Callable[[list[dict]], dict[str, bool]] | None = None
    xfail: str | None = None  # set only after a sweep measured fewer than MIN_PASS passes
    xfail_held_out: str | None = None  # the same, measured on HELD_OUT_SEEDS


def approx(a, b, rel=1e-6, abs_=1e-12):
    """``a == pytest.approx(b, rel, abs)``."""
    return abs(a - b) <= max(rel * abs(b), abs_)


# ============================================================== chapter 1: RL basics
@lru_cache(maxsize=None)
def cartpole(seed):
    runs = pg.compare(("ppo", "reinforce"), (seed,), steps=PG_STEPS, progress=False)
    ppo, rf = runs["ppo"][0], runs["reinforce"][0]
    return dict(ppo_eval=ppo.eval_return, rf_eval=rf.eval_return,
                ppo_auc=float(np.mean(ppo.history.metrics["episode_return"])),
                rf_auc=float(np.mean(rf.history.metrics["episode_return"])),
                rf_last=rf.history.last("episode_return"))


def q_learning_run(seed):
    env = GridWorld()
    m = env.model()
    V_star = value_iteration(m.P, m.R, 0.9).V
    res = q_learning(env, episodes=300, gamma=0.9, alpha=0.5, epsilon=0.1, seed=seed)
    V_greedy = policy_evaluation(m.P, m.R, 0.9, np.eye(4)[res.Q.argmax(-1)])
    rand = q_learning(env, episodes=500, gamma=0.9, alpha=0.5, epsilon=1.0, seed=seed)
    return dict(v_greedy=V_greedy[env.start], v_star=V_star[env.start],
                q_start=res.Q[env.start].max(), frac=optimal_fraction(env, res.Q),
                frac_random=optimal_fraction(env, rand.Q))


def estimators(seed):
    est = gradient_estimators(tiny_gpt(seed), PROMPT, RESPONSES, REWARDS)
    v = est.variances
    return dict(means_ok=all(torch.allclose(m, est.true_grad, atol=1e-6) for m in est.means.values()),
                v_none=v["no baseline"], v_bandit=v["bandit (b = J)"],
                v_seq=v["sequential (b = V(prefix))"])


def kl_three_ways(seed):
    a, b, c = sequence_kl(tiny_gpt(seed), tiny_gpt(seed + 10), PROMPT, RESPONSES)
    return dict(kl=a, b=b, c=c)


# ========================================================= chapter 2: RL for reasoning
@lru_cache(maxsize=None)
def grpo_ablation(seed):
    res = grpo.ablation({n: grpo.RECIPES[n] for n in ABLATION_RECIPES}, seeds=(seed,),
                        base=grpo.GRPOConfig(steps=ABLATION_STEPS))
    return {name: accs[0] for name, accs in res.items()}  # held-out pass@1: SFT, GRPO, Lite PPO


@lru_cache(maxsize=None)
def curriculum(seed):
    cfg = prompt_curriculum.PCLConfig(seed=seed, **PCL_BUDGET)
    start = sft.train_sft(cfg.sft_config()).model
    r = {s: prompt_curriculum.train_pcl(cfg.replace(strategy=s), start) for s in ("uniform", "pcl")}
    v, measured = prompt_curriculum.value_calibration(r["pcl"], r["pcl"].grpo.policy,
                                                      prompt_curriculum.PCLConfig(seed=seed))
    return dict(uni=float(np.mean(r["uniform"].grpo.history.metrics["p_dist"])),
                pcl=float(np.mean(r["pcl"].grpo.history.metrics["p_dist"])),
                same_budget=r["pcl"].grpo.samples == r["uniform"].grpo.samples,
                gain=r["pcl"].grpo.final_accuracy - r["uniform"].grpo.final_accuracy,
                corr=torch.corrcoef(torch.stack([v, measured]))[0, 1].item())


# ===================================================== chapter 3: inverse RL for alignment
@lru_cache(maxsize=None)
def overoptimization(seed, **overrides):
    with train.one_thread():
        res = rlhf_ppo.train_rlhf(rlhf_ppo.overoptimization_config(seed, **overrides))
    before = res["before"]["gold_reward"]
    fit = rlhf_ppo.fit_gao_form(rlhf_ppo.overoptimization_curve(res["history"]), before)
    return dict(rlhf_ppo.overoptimization_summary(res["history"]), before=before,
                r2=fit["r2"], beta=fit["beta"])


def matched_kl(seed):
    with train.one_thread():
        return {"rows": rlhf_ppo.matched_kl_table(seed, dpo_betas=(1.0, 0.5))}


def delta(seed, **kw):
    return {k: v[0] for k, v in delta_learning.delta_experiment(seeds=(seed,), **kw).items()}


def pb_methods(peak, methods):
    return lambda seed: {k: v[0] for k, v in pb.compare_methods(peak, seeds=(seed,),
                                                                methods=methods).items()}


def population_dpo(seed):
    ref = pb.reference_policy(8, floor=0.1)
    reward = torch.randn(8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    tv, objective_ok = [], []
    for beta in (0.5, 2.0):
        fit = pb.population_dpo_fit(ref, pb.pair_preferences(reward), beta)
        star = pb.optimal_policy(ref, reward, beta)
        tv.append(float(0.5 * (fit - star).abs().sum()))
        gen = torch.Generator().manual_seed(100 + seed)
        best = pb.kl_objective(star, ref, reward, beta)
        for _ in range(5):  # nearby policies score lower, as in the mirrored test
            other = star * torch.exp(0.2 * torch.randn(8, generator=gen, dtype=torch.float64))
            objective_ok.append(bool(best > pb.kl_objective(other / other.sum(), ref, reward, beta)))
    return dict(tv=max(tv), objective_ok=all(objective_ok))


def bradley_terry(seed):
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(10, generator=gen, dtype=torch.float64)
    w, l = pb.sample_bt_pairs(r, 2000, gen)
    r_hat = pb.fit_bradley_terry(w, l, 10)
    w2, l2 = pb.sample_bt_pairs(r, 5000, gen)
    return dict(corr=float(torch.corrcoef(torch.stack([r, r_hat]))[0, 1]),
                acc_fit=float(pb.pairwise_accuracy(r_hat, w2, l2)),
                acc_true=float(pb.pairwise_accuracy(r, w2, l2)))


def intransitive(seed):
    P = pb.rock_paper_scissors(0.9)
    bt = pb.bt_then_maximize(P, 300, seed)
    start = torch.softmax(torch.randn(3, generator=torch.Generator().manual_seed(seed),
                                      dtype=torch.float64), dim=0)
    out = pb.nash_self_play(P, start, eta=0.5, iters=500)
    return dict(best_bt=pb.best_bt_accuracy(P), bt_acc=bt["accuracy"],
                bt_exploit=bt["exploitability"], exploit=float(out["exploit_average"][-1]),
                dist=float((out["average"][-1] - 1 / 3).abs().max()))


def reward_model_run(seed):
    res = reward_model.train_reward_model(reward_model.RewardModelConfig(seed=seed))
    return {k: res[k] for k in ("test_accuracy", "gold_accuracy", "correlation")}


def dpo_ipo(seed):
    d = dpo.train_dpo(dpo.DPOConfig(seed=seed, loss="dpo"))
    i = dpo.train_dpo(dpo.DPOConfig(seed=seed, loss="ipo"))
    return dict(dpo_gain=d["after"]["gold_reward"] - d["before"]["gold_reward"],
                ipo_gain=i["after"]["gold_reward"] - i["before"]["gold_reward"],
                dpo_kl=d["after"]["kl"], ipo_kl=i["after"]["kl"])


# ============================================== chapter 4: preferences from regret
@lru_cache(maxsize=None)
def preference_models(seed):
    res = reward_learning.compare_preference_models(reward_learning.RewardLearningConfig.from_preset(
        "laptop", n_mdps=48, sizes="10,30,100,300", data_seed=seed))
    return dict(regret=res.near_optimal("regret"), partial=res.near_optimal("partial_return"))


@lru_cache(maxsize=None)
def cpl_pipelines(seed):
    res = cpl.compare_with_pipelines(cpl.CPLConfig.from_preset("laptop", n_pairs=1000,
                                                               data_seed=seed))
    return {k: v[0] for k, v in res.summary().items()}


CPL, PR_CELL = "CPL (no reward, no RL)", "partial-return cell reward + VI"
RG_CELL, RG_FEAT = "regret cell reward + VI", "regret 4-feature reward + VI"


# ================================================ chapter 5: in-context learning
@lru_cache(maxsize=None)
def icl_grid(seed):
    return run_grid(ICL_DS, (seed,), steps=300)


def icl_final(seed):
    g = icl_grid(seed)
    return {D: float(g[(D, seed)].relative_distance[-1]) for D in ICL_DS}


def icl_early(seed):
    g = icl_grid(seed)
    return dict(r32=r_at(g[(32, seed)], 50), r2=r_at(g[(2, seed)], 50))


def icl_transition(seed):
    g = icl_grid(seed)
    t = {D: transition_step(g[(D, seed)]) for D in ICL_DS}
    return {D: np.inf if v is None else v for D, v in t.items()}


def icl_hierarchical(seed):
    runs = [icl_grid(seed)[(D, seed)] for D in ICL_DS]
    fit = fit_hierarchical(runs)
    s = agreement(runs, fit)
    return dict(hb=s.hierarchical, best=s.best_single, only_G=s.only_G, r2=s.r2_weight,
                alpha=fit.alpha)


def m_beats_g(seed):
    tasks = icl_tasks.sample_tasks(4, 4, 1.0, seed=seed)
    x, tid = icl_tasks.sample_sequences(tasks, 256, 12, torch.Generator().manual_seed(seed))
    return dict(lm=float(icl_tasks.expected_loss(icl_tasks.memorizing_predictor(x, tasks), tasks[tid])),
                lg=float(icl_tasks.expected_loss(icl_tasks.generalizing_predictor(x, 4, 1.0),
                                                 tasks[tid])))


def m_to_g(seed):
    def gap(D):
        th = icl_tasks.sample_tasks(D, 4, 1.0, seed)
        xs, _ = icl_tasks.sample_sequences(th, 256, 12, torch.Generator().manual_seed(seed))
        return float(icl_tasks.kl(icl_tasks.memorizing_predictor(xs, th),
                                  icl_tasks.generalizing_predictor(xs, 4, 1.0)).mean())
    return dict(zip(("g2", "g16", "g256"), (gap(D) for D in (2, 16, 256))))


def choice_cfg(seed):
    return rc.ChoiceConfig.from_preset("laptop", seed=seed, progress=False)


def ev_choice(seed):
    ev = rc.ev_demo(choice_cfg(seed))[0]
    return dict(network=ev.network, larger_payoff=ev.larger_payoff, higher_prob=ev.higher_prob,
                rmse=ev.value_rmse)


def weight_reports(seed):
    rep = rc.report_demo(choice_cfg(seed))
    return dict(own=rep.own, crossed=rep.crossed)


# ============================================== chapter 6: in-context decision making
def baselines(kind):
    def run(seed):
        runs = compare_baselines(n_runs=600, horizon=50, kind=kind, seed=seed)
        regret = {k: v.cumulative_regret()[:, -1].mean() for k, v in runs.items()}
        fail = {k: suffix_failure_frequency(v, 25) for k, v in runs.items()}
        return dict(regret=regret, fail=fail)
    return run


def greedy_horizons(seed):
    short = compare_baselines(n_runs=600, horizon=50, seed=seed)
    long = compare_baselines(n_runs=400, horizon=500, seed=seed)
    r = lambda runs, k: runs[k].cumulative_regret()[:, -1].mean()  # noqa: E731
    return dict(short_greedy=r(short, "greedy"), short_ts=r(short, "thompson"),
                long_greedy=r(long, "greedy"), long_ts=r(long, "thompson"))


@lru_cache(maxsize=None)
def ad_student(seed):
    with train.one_thread():  # as the test module's autouse fixture
        return ad.train_ad(ad.ADConfig.from_preset("laptop", seed=seed, steps=400, progress=False))


def distillation(seed):
    with train.one_thread():
        m = ad.failure_modes(ad_student(seed), n_runs=300, seed=300 + seed)
    return dict(teacher=m["ucb (teacher)"], student=m["distilled"], greedy=m["greedy"])


def steering_run(seed):
    student = ad_student(seed)
    H = student.cfg.horizon
    with train.one_thread():
        logged = dpt.run_agent(student.model, sample_bandits(300, 5, np.random.default_rng(seed)),
                               H, seed=seed)
        u = entropy_steering_vector(student.model, logged, STEER_LAYER)
        sweep = steering_sweep(student.model, u / u.norm(), STEER_LAYER, [0, 4, 16], H,
                               n_runs=200, seed=400 + seed)
    return dict(ent=[float(e) for e in sweep["entropy"]], frac=[float(f) for f in sweep["min_frac"]])


@lru_cache(maxsize=None)
def dpt_agent(seed):
    with train.one_thread():
        return dpt.train_dpt(dpt.DPTConfig.from_preset("laptop", seed=seed, **DPT_BUDGET))


def dpt_online(seed):
    with train.one_thread():
        runs = dpt.online_comparison(dpt_agent(seed), n_runs=300, seed=100 + seed)
    fail = {k: suffix_failure_frequency(v, 25) for k, v in runs.items()}
    return dict(regret=dpt.final_regret(runs), fail=fail)


def dpt_offline(seed):
    with train.one_thread():
        out = dpt.offline_comparison(dpt_agent(seed), sizes=(5, 10, 20), n_runs=2000,
                                     seed=200 + seed)
    gaps = np.array(out["DPT"]) - np.array(out["empirical mean"])
    return dict(gap_mean=float(gaps.mean()), gap_min=float(gaps.min()))


# ======================================================= chapter 7: offline RL
@lru_cache(maxsize=None)
def doc_compare(env, seed):
    return {k: float(v[0]) for k, v in doc.compare(env, (seed,)).items()}


def representations(**kw):
    return lambda seed: {k: float(v[0]) for k, v in
                         contrastive_repr.compare_representations(seeds=(seed,), **kw).items()}


@lru_cache(maxsize=None)
def rcsl_default_prefers_gamble():
    """Seed-independent part of the RCSL test (its default config, run once)."""
    from minimal.return_conditioning import OfflineConfig, train_rcsl
    return bool(train_rcsl(OfflineConfig(progress=False)).probs[0, 0] > 0.55)


# ================================================================= the registry
T = "tests/"
CLAIMS = [
    # ---- chapter 1
    Claim("ppo_solves_cartpole", 1,
          "PPO solves CartPole-v1 in 20,480 env steps (greedy eval >= 475)",
          T + "test_rl_basics_policy_gradient.py::test_ppo_solves_cartpole_for_every_seed",
          cartpole, lambda m: {"eval >= 475": m["ppo_eval"] >= 475},
          lambda m: m["ppo_eval"] - 475, "PPO eval return - 475"),
    Claim("reinforce_slower", 1, "REINFORCE learns more slowly than PPO at equal env steps",
          T + "test_rl_basics_policy_gradient.py::test_reinforce_learns_more_slowly_at_equal_steps",
          cartpole,
          lambda m: {"ppo_auc > 3 rf_auc": m["ppo_auc"] > 3 * m["rf_auc"],
                     "rf last return < 300": m["rf_last"] < 300},
          lambda m: m["ppo_auc"] / m["rf_auc"] - 3, "PPO/REINFORCE curve-mean ratio - 3",
          across_seeds=lambda ms: {"mean REINFORCE eval < 350": np.mean([m["rf_eval"] for m in ms]) < 350}),
    Claim("q_learning_optimal", 1,
          "Q-learning (on- and off-policy) finds the optimal greedy policy on the gridworld",
          T + "test_rl_basics_tabular.py::test_q_learning_greedy_policy_is_optimal_on_the_default_gridworld",
          q_learning_run,
          lambda m: {"V_greedy(start) = V*": approx(m["v_greedy"], m["v_star"], abs_=1e-6),
                     "max Q(start) = V* +- 0.05": approx(m["q_start"], m["v_star"], abs_=0.05),
                     "optimal fraction >= 0.9": m["frac"] >= 0.9,
                     "random behaviour: fraction = 1": m["frac_random"] == 1.0},
          lambda m: m["frac"] - 0.9, "optimal-state fraction (eps 0.1) - 0.9",
          xfail="measured 7/10 (2026-11-25): optimal fraction < 0.9 at seeds 5, 8, 9",
          xfail_held_out="measured 4/10 (2026-12-02): optimal fraction < 0.9 at six seeds"),
    Claim("critic_cuts_variance", 1,
          "Bandit and sequential gradient estimators agree in mean; each baseline cuts variance",
          T + "test_rl_basics_token_mdp.py::test_bandit_and_sequential_estimators_agree_in_mean_and_the_critic_cuts_variance",
          estimators,
          lambda m: {"means = true gradient": m["means_ok"],
                     "v_none > 1.1 v_bandit": m["v_none"] > 1.1 * m["v_bandit"],
                     "v_bandit > 1.05 v_seq": m["v_bandit"] > 1.05 * m["v_seq"]},
          lambda m: min(m["v_none"] / m["v_bandit"] - 1.1, m["v_bandit"] / m["v_seq"] - 1.05),
          "smallest variance-ratio slack"),
    Claim("sequence_kl", 1, "Sequence KL = sum of token KLs (three ways)",
          T + "test_rl_basics_token_mdp.py::test_sequence_kl_is_the_sum_of_token_kls",
          kl_three_ways,
          lambda m: {"KL > 1e-3": m["kl"] > 1e-3,
                     "equal within rel 1e-4": approx(m["kl"], m["b"], 1e-4) and approx(m["kl"], m["c"], 1e-4)},
          lambda m: 1e-4 - max(abs(m["kl"] - m["b"]) / abs(m["b"]), abs(m["kl"] - m["c"]) / abs(m["c"])),
          "1e-4 - largest relative disagreement"),
    # ---- chapter 2
    Claim("grpo_lifts_sft", 2, "GRPO and Lite PPO lift held-out pass@1 above the SFT start",
          T + "test_reasoning_grpo.py::test_rl_lifts_heldout_accuracy_above_the_sft_start",
          grpo_ablation,
          lambda m: {f"{n} - SFT > 0.02": m[n] - m["SFT"] > 0.02 for n in ABLATION_RECIPES},
          lambda m: min(m[n] - m["SFT"] for n in ABLATION_RECIPES) - 0.02,
          "smaller gain over SFT - 0.02 (pass@1)",
          across_seeds=lambda ms: {f"mean {n} gain > 0.05": np.mean([m[n] - m["SFT"] for m in ms]) > 0.05
                                   for n in ABLATION_RECIPES}),
    Claim("lite_ppo_vs_grpo", 2,
          "Lite PPO and GRPO differ by less than half of GRPO's gain (the paper's ordering is not reproduced)",
          T + "test_reasoning_grpo.py::test_lite_ppo_and_grpo_differ_less_than_rl_gains",
          grpo_ablation, lambda m: {},
          lambda m: 0.5 * (m["GRPO"] - m["SFT"]) - abs(m["Lite PPO"] - m["GRPO"]),
          "half GRPO's gain - abs(Lite PPO - GRPO) (per seed)",
          across_seeds=lambda ms: {"|mean(Lite PPO - GRPO)| < 0.5 mean GRPO gain":
                                   abs(np.mean([m["Lite PPO"] - m["GRPO"] for m in ms]))
                                   < 0.5 * np.mean([m["GRPO"] - m["SFT"] for m in ms])}),
    Claim("pcl_near_half", 2, "PCL's value model picks prompts nearer p = 1/2 than uniform sampling",
          T + "test_reasoning_curriculum.py::test_pcl_selects_prompts_closer_to_one_half_than_uniform",
          curriculum,
          lambda m: {"pcl < uniform - 0.01": m["pcl"] < m["uni"] - 0.01,
                     "same generation budget": m["same_budget"]},
          lambda m: m["uni"] - 0.01 - m["pcl"], "uniform - 0.01 - PCL (mean abs(p - 1/2))"),
    Claim("pcl_not_faster", 2, "PCL does not beat uniform sampling at this scale (not reproduced)",
          T + "test_reasoning_curriculum.py::test_pcl_does_not_beat_uniform_at_this_scale",
          curriculum, lambda m: {}, lambda m: 0.03 - m["gain"], "0.03 - PCL's pass@1 gain (per seed)",
          across_seeds=lambda ms: {"mean PCL gain < 0.03": np.mean([m["gain"] for m in ms]) < 0.03}),
    Claim("pcl_value_model", 2, "PCL's value model tracks measured success rates",
          T + "test_reasoning_curriculum.py::test_value_model_tracks_measured_success",
          curriculum, lambda m: {"corr > 0.4": m["corr"] > 0.4},
          lambda m: m["corr"] - 0.4, "correlation - 0.4"),
    # ---- chapter 3
    Claim("overoptimization", 3,
          "A biased proxy is over-optimized: gold peaks then falls while the proxy rises",
          T + "test_irl_rlhf_ppo.py::test_biased_proxy_is_over_optimized_gold_peaks_then_falls",
          overoptimization,
          lambda m: {"peak > start + 1": m["peak_gold"] > m["before"] + 1.0,
                     "final < peak - 2": m["final_gold"] < m["peak_gold"] - 2.0,
                     "proxy rises > 0.4 after the peak": m["final_proxy"] > m["proxy_at_peak"] + 0.4,
                     "KL grows > 5 after the peak": m["final_kl"] > m["kl_at_peak"] + 5,
                     "Gao form: R^2 > 0.8, beta > 0": m["r2"] > 0.8 and m["beta"] > 0},
          lambda m: m["peak_gold"] - 2.0 - m["final_gold"], "peak - 2 - final gold reward",
          xfail="measured 6/10 (2026-11-25): gold falls by less than 2 at seeds 3 and 5 (seed 5 "
                "finds responses that proxy and gold both score highly), the proxy rises by "
                "less than 0.4 after the gold peak at seeds 5, 6, 7; 300 or 400 steps do not "
                "change this (6/10, 7/10)"),
    Claim("unbiased_gold_rises", 3, "With unbiased raters, gold reward keeps rising",
          T + "test_irl_rlhf_ppo.py::test_unbiased_proxy_gold_keeps_rising",
          lambda seed: overoptimization(seed, rater_bias=0.0),
          lambda m: {"final > peak - 0.2": m["final_gold"] > m["peak_gold"] - 0.2,
                     "final > 5": m["final_gold"] > 5},
          lambda m: m["final_gold"] - 5, "final gold reward - 5"),
    Claim("ppo_dpo_matched_kl", 3, "PPO and DPO both raise gold reward and tie at matched KL",
          T + "test_irl_rlhf_ppo.py::test_ppo_and_dpo_both_raise_gold_and_tie_at_matched_kl",
          matched_kl,
          lambda m: {"DPO > reference + 1.5": all(r["dpo_gold"] > r["reference_gold"] + 1.5 for r in m["rows"]),
                     "PPO > reference + 1.5": all(r["ppo_gold"] > r["reference_gold"] + 1.5 for r in m["rows"]),
                     "|DPO - PPO| < 0.5": all(abs(r["dpo_gold"] - r["ppo_gold"]) < 0.5 for r in m["rows"])},
          lambda m: 0.5 - max(abs(r["dpo_gold"] - r["ppo_gold"]) for r in m["rows"]),
          "0.5 - largest abs(DPO - PPO) gold gap"),
    Claim("delta_learning", 3,
          "DPO on pairs from two weak teachers beats the student and both teachers; SFT on the chosen does not",
          T + "test_irl_delta_learning.py::test_pairs_from_weak_teachers_beat_both_and_sft_does_not",
          delta,
          lambda m: {"chosen > rejected": m["chosen"] > m["rejected"],
                     "dpo > student + 0.015": m["dpo"] > m["student"] + 0.015,
                     "student + 0.015 > chosen": m["student"] + 0.015 > m["chosen"],
                     "sft < student - 0.05": m["sft"] < m["student"] - 0.05,
                     "sft = chosen +- 0.03": approx(m["sft"], m["chosen"], abs_=0.03)},
          lambda m: m["dpo"] - m["student"] - 0.015, "DPO - student - 0.015 (accuracy)"),
    Claim("delta_needs_shared_errors", 3,
          "Delta learning needs shared teacher errors (independent errors: DPO ends below the student)",
          T + "test_irl_delta_learning.py::test_delta_learning_needs_shared_errors",
          lambda s: delta(s, shared=0.0),
          lambda m: {"dpo < student - 0.05": m["dpo"] < m["student"] - 0.05},
          lambda m: m["student"] - 0.05 - m["dpo"], "student - 0.05 - DPO (accuracy)",
          across_seeds=lambda ms: {"max dpo < min student - 0.05":
                                   max(m["dpo"] for m in ms) < min(m["student"] for m in ms) - 0.05}),
    Claim("low_density_peak", 3,
          "Low-density peak: on-policy SFT beats offline MLE, on-policy PG beats both",
          T + "test_irl_preference_bandit.py::test_low_density_peak_on_policy_beats_offline_mle",
          pb_methods(0.8, ("sft_offline", "sft_online", "pg_online")),
          lambda m: {"sft_online > sft_offline + 0.5": m["sft_online"] > m["sft_offline"] + 0.5,
                     "pg_online > sft_online + 0.03": m["pg_online"] > m["sft_online"] + 0.03},
          lambda m: m["pg_online"] - m["sft_online"] - 0.03, "pg_online - sft_online - 0.03 (reward)",
          xfail="measured 4/10 (2026-11-25): pg_online > sft_online + 0.03 fails at seeds 3, 6, 7, 8, 9, "
                "sft_online > sft_offline + 0.5 at seed 4",
          xfail_held_out="measured 5/10 (2026-12-02): pg_online > sft_online + 0.03 fails at four "
                         "seeds, sft_online > sft_offline + 0.5 at one"),
    Claim("high_density_peak", 3,
          "High-density peak: every method ends near the optimum (small gap)",
          T + "test_irl_preference_bandit.py::test_high_density_peak_small_gap",
          pb_methods(0.35, ("sft_offline", "pg_online", "dpo_offline")),
          lambda m: {"min > 0.95": min(m.values()) > 0.95,
                     "max - min < 0.05": max(m.values()) - min(m.values()) < 0.05},
          lambda m: min(m.values()) - 0.95, "lowest final reward - 0.95",
          across_seeds=lambda ms: {"over all seeds: min > 0.95 and max - min < 0.05":
                                   min(min(m.values()) for m in ms) > 0.95
                                   and max(max(m.values()) for m in ms)
                                   - min(min(m.values()) for m in ms) < 0.05}),
    Claim("population_dpo", 3,
          "Population DPO's minimizer is the closed-form KL-regularized optimum",
          T + "test_irl_preference_bandit.py::test_population_dpo_minimizer_is_the_closed_form_policy",
          population_dpo,
          lambda m: {"TV(fit, pi*) < 1e-3": m["tv"] < 1e-3, "pi* beats nearby policies": m["objective_ok"]},
          lambda m: 1e-3 - m["tv"], "1e-3 - TV(fit, pi*)"),
    Claim("bradley_terry", 3, "Bradley-Terry fit recovers the reward from 2000 pairs",
          T + "test_irl_preference_bandit.py::test_bradley_terry_recovers_the_reward",
          bradley_terry,
          lambda m: {"corr > 0.98": m["corr"] > 0.98,
                     "accuracy > true reward's - 0.01": m["acc_fit"] > m["acc_true"] - 0.01},
          lambda m: m["corr"] - 0.98, "correlation - 0.98"),
    Claim("intransitive_nash", 3,
          "Intransitive preferences: no BT fit works, self-play reaches the Nash equilibrium",
          T + "test_irl_preference_bandit.py::test_intransitive_preferences_no_bt_fit_but_self_play_reaches_nash",
          intransitive,
          lambda m: {"best BT accuracy = 2/3": approx(m["best_bt"], 2 / 3),
                     "BT accuracy < 0.7": m["bt_acc"] < 0.7,
                     "BT exploitability > 0.35": m["bt_exploit"] > 0.35,
                     "self-play exploitability < 0.02": m["exploit"] < 0.02,
                     "average within 0.05 of uniform": m["dist"] < 0.05},
          lambda m: 0.02 - m["exploit"], "0.02 - self-play exploitability"),
    Claim("reward_model", 3, "The tiny-GPT reward model generalizes to held-out pairs",
          T + "test_irl_tiny_gpt.py::test_reward_model_generalizes_to_held_out_pairs",
          reward_model_run,
          lambda m: {"accuracy > 0.70": m["test_accuracy"] > 0.70,
                     "accuracy > gold's - 0.08": m["test_accuracy"] > m["gold_accuracy"] - 0.08,
                     "correlation > 0.8": m["correlation"] > 0.8},
          lambda m: m["test_accuracy"] - m["gold_accuracy"] + 0.08, "accuracy - (gold's - 0.08)"),
    Claim("dpo_ipo", 3,
          "DPO and IPO raise the gold reward of the tiny GPT; IPO at a third of the KL",
          T + "test_irl_tiny_gpt.py::test_dpo_and_ipo_raise_the_gold_reward_ipo_at_lower_kl",
          dpo_ipo,
          lambda m: {"DPO gain > 4": m["dpo_gain"] > 4, "IPO gain > 2": m["ipo_gain"] > 2,
                     "IPO KL < DPO KL / 3": m["ipo_kl"] < m["dpo_kl"] / 3},
          lambda m: m["ipo_gain"] - 2, "IPO gold-reward gain - 2"),
    # ---- chapter 4
    Claim("regret_near_optimal", 4,
          "Regret preference model gives near-optimal policies more often than partial return, at every data size",
          T + "test_regret_learning.py::test_regret_model_gives_near_optimal_policies_more_often_at_every_size",
          preference_models,
          lambda m: {"gap >= 0.05 up to 100 pairs": bool(np.all((m["regret"] - m["partial"])[:-1] >= 0.05)),
                     "gap > 0 at 300 pairs": (m["regret"] - m["partial"])[-1] > 0,
                     "mean gap >= 0.1": (m["regret"] - m["partial"]).mean() >= 0.1},
          lambda m: (m["regret"] - m["partial"]).mean() - 0.1, "mean near-optimal gap - 0.1"),
    Claim("more_preferences_help", 4, "More preferences help both learners (10 -> 300 pairs)",
          T + "test_regret_learning.py::test_more_preferences_help_both_learners",
          preference_models,
          lambda m: {"partial: +0.3": m["partial"][-1] >= m["partial"][0] + 0.3,
                     "regret: +0.3": m["regret"][-1] >= m["regret"][0] + 0.3,
                     "regret at 300 >= 0.95": m["regret"][-1] >= 0.95},
          lambda m: min(m["partial"][-1] - m["partial"][0], m["regret"][-1] - m["regret"][0]) - 0.3,
          "smaller 10->300 improvement - 0.3"),
    Claim("cpl_matches_partial_return", 4,
          "CPL is level with the partial-return pipeline of the same flexibility on mean score",
          T + "test_regret_learning.py::test_cpl_matches_the_partial_return_pipeline_of_the_same_flexibility",
          cpl_pipelines,
          lambda m: {"CPL >= 0.65": m[CPL] >= 0.65, "CPL >= PR cell - 0.1": m[CPL] >= m[PR_CELL] - 0.1},
          lambda m: m[CPL] - m[PR_CELL] + 0.1, "CPL - (PR cell - 0.1)",
          across_seeds=lambda ms: {"mean CPL >= mean PR cell - 0.02":
                                   np.mean([m[CPL] for m in ms]) >= np.mean([m[PR_CELL] for m in ms]) - 0.02},
          xfail="measured 7/10 (2026-11-25): CPL < 0.65 at seeds 6, 7; CPL < PR cell - 0.1 at seed 4"),
    Claim("cpl_below_regret", 4,
          "CPL does not reach the regret pipelines (known dynamics are worth a lot of data)",
          T + "test_regret_learning.py::test_cpl_does_not_reach_the_regret_pipelines_here",
          cpl_pipelines,
          lambda m: {"regret 4-feature >= 0.98": m[RG_FEAT] >= 0.98,
                     "regret cell >= CPL + 0.03": m[RG_CELL] >= m[CPL] + 0.03},
          lambda m: m[RG_CELL] - m[CPL] - 0.03, "regret cell - CPL - 0.03"),
    # ---- chapter 5
    Claim("icl_memorize_vs_generalize", 5,
          "Low task diversity ends at the memorizing predictor M, high diversity does not",
          T + "test_icl_claims.py::test_low_diversity_ends_at_m_and_high_diversity_does_not",
          icl_final,
          lambda f: {"r(D=2) > 0.85": f[2] > 0.85, "r(D=8) > 0.2": f[8] > 0.2,
                     "r(D=32) < 0.4": f[32] < 0.4, "r decreasing in D": f[2] > f[8] > f[32]},
          lambda f: 0.4 - f[32], "0.4 - r(D=32) at step 300"),
    Claim("icl_early_g_side", 5, "Early in training, high diversity sits on the generalizing side",
          T + "test_icl_claims.py::test_early_in_training_high_diversity_sits_on_the_g_side",
          icl_early,
          lambda m: {"r(D=32, 50) < 0.15": m["r32"] < 0.15, "r(D=2) - r(D=32) > 0.3": m["r2"] - m["r32"] > 0.3},
          lambda m: 0.15 - m["r32"], "0.15 - r(D=32) at step 50"),
    Claim("icl_transition_later", 5, "The transition to M comes later at higher diversity",
          T + "test_icl_claims.py::test_transition_comes_later_at_higher_diversity",
          icl_transition,
          lambda t: {"t(2) < t(32)": t[2] < t[32]},
          lambda t: min(t[32], 300) - min(t[2], 300), "t(32) - t(2) (steps; none = 300)",
          across_seeds=lambda ts: {"mean t(2) < mean t(8) < mean t(32) (none = 300)":
                                   np.mean([min(t[2], 300) for t in ts]) < np.mean([min(t[8], 300) for t in ts])
                                   < np.mean([min(t[32], 300) for t in ts])}),
    Claim("icl_hierarchical_model", 5,
          "The hierarchical Bayesian model beats the best single predictor",
          T + "test_icl_claims.py::test_hierarchical_model_beats_the_best_single_predictor",
          icl_hierarchical,
          lambda m: {"KL < 0.99 best single": m["hb"] < 0.99 * m["best"],
                     "KL < 0.5 only-G": m["hb"] < 0.5 * m["only_G"],
                     "0 < alpha < 1.5": 0 < m["alpha"] < 1.5},
          lambda m: 0.99 - m["hb"] / m["best"], "0.99 - KL ratio to best single",
          across_seeds=lambda ms: {"median R^2 of the weight > 0.5": np.median([m["r2"] for m in ms]) > 0.5}),
    Claim("m_beats_g_in_distribution", 5,
          "The memorizing predictor M beats G on the training mixture",
          T + "test_icl_predictors.py::test_memorizing_equals_true_urn_when_d_is_one_and_m_beats_g_in_distribution",
          m_beats_g,
          lambda m: {"L(M) < L(G) - 0.02": m["lm"] < m["lg"] - 0.02},
          lambda m: m["lg"] - 0.02 - m["lm"], "L(G) - 0.02 - L(M) (nats)"),
    Claim("m_approaches_g", 5, "M approaches G as task diversity grows",
          T + "test_icl_predictors.py::test_m_approaches_g_as_diversity_grows",
          m_to_g,
          lambda m: {"KL(2) > 2 KL(16) > 4 KL(256)": m["g2"] > 2 * m["g16"] > 4 * m["g256"]},
          lambda m: min(m["g2"] / m["g16"], m["g16"] / m["g256"]) - 2, "smaller gap ratio - 2"),
    Claim("ev_choice", 5, "An arithmetic-only network chooses by expected value",
          T + "test_icl_rational_choice.py::test_arithmetic_only_network_chooses_by_expected_value",
          ev_choice,
          lambda m: {"network > 0.97": m["network"] > 0.97,
                     "network > larger payoff + 0.15": m["network"] > m["larger_payoff"] + 0.15,
                     "network > higher prob + 0.15": m["network"] > m["higher_prob"] + 0.15,
                     "value RMSE < 0.01": m["rmse"] < 0.01},
          lambda m: m["network"] - 0.97, "EV-agreement - 0.97"),
    Claim("weight_reports", 5, "Reported attribute weights track the hidden ones",
          T + "test_icl_rational_choice.py::test_reported_weights_track_the_hidden_ones",
          weight_reports,
          lambda m: {"own r > 0.93": m["own"] > 0.93, "own > crossed + 0.15": m["own"] > m["crossed"] + 0.15},
          lambda m: m["own"] - 0.93, "own r - 0.93"),
    # ---- chapter 6
    *[Claim(f"ucb_thompson_{kind}", 6,
            f"UCB and Thompson learn; greedy abandons the best arm more often ({kind})",
            T + f"test_bandit_baselines.py::test_ucb_and_thompson_learn_and_greedy_fails_more_often[{kind}]",
            baselines(kind),
            lambda m: {"UCB, TS < 0.5 random": max(m["regret"]["ucb"], m["regret"]["thompson"])
                       < 0.5 * m["regret"]["random"],
                       "greedy fail > 4 x theirs": m["fail"]["greedy"]
                       > 4 * max(m["fail"]["ucb"], m["fail"]["thompson"])},
            lambda m: 0.5 - max(m["regret"]["ucb"], m["regret"]["thompson"]) / m["regret"]["random"],
            "0.5 - worse regret/random ratio")
      for kind in ("gaussian", "bernoulli")],
    Claim("greedy_horizon", 6, "Greedy looks best at 50 steps but loses to Thompson at 500",
          T + "test_bandit_baselines.py::test_greedy_looks_best_at_50_steps_but_loses_at_500",
          greedy_horizons,
          lambda m: {"H=50: greedy < TS": m["short_greedy"] < m["short_ts"],
                     "H=500: greedy > 1.35 TS": m["long_greedy"] > 1.35 * m["long_ts"]},
          lambda m: m["long_greedy"] / m["long_ts"] - 1.35, "greedy/TS regret at H=500 - 1.35"),
    Claim("ad_matches_teacher", 6,
          "The distilled student matches its UCB teacher and avoids greedy's failures",
          T + "test_bandit_distillation.py::test_distilled_student_matches_its_teacher_and_avoids_greedys_failures",
          distillation,
          lambda m: {"regret < 1.2 teacher": m["student"]["regret"] < 1.2 * m["teacher"]["regret"],
                     "suffix fail < teacher + 0.04": m["student"]["suffix_fail"] < m["teacher"]["suffix_fail"] + 0.04,
                     "suffix fail < 0.3 greedy": m["student"]["suffix_fail"] < 0.3 * m["greedy"]["suffix_fail"],
                     "|MinFrac - teacher| < 0.03": abs(m["student"]["min_frac"] - m["teacher"]["min_frac"]) < 0.03},
          lambda m: 1.2 - m["student"]["regret"] / m["teacher"]["regret"], "1.2 - student/teacher regret"),
    Claim("steering_entropy", 6,
          "Entropic steering raises action entropy and exploration with its scale",
          T + "test_bandit_distillation.py::test_steering_raises_entropy_and_exploration_with_its_scale",
          steering_run,
          lambda m: {"ent0 + 0.1 < ent4 < ent16": m["ent"][0] + 0.1 < m["ent"][1] < m["ent"][2],
                     "MinFrac(4) > MinFrac(0) + 0.01": m["frac"][1] > m["frac"][0] + 0.01},
          lambda m: min(m["ent"][1] - m["ent"][0] - 0.1, m["ent"][2] - m["ent"][1]),
          "smaller entropy-step slack (nats)",
          across_seeds=lambda ms: {"mean MinFrac(16) - MinFrac(0) > 0.02":
                                   np.mean([m["frac"][2] - m["frac"][0] for m in ms]) > 0.02}),
    Claim("dpt_online", 6, "DPT's online regret is close to Thompson's and far below random",
          T + "test_bandit_dpt.py::test_online_regret_is_close_to_thompson_and_far_below_random",
          dpt_online,
          lambda m: {"DPT < 1.45 TS": m["regret"]["DPT"] < 1.45 * m["regret"]["thompson"],
                     "DPT < 0.45 random": m["regret"]["DPT"] < 0.45 * m["regret"]["random"],
                     "fail < 0.5 greedy": m["fail"]["DPT"] < 0.5 * m["fail"]["greedy"]},
          lambda m: 1.45 - m["regret"]["DPT"] / m["regret"]["thompson"], "1.45 - DPT/TS regret"),
    Claim("dpt_offline", 6, "Offline DPT beats the empirical mean on small datasets",
          T + "test_bandit_dpt.py::test_offline_dpt_beats_the_empirical_mean_on_small_datasets",
          dpt_offline,
          lambda m: {"mean gap > 0.015": m["gap_mean"] > 0.015, "every gap > -0.01": m["gap_min"] > -0.01},
          lambda m: m["gap_mean"] - 0.015, "mean best-arm-rate gap - 0.015"),
    # ---- chapter 7
    Claim("rcsl_misses", 7,
          "RCSL conditioned on the best return picks the gamble and misses its target",
          T + "test_offline_doc.py::test_rcsl_conditioned_on_the_best_return_picks_the_gamble_and_misses",
          lambda s: doc_compare("bandit", s),
          lambda m: {"target = 1": m["rcsl_target"] == 1, "achieved < 0.5": m["rcsl_achieved"] < 0.5,
                     "target - achieved > 0.5": m["rcsl_target"] - m["rcsl_achieved"] > 0.5},
          lambda m: 0.5 - m["rcsl_achieved"], "0.5 - RCSL achieved",
          across_seeds=lambda ms: {"default RCSL: P(gamble | G = 1) > 0.55": rcsl_default_prefers_gamble()}),
    Claim("doc_keeps_promise", 7, "DoC keeps its promise and beats RCSL on the bandit",
          T + "test_offline_doc.py::test_doc_keeps_its_promise_and_beats_rcsl",
          lambda s: doc_compare("bandit", s),
          lambda m: {"|promise - achieved| < 0.1": abs(m["doc_promise"] - m["doc_achieved"]) < 0.1,
                     "achieved > 0.85": m["doc_achieved"] > 0.85,
                     "achieved > RCSL + 0.4": m["doc_achieved"] > m["rcsl_achieved"] + 0.4,
                     "MI < 0.02": m["doc_mi"] < 0.02},
          lambda m: m["doc_achieved"] - 0.85, "DoC achieved - 0.85"),
    Claim("doc_frozenlake", 7, "DoC beats RCSL on slippery FrozenLake",
          T + "test_offline_doc.py::test_doc_beats_rcsl_on_slippery_frozenlake",
          lambda s: doc_compare("frozenlake", s),
          lambda m: {"DoC > RCSL + 0.15": m["doc_achieved"] > m["rcsl_achieved"] + 0.15,
                     "RCSL < 0.4": m["rcsl_achieved"] < 0.4,
                     "promise < achieved": m["doc_promise"] < m["doc_achieved"]},
          lambda m: m["doc_achieved"] - m["rcsl_achieved"] - 0.15, "DoC - RCSL - 0.15"),
    Claim("contrastive_state", 7, "Contrastive features recover the state; reconstruction does not",
          T + "test_offline_repr.py::test_contrastive_features_recover_the_state_and_reconstruction_does_not",
          representations(),
          lambda m: {"contrastive > 0.8": m["contrastive"] > 0.8, "autoencoder < 0.25": m["autoencoder"] < 0.25},
          lambda m: m["contrastive"] - 0.8, "contrastive probe accuracy - 0.8"),
    Claim("exogenous_noise", 7, "Persistent exogenous noise also fools the contrastive objective",
          T + "test_offline_repr.py::test_exogenous_noise_also_fools_the_contrastive_objective",
          representations(noise_corr=0.95, steps=300),
          lambda m: {"contrastive < 0.3": m["contrastive"] < 0.3},
          lambda m: 0.3 - m["contrastive"], "0.3 - contrastive probe accuracy"),
]


# ================================================================= running and reporting
@dataclass
class Outcome:
    claim: Claim
    passed: list[bool] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    failed: dict[str, list[int]] = field(default_factory=dict)  # condition -> seeds where it failed
    across: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0
    per_seed: bool = True  # False: the test asserts only across seeds (a mean), no per-seed rate


RESULTS: dict[tuple[str, str], Outcome] = {}  # (claim key, seed range) -> outcome


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


TABLE_HEAD = ["| ch. | claim | mirrored test | pass rate | margin (key inequality) | mean +- sd | min | s |",
              "|---|---|---|---|---|---|---|---|"]


def _previous_sections() -> dict[str, list[str]]:
    """The lines of the report's section for each seed range (an older report, written before
    there were two ranges, is all development range)."""
    if not REPORT.exists():
        return {}
    sections, current = {}, "development"
    for line in REPORT.read_text().splitlines():
        for name, title in RANGE_TITLES.items():
            if line == f"## {title}":
                current = name
        sections.setdefault(current, []).append(line)
    return sections


def _section(name: str, previous: list[str]) -> tuple[list[str], list[str], float]:
    rows, notes = [], []
    for c in CLAIMS:
        o = RESULTS.get((c.key, name))
        test = c.mirrors.removeprefix(T)
        if o is None:  # keep the row (and notes) of an earlier sweep, if there is one
            row = next((l for l in previous if f"| `{test}` |" in l), None)
            rows.append(row or f"| {c.chapter} | {c.claim} | `{test}` | not run | {c.margin_label} | | | |")
            notes += [l for l in previous if l.startswith(f"- `{c.key}` ")]
        else:
            m = np.array(o.margins, dtype=float)
            rate = f"{sum(o.passed)}/{len(o.passed)}"
            if sum(o.passed) < MIN_PASS:
                rate = f"**{rate}**"
            if not o.per_seed:
                rate = "across seeds: " + ("holds" if all(o.across.values()) else "**fails**")
            rows.append(f"| {c.chapter} | {c.claim} | `{test}` | {rate} | {c.margin_label} | "
                        f"{_fmt(m.mean())} +- {_fmt(m.std(ddof=1))} | {_fmt(m.min())} | {o.seconds:.0f} |")
            seeds = RANGES[name]
            if o.failed:
                notes.append(f"- `{c.key}` failing seeds by assertion: "
                             + ", ".join(f"{k}: seeds {v}" for k, v in o.failed.items()))
            for k, ok in o.across.items():
                notes.append(f"- `{c.key}` across all {len(seeds)} seeds: {k}: "
                             f"{'holds' if ok else '**fails**'}")
        reason = c.xfail if name == "development" else c.xfail_held_out
        if reason:
            notes.append(f"- xfail `{c.key}` (below {MIN_PASS}/10 at the test's budget, "
                         f"nothing loosened): {reason}")
    seconds = sum(float(r.rsplit("|", 2)[1].strip() or 0) for r in rows)
    return rows, notes, seconds


def write_report() -> None:
    """Rewrite benchmarks/claims.md: for each seed range, the claims measured in this session
    and the rows of an earlier sweep for the others (so one claim can be re-run with ``-k``)."""
    previous = _previous_sections()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body, total = [], 0.0
    for name in RANGES:
        rows, notes, seconds = _section(name, previous.get(name, []))
        total += seconds
        body += ["", f"## {RANGE_TITLES[name]}", "", f"{seconds:.0f} s for the claims run on this range.",
                 "", *TABLE_HEAD, *rows]
        if notes:
            body += ["", "Notes:", "", *notes]
    lines = [
        "# Claims over 10 seeds, on two seed ranges",
        "",
        f"Produced by `{COMMAND}` (tests/test_claims_slow.py), last written {now}: "
        f"{os.cpu_count()} CPU cores ({platform.machine()}), Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread(s) as in the test suite, "
        f"run at `nice -n 19` on a machine shared with other jobs; {total:.0f} s in all "
        "(column s: seconds per claim; a run shared by several claims counts where first used; "
        "a row keeps the seconds of the sweep that wrote it).",
        "",
        "Each row re-runs one claim test of the book with ten seeds, calling the same experiment "
        "function with the same budget and the same assertions and margins as the mirrored test. "
        "A seed passes when every assertion of the test holds for it. "
        f"The slow test asserts a pass rate of at least {MIN_PASS}/10 (and the test's across-seed "
        "assertions, if any); a claim below that is marked xfail with its measured rate. "
        "Two ranges: seeds 0-9, on which the claims were developed, and ten seeds drawn once at "
        "random and never used while developing (`HELD_OUT_SEEDS`), which is what a reader's own "
        "seeds would show. **CI runs only the 3-seed versions** (the `slow` marker is deselected "
        "by `-m 'not slow'` in pyproject.toml).",
        "",
        "Margin: the slack of the claim's key inequality in the units of the measured quantity "
        "(positive: it holds); mean +- standard deviation and minimum over the 10 seeds.",
        *body,
    ]
    REPORT.write_text("\n".join(lines) + "\n")


def _params():
    for c in CLAIMS:
        for name in RANGES:
            reason = c.xfail if name == "development" else c.xfail_held_out
            marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
            yield pytest.param(c, name, id=f"{c.key}-{name}", marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("claim, seed_range", list(_params()))
def test_claim_holds_for_most_seeds(claim: Claim, seed_range: str):
    start = time.time()
    out = Outcome(claim)
    measured = []
    for seed in RANGES[seed_range]:
        m = claim.measure(seed)
        measured.append(m)
        checks = claim.checks(m)
        out.per_seed = bool(checks)
        out.passed.append(all(checks.values()))
        out.margins.append(float(claim.margin(m)))
        for name, ok in checks.items():
            if not ok:
                out.failed.setdefault(name, []).append(seed)
    if claim.across_seeds:
        out.across = {k: bool(v) for k, v in claim.across_seeds(measured).items()}
    out.seconds = time.time() - start
    RESULTS[(claim.key, seed_range)] = out
    write_report()
    print(claim.key, seed_range, f"{sum(out.passed)}/10", np.round(out.margins, 4).tolist(), out.failed,
          out.across, f"{out.seconds:.0f}s", file=sys.stderr)
    assert sum(out.passed) >= MIN_PASS, (f"{sum(out.passed)}/10 seeds", out.failed)
    assert all(out.across.values()), out.across


def test_registry_mirrors_existing_tests():
    """Every mirrored test exists (so a renamed claim test cannot silently drop out)."""
    for c in CLAIMS:
        path, name = c.mirrors.split("::")
        src = (ROOT / path).read_text()
        assert f"def {name.split('[')[0]}(" in src, c.mirrors
    assert len({c.key for c in CLAIMS}) == len(CLAIMS)
    for c in CLAIMS:  # a "|" would split a cell of the report's markdown table
        assert "|" not in c.claim + c.margin_label, c.key
