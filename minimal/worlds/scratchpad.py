"""Addition with a written scratchpad: chapter 2's variable-length reasoning task (no learning here).

The prompt is the one of :mod:`minimal.worlds.addition` (two ``d``-digit operands with leading
zeros, ``"023+045="``), but the response *works the sum out in writing* before it answers.
For each column ``i`` of the operands, least significant first, it writes five digits and a
bar: the two operand digits, the carry in, the column's sum digit and the carry out
(``a_i b_i c_i s_i c_{i+1}|``, with ``a_i + b_i + c_i = s_i + 10 c_{i+1}``); then ``>``,
the answer reversed as in the addition task, and the end token ``$``::

    prompt "023+045="   response "35080|24060|>86$"          (23 + 45 = 68)
    prompt "099+001="   response "91001|90101|>001$"         (99 + 1 = 100)

A problem of level ``n`` (operands of ``n`` digits) has ``n`` columns, so its correct response
is ``7 n + 2`` tokens long, or ``7 n + 3`` when the last column carries: 9 to 10 tokens at
level 1, 37 to 38 at level 5.  The response budget (:func:`response_len`) is ``7 d + 4``
tokens, one more than the longest correct response, so a response that writes a column too
many at the top level, or never writes ``$``, is cut off (*truncated*,
:func:`response_mask`).

The demonstrations that the SFT warm-up imitates come in two styles: a quarter of them
(:data:`VERBOSE_SHARE`) write one more column, for the final carry, even when it is 0
(``"35080|24060|00000|>86$"``).  That style fits the budget below the top level ``d`` and
overflows it at level ``d``, where the demonstration is cut at the budget: as when
reasoning traces of an SFT corpus are longer than the RL context, the warm-up policy
sometimes writes responses that the length limit truncates, and its length varies across
samples of one prompt, not only with the level.

The verifier (eq. ``verifiable-reward``) checks the **format and the final answer only**, never
the scratchpad's arithmetic: ``r(x, y) = 1`` when the response is zero or more five-digit
columns each closed by ``|``, then ``>``, then exactly the reversed sum, then ``$`` within
the budget; otherwise 0.  A policy is therefore free to write a wrong column and still answer
right, or to shorten its scratchpad; only the answer is rewarded, as in reasoning RL at scale.

Why the switches of chapter 2 become measurable on this task and not on plain addition (whose
answers are 2 to 4 tokens of nearly equal length, never truncated):

* **loss aggregation** (eq. ``loss-aggregation``): responses are 9 to 38 tokens long (5
  digits), their length grows with the level and varies between samples of one prompt,
  so averaging per sequence or over all tokens weighs a long hard failure and a short easy
  success very differently;
* **overlong filtering and length penalties**: the budget is tight, so a response that rambles
  (the verbose style at the top level, a missing ``$``) is truncated; the truncation rate is
  a real quantity that filtering and penalties can change;
* **clip-higher**: with tens of sampled tokens per response, the entropy of the policy over a
  response (``sampled_entropy``) is measurable and can collapse or be kept;
* **response length**: the verifier does not reward the scratchpad, so its length may drift
  during RL, and the length's mean and spread over training are worth plotting;
* **difficulty spread**: the chance of a whole response being right falls with its length, so
  after a weak SFT warm-up the levels 1 to ``d`` span success rates from high to low (the
  slow test of ``tests/test_reasoning_scratchpad.py`` measures them), the prompt pool a
  curriculum needs.

Same interface as :mod:`minimal.worlds.addition` (``sample_problems``, ``held_out``,
``verify``, ``reward``, ``sample``, ``accuracy``, ``pass_at_k``), so the trainers choose the task
with one config field, ``task="scratchpad"`` (:mod:`minimal.sft`, :mod:`minimal.grpo`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from minimal.core.gpt import GPT, CharTokenizer
from minimal.core.rl import pass_at_k_from_counts

# ------------------------------------------------------------------ the format
# The addition alphabet, then the answer mark ">" and the column separator "|", which sort
# after "=": the first thirteen ids are those of the addition task (digits, "+", "=", "$").
TOKENIZER = CharTokenizer("0123456789+=$>|")
END = TOKENIZER.stoi["$"]  # end of the response; also pads after it
ZERO = TOKENIZER.stoi["0"]  # digit d has token id ZERO + d
#: a well-formed response: five-digit columns each closed by "|", ">", the answer digits, "$"
FORMAT = re.compile(r"((?:\d{5}\|)*)>(\d+)\$")


#: Share of the demonstrations (SFT targets) written in the verbose style of :func:`scratchpad`.
VERBOSE_SHARE = 0.25


def prompt_len(digits: int) -> int:
    """Tokens in a prompt ``a+b=`` with two ``digits``-wide operands."""
    return 2 * digits + 2


def response_len(digits: int) -> int:
    """Room for the longest correct response: ``d`` columns of 6 tokens, ``>``, ``d + 1``
    answer digits and ``$``, i.e. ``7 d + 3``, plus one spare token (so that an answer one
    digit too long is wrong, not truncated)."""
    return 7 * digits + 4


def scratchpad(a: int, b: int, verbose: bool = False) -> str:
    """The correct response to ``a + b``: one column per digit of ``max(a, b)``, then the answer.

    ``verbose`` writes one more column, for the final carry, even when it is 0 (the last
    column is then ``0 0 c c 0``): six tokens longer, and the same answer.
    """
    n = max(len(str(a)), len(str(b))) + int(verbose)
    columns, carry, answer = [], 0, []
    for i in range(n):
        x, y = a // 10 ** i % 10, b // 10 ** i % 10
        s, out = (x + y + carry) % 10, (x + y + carry) // 10
        columns.append(f"{x}{y}{carry}{s}{out}|")
        answer.append(str(s))
        carry = out
    if carry:
        answer.append("1")
    while verbose and len(answer) > 1 and answer[-1] == "0":  # the extra column's 0 is no digit
        answer.pop()
    return "".join(columns) + ">" + "".join(answer) + "$"


def _check_digits(digits: int, levels) -> None:
    if not isinstance(digits, int) or not 1 <= digits <= 6:
        raise ValueError(f"digits must be an int in 1..6, got {digits!r}")
    bad = [n for n in levels if not 1 <= n <= digits]
    if not levels or bad:
        raise ValueError(f"difficulty levels {list(levels)!r} must be non-empty and in 1..{digits}")


@dataclass
class Problems:
    """A batch of problems: operands, prompt tokens and target responses (the fields of
    :class:`minimal.worlds.addition.Problems`, so the trainers read both alike)."""

    a: torch.Tensor  # (N,) first operand
    b: torch.Tensor  # (N,) second operand
    level: torch.Tensor  # (N,) number of digits of the operands (difficulty)
    prompts: torch.Tensor  # (N, 2d+2) token ids of "a+b="
    targets: torch.Tensor  # (N, 7d+4) the written scratchpad, then "$" repeated as padding
    target_len: torch.Tensor  # (N,) tokens of the scratchpad, its "$" included (if it fits)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, idx) -> "Problems":
        return Problems(self.a[idx], self.b[idx], self.level[idx], self.prompts[idx],
                        self.targets[idx], self.target_len[idx])


def encode_problems(a: torch.Tensor, b: torch.Tensor, digits: int,
                    level: torch.Tensor | None = None,
                    verbose: torch.Tensor | None = None) -> Problems:
    """Prompts as in the addition task; targets are the written scratchpads, padded with ``$``.

    ``verbose`` (N,) bool marks the demonstrations written in the verbose style; those longer
    than the budget are cut at it, without their ``$`` (a truncated demonstration).
    """
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"operands must be 1-d and of equal shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if (a < 0).any() or (b < 0).any() or (a >= 10 ** digits).any() or (b >= 10 ** digits).any():
        raise ValueError(f"operands must be in 0..{10 ** digits - 1} for digits={digits}")
    place = 10 ** torch.arange(digits - 1, -1, -1)  # (d,) most significant first
    plus = torch.full_like(a, TOKENIZER.stoi["+"]).unsqueeze(1)
    eq = torch.full_like(a, TOKENIZER.stoi["="]).unsqueeze(1)
    prompts = torch.cat([ZERO + a.unsqueeze(1) // place % 10, plus,
                         ZERO + b.unsqueeze(1) // place % 10, eq], dim=1)  # (N, 2d+2)
    if level is None:  # digits of the larger operand
        level = torch.clamp((torch.maximum(a, b).unsqueeze(1) >= 10 ** torch.arange(1, digits))
                            .sum(1) + 1, min=1)
    L = response_len(digits)
    verbose = torch.zeros(len(a), dtype=torch.bool) if verbose is None else verbose
    texts = [scratchpad(x, y, v)[:L] for x, y, v in zip(a.tolist(), b.tolist(), verbose.tolist())]
    targets = torch.full((len(a), L), END, dtype=torch.long)
    for row, text in zip(targets, texts):
        row[: len(text)] = torch.tensor(TOKENIZER.encode(text))
    target_len = torch.tensor([len(t) for t in texts], dtype=torch.long)
    return Problems(a, b, level, prompts, targets, target_len)


def sample_problems(n: int, digits: int, levels=None, gen: torch.Generator | None = None,
                    verbose_share: float | None = None) -> Problems:
    """``n`` problems, each at a level (operand digits) drawn uniformly from ``levels``, as
    :func:`minimal.worlds.addition.sample_problems` draws them (the same operands from the
    same generator); then each is demonstrated in the verbose style with probability
    ``verbose_share`` (default :data:`VERBOSE_SHARE`)."""
    levels = tuple(range(1, digits + 1)) if levels is None else tuple(levels)
    _check_digits(digits, levels)
    lv = torch.tensor(levels)[torch.randint(len(levels), (n,), generator=gen)]  # (n,)
    lo = torch.where(lv == 1, 0, 10 ** (lv - 1))  # smallest operand with that many digits
    hi = 10 ** lv  # one past the largest
    a = lo + (torch.rand(n, generator=gen) * (hi - lo)).long()
    b = lo + (torch.rand(n, generator=gen) * (hi - lo)).long()
    verbose_share = VERBOSE_SHARE if verbose_share is None else verbose_share
    verbose = torch.rand(n, generator=gen) < verbose_share  # (n,)
    return encode_problems(a, b, digits, lv, verbose)


def held_out(n: int, digits: int, levels=None, seed: int = 12345) -> Problems:
    """A fixed evaluation set, drawn with its own seed (never the training seed)."""
    return sample_problems(n, digits, levels, torch.Generator().manual_seed(seed))


# -------------------------------------------------------------- the verifier
def response_mask(responses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which response tokens count (up to and including the first ``$``), and which
    responses never wrote ``$`` (*truncated* by the budget), as in the addition task."""
    is_end = responses == END  # (N, L)
    ended_before = (is_end.cumsum(1) - is_end.long()) > 0  # (N, L) a "$" earlier in the row
    return ~ended_before, ~is_end.any(1)


