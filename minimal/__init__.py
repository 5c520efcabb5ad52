"""minimal: the readable implementations that accompany the book.

One module per idea, in three layers.  To find the code for an equation, look up its
chapter below; every module's docstring lists the equation labels it implements.

``minimal.core``: shared by every chapter (each docstring says which chapter introduces it)
    ``config`` (configs, presets, validation, the command line), ``train`` (the one
    training loop, checkpoints and exact resume), ``distributed`` (the same loop under
    torchrun: DDP, one share of each batch per process), ``gpt`` (the tiny GPT: token
    log-probabilities and generation), ``rl`` (GAE, group advantages, the clipped
    surrogate, the KL estimators k1 and k3), ``preference_losses`` (Bradley-Terry, DPO,
    IPO), ``tabular`` (dynamic programming on a known MDP), ``env_snapshot`` (gymnasium
    state in checkpoints), ``seeding``, ``report`` (printing bounds, not noise).

``minimal.worlds``: environments, tasks and datasets; nothing in here learns
    ``gridworld`` (ch. 1, 4), ``addition`` (ch. 2: prompts, verifier, pass@k),
    ``scratchpad`` (ch. 2: addition worked out in writing, variable-length responses),
    ``letters`` (ch. 3: gold reward, raters, pi_ref, preference pairs), ``icl_tasks``
    (ch. 5: the urns and their exact Bayesian predictors), ``bandits`` (ch. 6),
    ``offline_envs`` (ch. 7: the lucky bandit and slippery FrozenLake, with offline data).

``minimal.<algorithm>``: the methods, by chapter; those with a ``main`` run as
``python -m minimal.<module> --preset laptop`` (``python -m minimal`` lists them)
    1. RL basics: ``core.tabular`` (value and policy iteration, Q-learning),
       ``policy_gradient`` (REINFORCE, PPO on gymnasium), ``token_mdp`` (the token MDP
       of a language model, exactly), ``char_lm`` (the tiny GPT as a character LM).
    2. RL for LLM reasoning: ``sft`` (the warm-up), ``grpo`` (GRPO, Lite PPO, Dr. GRPO,
       RLOO, DAPO, REINFORCE with a group baseline), ``prompt_curriculum`` (PCL),
       ``reasoning_study`` (the recipe ablation and the curriculum study, each a preset
       that writes a results file).
    3. Inverse RL for alignment: ``reward_model``, ``dpo`` (DPO, IPO), ``rlhf_ppo``,
       ``preference_bandit`` (closed form, Bradley-Terry, Nash self-play, on-policy vs
       offline), ``delta_learning``, ``directional_stimulus`` (DSP as a bandit over hints).
    4. Regret preferences: ``preferences`` (segments, partial return vs regret),
       ``reward_learning``, ``cpl``.
    5. ICL as rational inference: ``icl_training``, ``hierarchical_bayes``,
       ``rational_choice``.
    6. In-context decision making: ``bandit_algorithms`` (UCB, Thompson sampling, regret),
       ``dpt``, ``algorithm_distillation``, ``steering``.
    7. Representations and offline RL: ``return_conditioning`` (RCSL),
       ``dichotomy_of_control`` (DoC), ``contrastive_repr``.

No algorithm module imports another chapter's algorithm module: what two chapters share
lives in ``core`` or ``worlds``.
"""

import re
from importlib.metadata import version as _installed_version
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _version() -> str:
    """This code's release: pyproject.toml's in a source checkout, else the installed package's.

    The checkout comes first so that an editable or stale install elsewhere cannot misreport
    the code that was actually imported; the notebooks' Colab cell compares it with the
    release it installed (``tools/colab_cell.py``).
    """
    pyproject = _HERE.parent / "pyproject.toml"
    if pyproject.is_file():
        found = re.search(r'^name = "rl-lm-book-minimal"$.*?^version = "([^"]+)"$',
                          pyproject.read_text(), re.M | re.S)
        if found:
            return found.group(1)
    return _installed_version("rl-lm-book-minimal")


__version__ = _version()


def asset_path(name: str) -> Path:
    """Path of a shipped data file: ``assets/`` in a checkout, ``minimal/assets`` when installed."""
    for folder in (_HERE.parent / "assets", _HERE / "assets"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"asset {name!r} not found in {_HERE.parent / 'assets'} "
                            f"or {_HERE / 'assets'}")
