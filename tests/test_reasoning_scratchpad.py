"""Chapter 2's written-scratchpad task (minimal.worlds.scratchpad) and the GRPO recipes on it."""

import math

import pytest
import torch

from minimal.core.rl import leave_one_out_advantages, soft_overlong_penalty
from minimal.grpo import RECIPES, GRPOConfig, train_grpo
from minimal.sft import SFTConfig, train_sft
from minimal.worlds import addition, scratchpad
from minimal.worlds.scratchpad import (
    TOKENIZER,
    encode_problems,
    response_len,
    response_mask,
    sample_problems,
    verify,
    well_formed,
)


def encode(texts, L):
    """Responses (N, L) from strings, padded with "$"."""
    out = torch.full((len(texts), L), scratchpad.END, dtype=torch.long)
    for row, t in zip(out, texts):
        row[: len(t)] = torch.tensor(TOKENIZER.encode(t))
    return out


@pytest.mark.unit
def test_scratchpad_of_known_problems():
    assert scratchpad.scratchpad(23, 45) == "35080|24060|>86$"  # 68 reversed
    assert scratchpad.scratchpad(99, 1) == "91001|90101|>001$"  # two carries, 100 reversed
    assert scratchpad.scratchpad(0, 7) == "07070|>7$"
    assert scratchpad.scratchpad(23, 45, verbose=True) == "35080|24060|00000|>86$"
    assert scratchpad.scratchpad(99, 1, verbose=True) == "91001|90101|00110|>001$"
    assert scratchpad.scratchpad(5, 5, verbose=True) == "55001|00110|>01$"
    p = encode_problems(torch.tensor([23, 99]), torch.tensor([45, 1]), digits=3)
    assert [TOKENIZER.decode(x) for x in p.prompts] == ["023+045=", "099+001="]  # addition's
    assert TOKENIZER.decode(p.targets[0][: p.target_len[0]]) == "35080|24060|>86$"
    assert p.targets.shape == (2, response_len(3)) == (2, 25)
    assert verify(p.targets, p).tolist() == [1.0, 1.0]
    # the prompt ids are the addition task's: the shared tokens keep their ids
    assert TOKENIZER.chars[:13] == addition.TOKENIZER.chars
    assert torch.equal(p.prompts, addition.encode_problems(p.a, p.b, 3).prompts)


@pytest.mark.unit
def test_verifier_checks_format_and_final_answer_only():
    p = encode_problems(torch.tensor([23, 23, 23, 23, 23, 23]), torch.tensor([45] * 6), digits=3)
    L = response_len(3)
    texts = ["35080|24060|>86$",     # right
             "35080|24060|>87$",     # wrong answer
             "99999|24060|>86$",     # wrong column, right answer: accepted (only the answer counts)
             ">86$",                  # no scratchpad at all: accepted, well formed
             "3508|24060|>86$"]      # a column of four digits: bad format
    responses = encode(texts, L)
    cut = torch.full((1, L), TOKENIZER.stoi["0"], dtype=torch.long)  # L digits, no "$"
    responses = torch.cat([responses, cut])
    assert verify(responses, p).tolist() == [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert well_formed(responses).tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    mask, truncated = response_mask(responses)
    assert truncated.tolist() == [False] * 5 + [True]
    assert mask.sum(1).tolist() == [16, 16, 16, 4, 15, L]
    assert scratchpad.reward(responses, p, format_coef=0.1).tolist() == pytest.approx(
        [1.1, 0.1, 1.1, 1.1, 0.0, 0.0])
    with pytest.raises(ValueError, match="responses have shape"):
        verify(responses[:, :3], p)


@pytest.mark.unit
def test_lengths_grow_with_the_level_and_the_verbose_style_overflows_only_the_top_level():
    D = 5
    p = sample_problems(4000, D, gen=torch.Generator().manual_seed(0))
    same = addition.sample_problems(4000, D, gen=torch.Generator().manual_seed(0))
    assert torch.equal(p.a, same.a) and torch.equal(p.level, same.level)  # the same draws
    concise = sample_problems(4000, D, gen=torch.Generator().manual_seed(0), verbose_share=0.0)
    assert verify(concise.targets, concise).all()
    assert concise.target_len.max().item() == 7 * D + 3 == response_len(D) - 1  # the longest fits
    verbose = p.target_len != concise.target_len  # the demonstrations written verbosely
    assert abs(verbose.float().mean().item() - scratchpad.VERBOSE_SHARE) < 0.03
    truncated = response_mask(p.targets)[1]
    for n in range(1, D + 1):
        at = p.level == n
        assert set(concise.target_len[at].tolist()) == {7 * n + 2, 7 * n + 3}, n
        if n < D:  # verbose: six tokens more, still within the budget, still right
            assert set(p.target_len[at & verbose].tolist()) <= {7 * n + 8, 7 * n + 9}, n
            assert not truncated[at].any() and verify(p.targets[at], p[at]).all(), n
        else:  # at the top level the verbose demonstration is cut at the budget, without "$"
            assert (p.target_len[at & verbose] == response_len(D)).all()
            assert torch.equal(truncated[at], verbose[at])
            assert torch.equal(verify(p.targets[at], p[at]).bool(), ~verbose[at])


@pytest.mark.unit
def test_leave_one_out_advantage_equation():
    """Eq. ``rloo-advantage``: A_i = r_i - mean_{j != i} r_j = G / (G - 1) (r_i - mean r)."""
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.5, 1.0, 0.0, 1.0]])
    a = leave_one_out_advantages(r)
    assert a[0].tolist() == pytest.approx([1.0, -1 / 3, -1 / 3, -1 / 3])
    assert a[1].tolist() == pytest.approx([0.5 - 2 / 3, 1.0 - 0.5, 0.0 - 2.5 / 3, 1.0 - 0.5])
    assert torch.allclose(a, 4 / 3 * (r - r.mean(1, keepdim=True)))
    assert torch.equal(leave_one_out_advantages(torch.ones(3, 5)), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="group_size >= 2"):
        leave_one_out_advantages(torch.ones(4, 1))


