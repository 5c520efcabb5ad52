"""Our DPO (minimal.dpo) against TRL's DPOTrainer on the same tiny model shape and pairs.

    .venv/bin/pip install -r benchmarks/requirements.txt torch==2.13.0
    .venv/bin/python benchmarks/dpo_vs_trl.py            # ~1 min on 2 cores
    .venv/bin/python benchmarks/dpo_vs_trl.py --steps 300 --out benchmarks/dpo_vs_trl

Both run in this process, one after the other, on one torch thread, with nothing
downloaded:

* **data**: the 2,000 Bradley-Terry pairs of chapter 3 (``minimal.reward_model``,
  seed 0): prompt ``>``, responses of 8 letters;
* **ours**: ``minimal.dpo.train_dpo`` (the tiny ``minimal.core.gpt.GPT``, the shared loop,
  the DPO loss of eq. ``dpo-loss``);
* **TRL**: ``trl.DPOTrainer`` on a ``transformers`` GPT-2 built from a ``GPT2Config``
  of the same shape (1 block, 2 heads, width 32, tied embeddings), with a character
  tokenizer built locally with ``tokenizers`` over the same alphabet plus
  ``<eos>``/``<pad>``/``<unk>`` (TRL appends ``<eos>`` to each response).

Same beta, learning rate, batch size, number of steps, warm-up plus cosine schedule,
AdamW without weight decay, gradient clipping at 1.  We record training pairs per
second (optimizer steps x batch size / wall time of training) and the final DPO loss
(mean of the last 10 steps' batch losses), report ours/theirs ratios, and score both
trained policies by the gold reward of 512 samples.  Writes ``<out>.csv`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minimal import dpo  # noqa: E402
from minimal.worlds import letters  # noqa: E402

SHAPE = dict(n_layer=1, n_head=2, n_embd=32)


def pairs_as_text(n_pairs: int, response_len: int, seed: int) -> dict[str, list[str]]:
    """The chapter's pairs (the same ones minimal.dpo trains on), decoded to strings."""
    reference = letters.make_reference(**SHAPE, response_len=response_len, seed=0)
    data = letters.make_preference_data(reference, n_pairs, response_len, seed=seed)
    dec = letters.TOKENIZER.decode
    return {"prompt": [">"] * n_pairs, "chosen": [dec(y) for y in data["chosen"]],
            "rejected": [dec(y) for y in data["rejected"]]}


def run_ours(args) -> dict:
    cfg = dpo.DPOConfig(seed=args.seed, beta=args.beta, lr=args.lr, steps=args.steps,
                        batch_size=args.batch_size, n_pairs=args.n_pairs, warmup_steps=20,
                        response_len=args.response_len,
                        log_every=1, n_eval=512)
    start = time.perf_counter()
    res = dpo.train_dpo(cfg)  # includes making the pairs, log pi_ref, and scoring before/after
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "pairs_per_s": args.steps * args.batch_size / seconds,
            "final_loss": statistics.mean(res["history"].metrics["loss"][-10:]),
            "gold_reward": res["after"]["gold_reward"]}


def char_tokenizer():
    """A PreTrainedTokenizerFast that maps every character of the alphabet to one id."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(letters.ALPHABET)}
    for special in ("<eos>", "<pad>", "<unk>"):
        vocab[special] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")


@torch.no_grad()
def gold_reward_of_hf(model, tokenizer, n: int, response_len: int, seed: int) -> float:
    """Mean gold reward of n samples from an HF causal LM, letters only (other ids masked)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(c) for c in letters.ALPHABET[1:]])
    idx = torch.full((n, 1), tokenizer.convert_tokens_to_ids(">"), dtype=torch.long)
    for _ in range(response_len):
        logits = model(input_ids=idx).logits[:, -1, ids].float()  # (n, 8)
        pick = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)  # (n, 1)
        idx = torch.cat([idx, ids[pick]], dim=1)
    text = tokenizer.batch_decode(idx[:, 1:])
    ours = torch.tensor([letters.TOKENIZER.encode(t.replace(" ", "")) for t in text])
    return float(letters.gold_reward(ours).mean())


def run_trl(args, out_dir: Path) -> dict:
    from datasets import Dataset
    from transformers import GPT2Config, GPT2LMHeadModel
    from trl import DPOConfig, DPOTrainer

    tokenizer = char_tokenizer()
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tokenizer), n_positions=args.response_len + 2, n_embd=SHAPE["n_embd"],
        n_layer=SHAPE["n_layer"], n_head=SHAPE["n_head"], resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    data = Dataset.from_dict(pairs_as_text(args.n_pairs, args.response_len, args.seed))
    cfg = DPOConfig(output_dir=str(out_dir), beta=args.beta, learning_rate=args.lr,
                    max_steps=args.steps, per_device_train_batch_size=args.batch_size,
                    lr_scheduler_type="cosine", warmup_steps=20, weight_decay=0.0,
                    max_grad_norm=1.0, logging_steps=1, save_strategy="no", report_to="none",
                    use_cpu=True, bf16=False, seed=args.seed, data_seed=args.seed,
                    dataloader_num_workers=0, max_length=args.response_len + 2,
                    disable_tqdm=True)
    reference = copy.deepcopy(model).eval()  # pi_ref: the same initialisation, frozen
    trainer = DPOTrainer(model=model, ref_model=reference, args=cfg, train_dataset=data,
                         processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    model.eval()
    return {"seconds": seconds, "pairs_per_s": args.steps * args.batch_size / seconds,
            "final_loss": statistics.mean(losses[-10:]),
            "gold_reward": gold_reward_of_hf(model, tokenizer, 512, args.response_len, 99)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-pairs", type=int, default=2000)
    p.add_argument("--response-len", type=int, default=8)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/dpo_vs_trl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import transformers
    import trl

    ours = run_ours(args)
    theirs = run_trl(args, Path("/tmp") / "dpo_vs_trl_run")
    rows = [{"impl": "ours (minimal.dpo)", **ours}, {"impl": f"TRL {trl.__version__} DPOTrainer", **theirs}]
    ratio_speed = ours["pairs_per_s"] / theirs["pairs_per_s"]
    ratio_loss = ours["final_loss"] / theirs["final_loss"]
    out = Path(args.out)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["impl", "seconds", "pairs_per_s", "final_loss", "gold_reward"])
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})
        w.writerow({"impl": "ratio ours/theirs", "seconds": f"{ours['seconds'] / theirs['seconds']:.3g}",
                    "pairs_per_s": f"{ratio_speed:.3g}", "final_loss": f"{ratio_loss:.3g}",
                    "gold_reward": ""})
    machine = (f"{platform.machine()}, {torch.get_num_threads()} torch thread, torch {torch.__version__}, "
               f"transformers {transformers.__version__}, trl {trl.__version__}")
    lines = ["| implementation | train seconds | pairs/s | final DPO loss | gold reward after |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['impl']} | {r['seconds']:.1f} | {r['pairs_per_s']:.0f} | {r['final_loss']:.3f} | "
              f"{r['gold_reward']:.2f} |" for r in rows]
    lines.append(f"| ratio ours/theirs | | {ratio_speed:.2f} | {ratio_loss:.2f} | |")
    print(machine)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
