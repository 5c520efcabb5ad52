"""The tiny GPT: shapes, causal masking, log-probabilities, sampling, tokenizer errors."""

import pytest
import torch

from minimal.core.config import ConfigError
from minimal.core.gpt import GPT, CharTokenizer, GPTConfig


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=16)).eval()


def test_shapes(model):
    idx = torch.randint(11, (3, 7))
    logits, loss = model(idx)
    assert logits.shape == (3, 7, 11) and loss is None
    logits, loss = model(idx, idx)
    assert loss.shape == () and torch.isfinite(loss)
    assert model.hidden(idx).shape == (3, 7, 16)
    assert model.token_logprobs(idx).shape == (3, 6)


def test_future_tokens_cannot_change_earlier_logits(model):
    idx = torch.randint(11, (2, 10))
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11
    before, after = model(idx)[0], model(changed)[0]
    assert torch.allclose(before[:, :6], after[:, :6], atol=1e-6)
    assert not torch.allclose(before[:, 6:], after[:, 6:])  # the mask is not hiding everything


def test_token_logprobs_match_the_loss(model):
    idx = torch.randint(11, (4, 9))
    _, loss = model(idx[:, :-1], idx[:, 1:])
    assert torch.allclose(-model.token_logprobs(idx).mean(), loss, atol=1e-5)


def test_generate_is_repeatable_and_greedy_is_argmax(model):
    prompt = torch.zeros(2, 1, dtype=torch.long)
    a = model.generate(prompt, 15, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = model.generate(prompt, 15, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 16) and torch.equal(a, b)  # longer than block_size: context is cropped
    greedy = model.generate(prompt, 1, temperature=0)
    assert greedy[0, 1] == model(prompt)[0][0, -1].argmax()
    top1 = model.generate(prompt, 1, temperature=1.0, top_k=1, generator=torch.Generator())
    assert torch.equal(top1, greedy)


def test_bad_inputs_are_named(model):
    with pytest.raises(ValueError, match="exceeds block_size 12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 2, temperature=-1)
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 11\]"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 2, top_k=20)
    with pytest.raises(ConfigError, match="not divisible by n_head = 3"):
        GPTConfig(vocab_size=5, n_embd=16, n_head=3)


def test_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer("hello world")
    assert tok.decode(tok.encode("hold")) == "hold"
    with pytest.raises(ValueError, match=r"\['z'\] are not in the tokenizer's alphabet"):
        tok.encode("zoo")