@pytest.mark.unit
def test_soft_overlong_penalty_equation():
    """DAPO: 0 up to max_len - buffer, then (max_len - buffer - |y|) / buffer, -1 at the limit."""
    got = soft_overlong_penalty(torch.tensor([3, 16, 17, 18, 20, 25]), max_len=20, buffer=4)
    assert got.tolist() == pytest.approx([0.0, 0.0, -0.25, -0.5, -1.0, -1.0])
    with pytest.raises(ValueError, match="0 < buffer <= max_len"):
        soft_overlong_penalty(torch.tensor([1]), max_len=4, buffer=0)


# ------------------------------------------------------- a short run of every recipe
NEW_RECIPES = ("Dr. GRPO", "RLOO", "DAPO")
TINY_RL = dict(task="scratchpad", digits=2, steps=6, batch_size=8, group_size=4, eval_every=3,
               eval_size=40, warmup_steps=1, log_every=1, progress=False)


@pytest.fixture(scope="module")
def weak_start():
    """A short scratchpad warm-up on 2-digit sums (a few seconds)."""
    return train_sft(SFTConfig(task="scratchpad", digits=2, steps=120, seed=0, eval_size=40)).model


@pytest.mark.parametrize("name", NEW_RECIPES + ("GRPO + clip-higher",))
def test_each_new_recipe_trains_on_the_scratchpad_with_finite_metrics(name, weak_start):
    cfg = GRPOConfig(seed=0, **{**TINY_RL, **RECIPES[name]})
    res = train_grpo(cfg, weak_start)
    m = res.history.metrics
    for key in ("loss", "length", "length_std", "overlong", "sampled_entropy", "accuracy"):
        assert m[key] and all(math.isfinite(x) for x in m[key]), (name, key)
    assert 0 <= min(m["overlong"]) and max(m["overlong"]) <= 1
    assert min(m["length"]) > 5  # tens of tokens, not 2 to 4: the scratchpad is written
    assert len(res.eval_accuracy) == 3 and all(0 <= a <= 1 for a in res.eval_accuracy)
    per_batch = cfg.batch_size * cfg.group_size
    if cfg.dynamic_sampling:  # refills draw more rollouts: between 1 and 4 per batch
        n_batches = cfg.steps // cfg.updates_per_batch
        assert n_batches * per_batch <= res.samples <= 4 * n_batches * per_batch
        assert all(0 <= k <= 1 for k in m["kept_groups"])
    else:
        assert res.samples == cfg.steps // cfg.updates_per_batch * per_batch


# ------------------------------------------------ what the SFT warm-up leaves for RL (slow)
SPREAD_DIGITS, SPREAD_SFT_STEPS = 3, 450


@pytest.mark.slow
def test_weak_warm_up_spreads_levels_and_truncates_at_the_top_level():
    """After the default 450-step warm-up on 3-digit sums (seeds 0-2, 600 held-out problems,
    Intel Xeon): pass@1 at levels 1 / 2 / 3 = .843 / .605 / .284, .699 / .300 / .077,
    .787 / .511 / .253; truncated at level 3: .268 / .263 / .289, at level 1: .000 / .000 /
    .009; response length at level 1: 10.9 +- 2.7, 11.6 +- 3.5, 11.5 +- 3.6 tokens."""
    from minimal.worlds.addition import response_mask as mask_of

    test = scratchpad.held_out(600, SPREAD_DIGITS)
    for seed in (0, 1, 2):
        model = train_sft(SFTConfig(task="scratchpad", digits=SPREAD_DIGITS,
                                    steps=SPREAD_SFT_STEPS, seed=seed)).model
        _, by_level = scratchpad.accuracy(model, test, SPREAD_DIGITS, by_level=True)
        responses = scratchpad.sample(model, test.prompts, SPREAD_DIGITS,
                                      torch.Generator().manual_seed(0))
        mask, truncated = mask_of(responses)
        top, low = test.level == SPREAD_DIGITS, test.level == 1
        assert by_level[1] > 0.6 and by_level[SPREAD_DIGITS] < 0.35, (seed, by_level)
        assert by_level[1] - by_level[SPREAD_DIGITS] > 0.4, (seed, by_level)
        assert truncated[top].float().mean() > 0.15, seed  # the budget truncates
        assert truncated[low].float().mean() < 0.05, seed
        assert mask[low].sum(1).float().std() > 1.5, seed  # lengths vary across samples too
