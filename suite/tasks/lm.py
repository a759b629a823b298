"""A small causal language model (GPT-2 from a transformers config, random init).

Tiny Shakespeare at the character level (vocabulary 65), WikiText-2 or the Brown
corpus with a byte-level BPE trained on the train split. Training batches are random windows of block_size + 1 tokens;
evaluation uses a fixed set of evenly spaced windows of each split, so two
evaluations of the same model agree exactly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from suite.data import TEXT_DATASETS, load_text
from suite.data.batches import fixed_windows, generator, random_windows

from .base import Task
from .image import check_positive
from .workloads import fill, workload


class LMTask(Task):
    val_metrics = ("val/loss", "val/ppl", "val/bpc")

    def __init__(
        self,
        dataset: str = "tinyshakespeare",
        tokenizer: str | None = None,
        vocab_size: int | None = None,
        n_layer: int | None = None,
        n_head: int | None = None,
        n_embd: int | None = None,
        block_size: int | None = None,
        dropout: float | None = None,
        batch_size: int | None = None,
        eval_windows: int = 400,
        eval_batch_size: int = 100,
        data_root: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        steps: int | None = None,
        target: Mapping | None = None,
    ) -> None:
        """``tokenizer``, ``vocab_size``, the model's sizes (``n_layer``, ``n_head``,
        ``n_embd``, ``block_size``, ``dropout``), ``batch_size``, ``steps`` and ``target``: as
        the dataset's conf/task/lm_*.yaml sets them (None: read from that file). Another
        tokenizer than the file's is named in the task's name (``lm_tinyshakespeare_bpe``);
        the target stays the file's."""
        if dataset not in TEXT_DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(TEXT_DATASETS)}")
        w = fill(
            "lm",
            {"dataset": dataset},
            vocab_size=vocab_size,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            block_size=block_size,
            dropout=dropout,
            batch_size=batch_size,
            steps=steps,
            target=target,
        )
        vocab_size, n_layer, n_head = w["vocab_size"], w["n_layer"], w["n_head"]
        n_embd, block_size, dropout = w["n_embd"], w["block_size"], w["dropout"]
        batch_size = w["batch_size"]
        check_positive(
            vocab_size=vocab_size,
            n_layer=n_layer,
            n_head=n_head,
            n_embd=n_embd,
            block_size=block_size,
            batch_size=batch_size,
            eval_windows=eval_windows,
            eval_batch_size=eval_batch_size,
        )
        if n_embd % n_head:
            raise ValueError(f"n_embd {n_embd} must be divisible by n_head {n_head}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        usual = workload("lm", dataset=dataset)[1]["tokenizer"]  # what its task config names
        self.tokenizer = tokenizer or usual
        self.dataset = dataset
        self.name = f"lm_{dataset}" + ("" if self.tokenizer == usual else f"_{self.tokenizer}")
        self.set_budget(w["steps"], w["target"])
        self.device = torch.device(device)
        self.n_layer, self.n_head, self.n_embd = n_layer, n_head, n_embd
        self.block_size, self.dropout, self.batch_size = block_size, float(dropout), batch_size
        self.eval_batch_size = eval_batch_size
        self.data = load_text(dataset, data_root, self.tokenizer, vocab_size).to(self.device)
        streams = {"train": self.data.train, "val": self.data.val, "test": self.data.test}
        shortest = min(len(t) for t in streams.values())
        if shortest < block_size + 1:
            raise ValueError(
                f"block_size {block_size} needs splits of > {block_size} tokens; one has {shortest}"
            )
        self.eval_sets = {s: fixed_windows(t, block_size, eval_windows) for s, t in streams.items()}
        # Bits per character from nats per token: each split's tokens per character / ln 2.
        self.bits_per_nat_char = {
            s: len(streams[s]) / self.data.chars[s] / math.log(2) for s in ("val", "test")
        }

    def build_model(self) -> nn.Module:
        # Imported here so that importing the task (and the suite) stays fast.
        from transformers import GPT2Config, GPT2LMHeadModel

        config = GPT2Config(
            vocab_size=self.data.vocab_size,
            n_positions=self.block_size,
            n_embd=self.n_embd,
            n_layer=self.n_layer,
            n_head=self.n_head,
            resid_pdrop=self.dropout,
            embd_pdrop=self.dropout,
            attn_pdrop=self.dropout,
            # The exact (erf) GELU, as nanoGPT: on this CPU torch's tanh GELU costs twice
            # the erf one (fwd+bwd 15 vs 8 ms per call at 12x64x512), and GPT-2's "gelu_new"
            # spells the tanh one in seven ops. Step time vs nanoGPT's model, one thread:
            # gelu_new 1.13-1.15x, gelu_pytorch_tanh 1.10x, gelu 1.06x (suite/bench/lm_peer.py,
            # results/nanogpt_cpu). The activation differs from GPT-2's by < 1e-3.
            activation_function="gelu",
            bos_token_id=None,
            eos_token_id=None,
            use_cache=False,
        )
        return GPT2LMHeadModel(config).to(self.device)

    def batch(self, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = generator(seed, step, self.device, "windows")
        return random_windows(self.data.train, self.block_size, self.batch_size, g)

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch  # (B, T) inputs and the same windows shifted by one
        logits = model(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            out = {}
            for split, (xs, ys) in self.eval_sets.items():
                total = 0.0
                for i in range(0, len(xs), self.eval_batch_size):
                    logits = model(input_ids=xs[i : i + self.eval_batch_size]).logits
                    y = ys[i : i + self.eval_batch_size]
                    total += F.cross_entropy(
                        logits.flatten(0, 1).float(), y.flatten(), reduction="sum"
                    ).item()
                loss = total / ys.numel()
                out[f"{split}/loss"] = loss
                out[f"{split}/ppl"] = math.exp(min(loss, 50.0))
            for split, factor in self.bits_per_nat_char.items():
                out[f"{split}/bpc"] = out[f"{split}/loss"] * factor
        finally:
            model.train(was_training)
        return out
