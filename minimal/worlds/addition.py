"""The addition task with a rule-based verifier: chapter 2's world (no learning in here).

The task family of chapter 2 ("RL for LLM reasoning"), read top to bottom:
tokenizer and prompt format, a sampler with adjustable difficulty, the
verifier (eq. ``verifiable-reward``), and batched sampling and scoring of a
model's responses (accuracy, pass@k).  The supervised warm-up that gives the
tiny GPT a weak but non-zero accuracy is :mod:`minimal.sft`.

A prompt adds two ``d``-digit numbers written with leading zeros, and the
answer is the sum written **least significant digit first** and closed by
the end token ``$``::

    prompt  "023+045="      response "86$"       (23 + 45 = 68)
    prompt  "099+001="      response "001$"      (99 + 1 = 100)

Reversing the digits lets a left-to-right model produce each digit after the
digits that determine its carry, the usual trick that makes addition learnable
by very small transformers.  The difficulty of a prompt is the number of
digits of its operands (1 to ``d``) and the carries they cause.

The reward is the verifier's verdict (eq. ``verifiable-reward``):
``r(x, y) = 1`` if the response is exactly the reversed sum followed by ``$``,
otherwise 0 (plus an optional small format reward for a well-formed answer).

The trainers that use it: :mod:`minimal.sft`, :mod:`minimal.grpo`,
:mod:`minimal.prompt_curriculum`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minimal.core.gpt import GPT, CharTokenizer
from minimal.core.rl import pass_at_k_from_counts

# ------------------------------------------------------------------ the format
TOKENIZER = CharTokenizer("0123456789+=$")
END = TOKENIZER.stoi["$"]  # end-of-answer token; also pads after the end
ZERO = TOKENIZER.stoi["0"]  # digit d has token id ZERO + d


def prompt_len(digits: int) -> int:
    """Tokens in a prompt ``a+b=`` with two ``digits``-wide operands."""
    return 2 * digits + 2


def response_len(digits: int) -> int:
    """Room for the longest answer (``digits + 1`` sum digits, then ``$``) plus one spare token.

    The spare token lets a response run past the answer, so that "overlong"
    (no ``$`` in time) is a possible outcome, as in the long-answer regime.
    """
    return digits + 3


def _check_digits(digits: int, levels) -> None:
    if not isinstance(digits, int) or not 1 <= digits <= 6:
        raise ValueError(f"digits must be an int in 1..6, got {digits!r}")
    bad = [n for n in levels if not 1 <= n <= digits]
    if not levels or bad:
        raise ValueError(f"difficulty levels {list(levels)!r} must be non-empty and in 1..{digits}")


@dataclass
class Problems:
    """A batch of addition problems: operands, prompt tokens and target responses."""

    a: torch.Tensor  # (N,) first operand
    b: torch.Tensor  # (N,) second operand
    level: torch.Tensor  # (N,) number of digits of the operands (difficulty)
    prompts: torch.Tensor  # (N, 2D+2) token ids of "a+b="
    targets: torch.Tensor  # (N, d+3) reversed sum, then "$" repeated as padding
    target_len: torch.Tensor  # (N,) answer digits + 1 (the end token)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, idx) -> "Problems":
        return Problems(self.a[idx], self.b[idx], self.level[idx], self.prompts[idx],
                        self.targets[idx], self.target_len[idx])


def encode_problems(a: torch.Tensor, b: torch.Tensor, digits: int,
                    level: torch.Tensor | None = None) -> Problems:
    """Token ids of prompts and reversed-sum targets for operands ``a`` and ``b``, vectorised."""
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"operands must be 1-d and of equal shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if (a < 0).any() or (b < 0).any() or (a >= 10 ** digits).any() or (b >= 10 ** digits).any():
        raise ValueError(f"operands must be in 0..{10 ** digits - 1} for digits={digits}")
    place = 10 ** torch.arange(digits - 1, -1, -1)  # (d,) most significant first
    plus = torch.full_like(a, TOKENIZER.stoi["+"]).unsqueeze(1)
    eq = torch.full_like(a, TOKENIZER.stoi["="]).unsqueeze(1)
    prompts = torch.cat([ZERO + a.unsqueeze(1) // place % 10, plus,
                         ZERO + b.unsqueeze(1) // place % 10, eq], dim=1)  # (N, 2D+2)
    s = a + b
    rev = s.unsqueeze(1) // 10 ** torch.arange(digits + 1) % 10  # (N, d+1) least significant first
    n_sum = torch.clamp((s.unsqueeze(1) >= 10 ** torch.arange(1, digits + 1)).sum(1) + 1, min=1)
    L = response_len(digits)
    pos = torch.arange(L).unsqueeze(0)  # (1, L)
    targets = torch.full((len(a), L), END, dtype=torch.long)
    targets[:, : digits + 1] = ZERO + rev
    targets[pos >= n_sum.unsqueeze(1)] = END  # "$" closes the answer, and pads
    if level is None:
        level = torch.clamp((torch.maximum(a, b).unsqueeze(1) >= 10 ** torch.arange(1, digits))
                            .sum(1) + 1, min=1)
    return Problems(a, b, level, prompts, targets, n_sum + 1)


def sample_problems(n: int, digits: int, levels=None, gen: torch.Generator | None = None) -> Problems:
    """``n`` problems; each picks a difficulty level (operand digits) uniformly from ``levels``."""
    levels = tuple(range(1, digits + 1)) if levels is None else tuple(levels)
    _check_digits(digits, levels)
    lv = torch.tensor(levels)[torch.randint(len(levels), (n,), generator=gen)]  # (n,)
    lo = torch.where(lv == 1, 0, 10 ** (lv - 1))  # smallest operand with that many digits
    hi = 10 ** lv  # one past the largest
    a = lo + (torch.rand(n, generator=gen) * (hi - lo)).long()
    b = lo + (torch.rand(n, generator=gen) * (hi - lo)).long()
    return encode_problems(a, b, digits, lv)


def held_out(n: int, digits: int, levels=None, seed: int = 12345) -> Problems:
    """A fixed evaluation set, drawn with its own seed (never the training seed)."""
    return sample_problems(n, digits, levels, torch.Generator().manual_seed(seed))


# -------------------------------------------------------------- the verifier
def response_mask(responses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which response tokens count, and which responses never ended.

    ``responses`` (N, L).  Returns ``mask`` (N, L), true up to and including
    the first ``$``, and ``truncated`` (N,), true where no ``$`` appeared: an
    *overlong* response, cut off by the length limit.
    """
    is_end = responses == END  # (N, L)
    ended_before = (is_end.cumsum(1) - is_end.long()) > 0  # (N, L) a "$" earlier in the row
    return ~ended_before, ~is_end.any(1)


