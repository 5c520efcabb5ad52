"""The shared training loop: determinism, atomic checkpoints, exact resume, presets, CLI."""

import pytest
import torch

from minimal import char_lm
from minimal.char_lm import CharLMConfig, random_windows, train_char_lm
from minimal.core.gpt import GPT, GPTConfig
from minimal.core.train import History, load_checkpoint, lr_at, save_checkpoint, train

DATA = torch.arange(200) % 13  # a periodic "text" of 13 symbols


def run(cfg: CharLMConfig, crash_at: int | None = None):
    """Train a small GPT (dropout on, so the torch RNG matters); optionally crash mid-run."""
    torch.manual_seed(cfg.seed)
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1))
    calls = {"n": 0}

    def get_batch(gen):
        calls["n"] += 1
        if crash_at is not None and calls["n"] == crash_at:
            raise KeyboardInterrupt("simulated crash")
        return random_windows(DATA, 8, 4, gen)

    def loss_fn(model, batch):
        return model(*batch)[1], {}

    history = train(model, cfg, get_batch, loss_fn)
    return model, history


def small_cfg(**overrides):
    base = dict(steps=12, warmup_steps=2, log_every=1, progress=False, lr=1e-2)
    return CharLMConfig(**{**base, **overrides})


def test_same_seed_gives_identical_numbers():
    (m1, h1), (m2, h2) = run(small_cfg()), run(small_cfg())
    assert h1.metrics["loss"] == h2.metrics["loss"]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    _, h3 = run(small_cfg(seed=1))
    assert h3.metrics["loss"] != h1.metrics["loss"]


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path):
    straight, h_straight = run(small_cfg())
    cfg = small_cfg(ckpt_dir=str(tmp_path), ckpt_every=4)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, crash_at=11)  # dies during step 11, after the step-8 checkpoint
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 8
    resumed, h_resumed = run(cfg.replace(resume=True))
    assert h_resumed.steps == list(range(1, 13))
    assert h_resumed.metrics["loss"] == h_straight.metrics["loss"]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_crash_while_writing_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})

    def broken_save(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    assert load_checkpoint(path)["step"] == 1


def test_checkpoints_load_with_weights_only(tmp_path):
    _, _ = run(small_cfg(ckpt_dir=str(tmp_path), ckpt_every=6))
    state = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert state["step"] == 12 and set(state) >= {"model", "optimizer", "data_rng", "torch_rng"}
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = small_cfg(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.01)


def test_a_diverging_loss_is_an_error():
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16))

    def loss_fn(model, batch):
        return model(*batch)[1] * float("nan"), {}

    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        train(model, small_cfg(), lambda g: random_windows(DATA, 8, 4, g), loss_fn)


def test_laptop_preset_learns(tiny_lm_overrides):
    cfg = CharLMConfig.from_preset("laptop", **{**tiny_lm_overrides, "steps": 60, "n_embd": 32})
    result = train_char_lm(cfg)
    assert isinstance(result.history, History)
    first, last = result.history.metrics["loss"][0], result.history.last("loss")
    assert last < first - 0.8  # from about log(35) = 3.6 nats down by at least 0.8


def test_gpu_preset_smoke_runs_on_cpu_with_bf16_and_checkpoints(tmp_path, tiny_lm_overrides, capsys):
    overrides = {**tiny_lm_overrides, "ckpt_dir": str(tmp_path), "ckpt_every": 3}
    argv = ["--preset", "gpu", "--set"] + [f"{k}={v}" for k, v in overrides.items()]
    char_lm.main(argv)  # keeps the preset's dtype=bfloat16: autocast runs on CPU too
    out = capsys.readouterr().out
    assert "val loss" in out and "sample:" in out
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 6


def test_missing_corpus_and_absent_cuda_are_named(tmp_path, tiny_lm_overrides):
    with pytest.raises(FileNotFoundError, match="corpus file not found: .*nope.txt"):
        train_char_lm(CharLMConfig(**{**tiny_lm_overrides, "corpus": str(tmp_path / "nope.txt")}))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="device = 'cuda' but torch.cuda.is_available"):
            train_char_lm(CharLMConfig(**{**tiny_lm_overrides, "device": "cuda"}))


def test_resume_with_a_different_config_is_a_clear_error(tmp_path):
    cfg = small_cfg(ckpt_dir=str(tmp_path), ckpt_every=4)
    run(cfg)
    assert load_checkpoint(tmp_path / "latest.pt")["config"]["lr"] == cfg.lr
    with pytest.raises(ValueError, match=r"different config \(lr: 0.01 -> 0.001\)"):
        run(cfg.replace(resume=True, lr=1e-3))
    with pytest.raises(ValueError, match=f"is at step {cfg.steps}, past steps = {cfg.steps - 1}"):
        run(cfg.replace(resume=True, steps=cfg.steps - 1))
    state = load_checkpoint(tmp_path / "latest.pt")
    save_checkpoint(tmp_path / "latest.pt", {**state, "format": 0})
    with pytest.raises(ValueError, match="checkpoint format 0, expected 1"):
        run(cfg.replace(resume=True))


def test_a_corrupt_checkpoint_is_named(tmp_path):
    (tmp_path / "latest.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"checkpoint .*latest.pt is corrupt"):
        load_checkpoint(tmp_path / "latest.pt")