def _texts(responses: torch.Tensor) -> list[str]:
    return [TOKENIZER.decode(row) for row in responses.tolist()]


def verify(responses: torch.Tensor, problems: Problems) -> torch.Tensor:
    """Eq. ``verifiable-reward``: 1.0 where the response is well formed and its answer (after
    ``>``) is exactly the reversed sum; the columns of the scratchpad are not checked."""
    if responses.shape != problems.targets.shape:
        raise ValueError(f"responses have shape {tuple(responses.shape)}, targets "
                         f"{tuple(problems.targets.shape)}")
    out = []
    for text, s in zip(_texts(responses), (problems.a + problems.b).tolist()):
        m = FORMAT.match(text)
        out.append(float(m is not None and m.group(2) == str(s)[::-1]))
    return torch.tensor(out)


def well_formed(responses: torch.Tensor) -> torch.Tensor:
    """1.0 where the response has the format (columns, ``>``, digits, ``$``), right or wrong."""
    return torch.tensor([float(FORMAT.match(t) is not None) for t in _texts(responses)])


def reward(responses: torch.Tensor, problems: Problems, format_coef: float = 0.0,
           length_coef: float = 0.0) -> torch.Tensor:
    """Correctness, plus ``format_coef`` x well-formed, minus ``length_coef`` x response tokens
    (the reward of :func:`minimal.worlds.addition.reward`, with this task's verifier)."""
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
    """Sample one response per prompt row, all rows at once: (N, 2d+2) -> (N, 7d+4) tokens."""
    return model.sample_responses(prompts, response_len(digits), gen, temperature)


@torch.no_grad()
def accuracy(model: GPT, problems: Problems, digits: int, seed: int = 0,
             temperature: float = 1.0, by_level: bool = False):
    """Mean verifier reward on ``problems`` (pass@1); ``by_level`` also returns it per level."""
    gen = torch.Generator().manual_seed(seed)
    correct = verify(sample(model, problems.prompts, digits, gen, temperature), problems)
    if not by_level:
        return correct.mean().item()
    levels = problems.level.unique().tolist()
    return correct.mean().item(), {n: correct[problems.level == n].mean().item() for n in levels}


@torch.no_grad()
def pass_at_k(model: GPT, problems: Problems, digits: int, ks=(1, 2, 4, 8), n: int = 8,
              seed: int = 0) -> dict[int, float]:
    """Chance that one of ``k`` samples is right: the unbiased estimator of
    :func:`minimal.worlds.addition.pass_at_k`, with this task's sampler and verifier."""
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