def verify(responses: torch.Tensor, problems: Problems) -> torch.Tensor:
    """Eq. ``verifiable-reward``: 1.0 where the response is exactly the reversed sum then ``$``."""
    if responses.shape != problems.targets.shape:
        raise ValueError(f"responses have shape {tuple(responses.shape)}, targets "
                         f"{tuple(problems.targets.shape)}")
    L = responses.size(1)
    inside = torch.arange(L).unsqueeze(0) < problems.target_len.unsqueeze(1)  # (N, L)
    return ((responses == problems.targets) | ~inside).all(1).float()  # (N,)


def well_formed(responses: torch.Tensor) -> torch.Tensor:
    """1.0 where the response is one or more digits then ``$`` (right format, any value)."""
    mask, truncated = response_mask(responses)
    n_tok = mask.sum(1)  # (N,) tokens up to and including "$"
    is_digit = (responses >= ZERO) & (responses <= ZERO + 9)  # (N, L)
    digits_only = (is_digit | ~mask | (responses == END)).all(1)
    return (digits_only & ~truncated & (n_tok >= 2)).float()


def reward(responses: torch.Tensor, problems: Problems, format_coef: float = 0.0,
           length_coef: float = 0.0) -> torch.Tensor:
    """Correctness, plus ``format_coef`` x well-formed, minus ``length_coef`` x response tokens.

    The length term is the simplest *length-aware* reward (section "Response
    length"): each generated token costs ``length_coef``.
    """
    r = verify(responses, problems)
    if format_coef:
        r = r + format_coef * well_formed(responses)
    if length_coef:
        r = r - length_coef * response_mask(responses)[0].sum(1).float()
    return r


# ------------------------------------------------------------------ sampling
@torch.no_grad()
def sample(model: GPT, prompts: torch.Tensor, digits: int, gen: torch.Generator,
           temperature: float = 1.0) -> torch.Tensor:
    """Sample one response per prompt row, all rows at once: (N, 2d+2) -> (N, d+3) tokens."""
    return model.sample_responses(prompts, response_len(digits), gen, temperature)


@torch.no_grad()
def accuracy(model: GPT, problems: Problems, digits: int, seed: int = 0,
             temperature: float = 1.0, by_level: bool = False):
    """Mean verifier reward on ``problems``: the success rate of one sample (pass@1).

    With ``temperature=1`` this is the policy's expected reward, the quantity
    RL maximises; ``temperature=0`` is greedy decoding.  ``by_level`` also
    returns the accuracy at each difficulty level.
    """
    gen = torch.Generator().manual_seed(seed)
    correct = verify(sample(model, problems.prompts, digits, gen, temperature), problems)
    if not by_level:
        return correct.mean().item()
    levels = problems.level.unique().tolist()
    return correct.mean().item(), {n: correct[problems.level == n].mean().item() for n in levels}


@torch.no_grad()
def pass_at_k(model: GPT, problems: Problems, digits: int, ks=(1, 2, 4, 8), n: int = 8,
              seed: int = 0) -> dict[int, float]:
    """Chance that at least one of ``k`` samples is correct, from ``n >= k`` samples per prompt.

    Draws the samples and counts the correct ones ``c``; the unbiased estimator
    ``1 - C(n - c, k) / C(n, k)`` is :func:`minimal.core.rl.pass_at_k_from_counts`.
    """
    if not ks or max(ks) > n or min(ks) < 1:  # before any sampling
        raise ValueError(f"need 1 <= k <= n = {n} for every k, got {list(ks)}")
    N = len(problems)
    rep = problems[torch.arange(N).repeat_interleave(n)]
    gen = torch.Generator().manual_seed(seed)
    c = verify(sample(model, rep.prompts, digits, gen), rep).view(N, n).sum(1)  # (N,)
    return pass_at_k_from_counts(c, n, ks)


if __name__ == "__main__":
    from minimal.core.config import no_command_line

    no_command_line(__spec__.name)
