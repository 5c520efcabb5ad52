"""Our GRPO (minimal.grpo) against TRL's GRPOTrainer on chapter 2's addition task.

    .venv/bin/pip install -r benchmarks/requirements.txt torch==2.13.0
    .venv/bin/python benchmarks/grpo_vs_trl.py           # seeds 0 1 2, ~2.5 min on 2 cores
    .venv/bin/python benchmarks/grpo_vs_trl.py --steps 100 --seeds 0 --out /tmp/grpo_vs_trl

Both run in this process, one after the other, on one torch thread, with nothing
downloaded:

* **start**: one supervised warm-up (``minimal.sft.train_sft``, the setting
  ``python -m minimal.grpo`` uses: 2 blocks, 2 heads, width 48, 450 steps).  Its
  weights are copied into a ``transformers`` GPT-2 of the same shape
  (:func:`to_gpt2`; the copy is checked: the two models' logits agree to float
  rounding), so both trainers start from the *same* policy;
* **ours**: ``minimal.grpo.train_grpo`` with the "GRPO" recipe (group-std
  advantages, per-sequence loss average);
* **TRL**: ``trl.GRPOTrainer`` on that GPT-2, with a character tokenizer over the
  same 13 characters in the same id order (``$`` is both end and pad token) and a
  reward function that decodes each completion and calls the same verifier
  (``minimal.worlds.addition.verify``).

Same: prompts per rollout batch (32), group size (8 = ``num_generations``), longest
response (5 tokens = ``max_completion_length``), rollout batch reused for 2 optimizer
updates (``updates_per_batch`` = ``num_iterations``), one optimizer update per
rollout pass over the whole batch, 300 updates, AdamW (betas 0.9/0.95, no weight
decay) at a constant 1e-3 after 20 warm-up steps, gradient clipping at 1, clip 0.2 on
both sides, KL weight beta 0, temperature 1, per-sequence loss averaging
(TRL ``loss_type="grpo"``), advantages scaled by the group std.

Both trained policies are copied back into ``minimal.core.gpt.GPT`` and scored by the
same evaluator (``minimal.worlds.addition.accuracy``: held-out pass@1 at temperature 1
on the 500 problems that ``train_grpo`` evaluates on, seed 1).  Each seed trains its
own SFT start, shared by both.  Writes ``<out>.csv`` (per seed: both rows and the
ratio ours/theirs), ``<out>.png`` (training reward), and prints the tables of
``grpo_vs_trl.md``.
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minimal import grpo  # noqa: E402
from minimal.core.gpt import GPT, GPTConfig  # noqa: E402
from minimal.sft import train_sft  # noqa: E402
from minimal.worlds import addition as ar  # noqa: E402


# ------------------------------------------------------------ the same model in GPT-2 layout
def to_gpt2(model: GPT):
    """A ``GPT2LMHeadModel`` with the weights of our tiny GPT (same maths, exact GELU, no dropout).

    GPT-2's ``Conv1D`` layers store their weight as (in, out), ``nn.Linear`` as (out, in):
    hence the transposes.  Token embedding and output head are tied in both.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.cfg
    hf = GPT2LMHeadModel(GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
        n_head=c.n_head, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        bos_token_id=ar.END, eos_token_id=ar.END, pad_token_id=ar.END))
    missing, unexpected = hf.load_state_dict(gpt2_state(model), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:  # lm_head.weight is tied to wte
        raise RuntimeError(f"GPT-2 layout mismatch: missing {missing}, unexpected {unexpected}")
    hf.tie_weights()
    return hf.eval()


#: GPT-2 keeps these as Conv1D, whose weight is stored (in, out); ours are nn.Linear, (out, in).
_CONV1D = ("c_attn.weight", "c_proj.weight", "c_fc.weight")


def _key_pairs(n_layer: int):
    """(our key, GPT-2 key) for every parameter but the output head, tied to the embedding."""
    yield "tok_emb.weight", "transformer.wte.weight"
    yield "pos_emb.weight", "transformer.wpe.weight"
    yield "ln_f.weight", "transformer.ln_f.weight"
    yield "ln_f.bias", "transformer.ln_f.bias"
    for i in range(n_layer):
        for a, b in (("ln1", "ln_1"), ("ln2", "ln_2"), ("attn.qkv", "attn.c_attn"),
                     ("attn.proj", "attn.c_proj"), ("mlp.fc", "mlp.c_fc"), ("mlp.proj", "mlp.c_proj")):
            for p in ("weight", "bias"):
                yield f"blocks.{i}.{a}.{p}", f"transformer.h.{i}.{b}.{p}"


def _moved(t: torch.Tensor, key: str) -> torch.Tensor:
    return t.t().contiguous() if key.endswith(_CONV1D) else t


def gpt2_state(model: GPT) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    return {hf: _moved(sd[ours], hf) for ours, hf in _key_pairs(model.cfg.n_layer)}


def from_gpt2(hf, cfg: GPTConfig) -> GPT:
    """The inverse of :func:`to_gpt2`: a trained GPT-2 back in our layout, for the shared evaluator."""
    sd = {k: v.detach().cpu() for k, v in hf.state_dict().items()}
    model = GPT(cfg)
    model.load_state_dict({ours: _moved(sd[key], key) for ours, key in _key_pairs(cfg.n_layer)},
                          strict=False)  # head.weight is tied to tok_emb.weight
    return model.eval()


def char_tokenizer():
    """A PreTrainedTokenizerFast with our 13 characters at our ids; ``$`` ends and pads."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(dict(ar.TOKENIZER.stoi), unk_token="$"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()  # "8", "6", "$" -> "86$", no spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="$", pad_token="$")


# ----------------------------------------------------------------------------- runs
def mean_last(values: list[float], n: int) -> float:
    return statistics.mean(values[-n:])


def run_ours(start: GPT, args, seed: int) -> dict:
    cfg = grpo.GRPOConfig(seed=seed, digits=args.digits, steps=args.steps,
                          batch_size=args.batch_size, group_size=args.group_size,
                          updates_per_batch=args.updates_per_batch, lr=args.lr,
                          beta=args.beta, clip_eps_low=args.clip, clip_eps_high=args.clip,
                          warmup_steps=args.warmup, eval_every=args.steps, eval_size=args.eval_size,
                          log_every=args.log_every, **grpo.RECIPES["GRPO"])
    t0 = time.perf_counter()
    res = grpo.train_grpo(cfg, start)  # includes the held-out evaluation at step 0 and at the end
    seconds = time.perf_counter() - t0
    h = res.history
    return {"seconds": seconds, "setup_seconds": 0.0, "model": res.policy, "samples": res.samples,
            "reward_curve": list(zip(h.steps, h.metrics["reward"])),
            "final_train_reward": mean_last(h.metrics["reward"], args.last_logs)}


def run_trl(start: GPT, args, seed: int, work: Path) -> dict:
    from datasets import Dataset
    from transformers import GPT2LMHeadModel
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    t0 = time.perf_counter()
    tokenizer = char_tokenizer()
    # Saved and reloaded from a local folder, so that the model has a local "name" from
    # which TRL could rebuild a reference model when beta > 0 (nothing is downloaded).
    to_gpt2(start).save_pretrained(work / "sft")
    tokenizer.save_pretrained(work / "sft")
    model = GPT2LMHeadModel.from_pretrained(work / "sft", dtype=torch.float32)

    # Prompts from the same distribution as ours (uniform difficulty 1..D), one per rollout
    # slot, read in order: ours draws its own from the loop's generator as it goes.
    n_prompts = args.steps // args.updates_per_batch * args.batch_size
    probs = ar.sample_problems(n_prompts, args.digits, gen=torch.Generator().manual_seed(seed + 1))
    data = Dataset.from_dict({"prompt": [ar.TOKENIZER.decode(p) for p in probs.prompts],
                              "a": probs.a.tolist(), "b": probs.b.tolist()})
    L = ar.response_len(args.digits)

    def verifier_reward(completion_ids, a, b, **_):
        """Decode each completion, pad with '$' as ours does, and ask the same verifier."""
        texts = [tokenizer.decode(ids, skip_special_tokens=False) for ids in completion_ids]
        responses = torch.tensor([ar.TOKENIZER.encode((t + "$" * L)[:L]) for t in texts])
        problems = ar.encode_problems(torch.tensor(a), torch.tensor(b), args.digits)
        return ar.verify(responses, problems).tolist()

    cfg = GRPOConfig(
        output_dir=str(work / "out"), seed=seed, data_seed=seed, use_cpu=True,
        bf16=False, gradient_checkpointing=False, dataloader_num_workers=0, disable_tqdm=True,
        report_to="none", save_strategy="no", logging_steps=args.log_every,
        max_steps=args.steps, per_device_train_batch_size=args.batch_size * args.group_size,
        gradient_accumulation_steps=1, steps_per_generation=1, num_generations=args.group_size,
        num_iterations=args.updates_per_batch, max_completion_length=L, shuffle_dataset=False,
        temperature=1.0, top_p=1.0, top_k=0, learning_rate=args.lr,
        lr_scheduler_type="constant_with_warmup", warmup_steps=args.warmup, weight_decay=0.0,
        adam_beta1=0.9, adam_beta2=0.95, max_grad_norm=1.0, beta=args.beta, epsilon=args.clip,
        epsilon_high=args.clip, loss_type="grpo", scale_rewards="group",
        mask_truncated_completions=False)
    trainer = GRPOTrainer(model=model, reward_funcs=verifier_reward, args=cfg, train_dataset=data,
                          processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # no log dict printed every logging step
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    logs = [h for h in trainer.state.log_history if "reward" in h]
    rewards = [h["reward"] for h in logs]
    opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)
    return {"seconds": seconds, "setup_seconds": setup, "model": from_gpt2(trainer.model, start.cfg),
            "samples": n_prompts * args.group_size,
            "reward_curve": [(h["step"], h["reward"]) for h in logs],
            "final_train_reward": mean_last(rewards, args.last_logs),
            "optimizer": f"{type(opt).__name__} {opt.defaults.get('betas')}"}


@torch.no_grad()
def check_transfer(start: GPT, test: ar.Problems) -> float:
    """Largest |logit difference| between our GPT and its GPT-2 copy (and back) on the test prompts."""
    hf = to_gpt2(start)
    tokens = torch.cat([test.prompts, test.targets], 1)[:, :start.cfg.block_size]
    ours = start(tokens)[0]
    diff = (hf(input_ids=tokens).logits - ours).abs().max().item()
    back = from_gpt2(hf, start.cfg)
    return max(diff, (back(tokens)[0] - ours).abs().max().item())


FIELDS = ["seconds", "updates_per_s", "completions_per_s", "final_train_reward", "heldout_acc"]


def one_seed(args, seed: int, test: ar.Problems) -> tuple[dict, dict, dict]:
    cfg = grpo.GRPOConfig(seed=seed, digits=args.digits, sft_steps=args.sft_steps)
    t0 = time.perf_counter()
    start = train_sft(cfg.sft_config()).model
    sft = {"seconds": time.perf_counter() - t0, "transfer_err": check_transfer(start, test)}
    t0 = time.perf_counter()
    sft["heldout_acc"] = ar.accuracy(start, test, args.digits, seed=1)
    sft["eval_seconds"] = time.perf_counter() - t0
    ours = run_ours(start, args, seed)
    theirs = run_trl(start, args, seed, Path("/tmp") / f"grpo_vs_trl_run_{seed}")
    for r in (ours, theirs):
        r["heldout_acc"] = ar.accuracy(r["model"], test, args.digits, seed=1)
        r["updates_per_s"] = args.steps / r["seconds"]
        r["completions_per_s"] = r["samples"] / r["seconds"]
    print(f"seed {seed}: SFT {sft['seconds']:.1f} s, pass@1 {sft['heldout_acc']:.3f} "
          f"(eval {sft['eval_seconds']:.2f} s), GPT -> GPT-2 -> GPT max |logit diff| "
          f"{sft['transfer_err']:.1e}; ours {ours['seconds']:.1f} s -> {ours['heldout_acc']:.3f}; "
          f"TRL {theirs['seconds']:.1f} s (+{theirs['setup_seconds']:.1f} s setup) -> "
          f"{theirs['heldout_acc']:.3f}", flush=True)
    return sft, ours, theirs


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="optimizer updates of RL")
    p.add_argument("--batch-size", type=int, default=32, help="prompts per rollout batch")
    p.add_argument("--group-size", type=int, default=8, help="samples per prompt (num_generations)")
    p.add_argument("--updates-per-batch", type=int, default=2, help="= TRL num_iterations")
    p.add_argument("--digits", type=int, default=2)
    p.add_argument("--sft-steps", type=int, default=450)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--beta", type=float, default=0.0, help="KL weight (ours beta)")
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--eval-size", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--last-logs", type=int, default=5, help="logged rewards averaged for 'final'")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="benchmarks/grpo_vs_trl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import transformers
    import trl
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    test = ar.held_out(args.eval_size, args.digits)
    runs = [(seed, *one_seed(args, seed, test)) for seed in args.seeds]

    name = {"ours": "ours (minimal.grpo)", "trl": f"TRL {trl.__version__} GRPOTrainer"}
    out = Path(args.out)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["seed", "impl", "start_heldout_acc", *FIELDS, "setup_seconds"])
        w.writeheader()
        for seed, sft, ours, theirs in runs:
            for key, r in (("ours", ours), ("trl", theirs)):
                w.writerow({"seed": seed, "impl": name[key],
                            "start_heldout_acc": f"{sft['heldout_acc']:.4g}",
                            **{k: f"{r[k]:.4g}" for k in FIELDS},
                            "setup_seconds": f"{r['setup_seconds']:.3g}"})
            w.writerow({"seed": seed, "impl": "ratio ours/theirs",
                        **{k: f"{ours[k] / theirs[k]:.3g}" for k in FIELDS}})
    plot(runs, name, out.with_suffix(".png"))

    mean = lambda xs: statistics.mean(xs)  # noqa: E731
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    print(f"\n{platform.machine()}, {torch.get_num_threads()} torch thread, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, trl {trl.__version__}; TRL optimizer "
          f"{runs[0][3]['optimizer']}")
    print("| seed | impl | train s | updates/s | completions/s | train reward, last 50 updates "
          "| held-out pass@1 (SFT start) |\n|---|---|---|---|---|---|---|")
    for seed, sft, ours, theirs in runs:
        for key, r in (("ours", ours), ("trl", theirs)):
            print(f"| {seed} | {name[key]} | {r['seconds']:.1f} | {r['updates_per_s']:.2f} | "
                  f"{r['completions_per_s']:.0f} | {r['final_train_reward']:.3f} | "
                  f"{r['heldout_acc']:.3f} ({sft['heldout_acc']:.3f}) |")
    print("\n| quantity | ours | TRL | ratio ours/theirs |\n|---|---|---|---|")
    for k in FIELDS:
        o = [r[2][k] for r in runs]
        t = [r[3][k] for r in runs]
        q = [a / b for a, b in zip(o, t)]
        print(f"| {k} | {mean(o):.3f} ± {sd(o):.3f} | {mean(t):.3f} ± {sd(t):.3f} | "
              f"{mean(q):.3f} ± {sd(q):.3f} |")
    s0 = [r[1]["heldout_acc"] for r in runs]
    print(f"| SFT start held-out pass@1 | {mean(s0):.3f} ± {sd(s0):.3f} | (same) | |")


def plot(runs, name: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for key, idx, color in (("ours", 2, "C0"), ("trl", 3, "C1")):
        for i, (_seed, _sft, *rs) in enumerate(runs):
            r = rs[idx - 2]
            s, v = zip(*r["reward_curve"])
            ax.plot(s, v, color=color, alpha=0.8, lw=1,
                    label=name[key] if i == 0 else None)
    ax.axhline(statistics.mean(r[1]["heldout_acc"] for r in runs), color="gray", ls=":",
               label="SFT start (held-out pass@1)")
    ax.set_xlabel("optimizer update")
    ax.set_ylabel("training reward (rollout batch mean)")
    ax.set_title(f"GRPO on addition from the same SFT start, seeds {[r[0] for r in runs]}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
