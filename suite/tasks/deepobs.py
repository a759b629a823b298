"""DeepOBS test problems, exact to their definitions (Schneider et al., ICLR 2019).

From ``deepobs/pytorch/testproblems/`` (fsschneider/DeepOBS): ``fmnist_2c2d``,
``mnist_2c2d``, ``fmnist_mlp`` and ``mnist_mlp``.

- **2c2d** (``net_mnist_2c2d``): conv 5x5, 32 channels, 'same' padding -> ReLU ->
  max-pool 2x2 stride 2 -> conv 5x5, 64 -> ReLU -> max-pool -> dense 3136 -> 1024
  -> ReLU -> dense 1024 -> 10. Every weight ~ truncated normal (mean 0, std 0.05,
  cut at 2 std), every bias 0.05. 3,274,634 parameters. (TF 'same' padding of a
  5x5 stride-1 conv is 2 on each side, and the 2x2 stride-2 pools on 28 and 14
  pixels need none, so plain ``nn.Conv2d(padding=2)`` and ``nn.MaxPool2d(2)``
  compute exactly what DeepOBS's tfconv2d/tfmaxpool2d do.)
- **mlp** (``net_mlp``): dense 784 -> 1000 -> 500 -> 100 -> 10 with ReLUs. Weights
  ~ truncated normal (std 3e-2, cut at 2 std), biases 0. 1,336,610 parameters.

Inputs are pixels scaled to [0, 1] (torchvision's ``ToTensor``) and nothing
else: no normalisation, no augmentation. Cross-entropy loss, no regularisation:
a weight decay is refused. Batch 128; the default budget is DeepOBS's epochs (``epochs``
in each problem's conf/task file) over our 50,000-image train split (390 steps per epoch,
the last partial batch dropped as DeepOBS's ``drop_last=True`` does). DeepOBS samples its truncated
normal with scipy from a numpy state seeded by torch; ours is
``nn.init.trunc_normal_``: the same distribution, other random numbers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from .image import ImageClassification, check_positive
from .workloads import fill

ARCHS = ("2c2d", "mlp")
SHORT = {"fashion_mnist": "fmnist", "mnist": "mnist"}


def _trunc_normal_(w: torch.Tensor, std: float) -> None:
    nn.init.trunc_normal_(w, mean=0.0, std=std, a=-2 * std, b=2 * std)


def net_2c2d(num_outputs: int = 10) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(7 * 7 * 64, 1024),
        nn.ReLU(),
        nn.Linear(1024, num_outputs),
    )
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.constant_(m.bias, 0.05)
            _trunc_normal_(m.weight, 0.05)
    return net


def net_mlp(num_outputs: int = 10) -> nn.Sequential:
    net = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 1000),
        nn.ReLU(),
        nn.Linear(1000, 500),
        nn.ReLU(),
        nn.Linear(500, 100),
        nn.ReLU(),
        nn.Linear(100, num_outputs),
    )
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.bias, 0.0)
            _trunc_normal_(m.weight, 3e-2)
    return net


NETS = {"2c2d": net_2c2d, "mlp": net_mlp}


class DeepOBSTask(ImageClassification):
    family = "deepobs"

    def __init__(
        self,
        dataset: str = "fashion_mnist",
        arch: str = "2c2d",
        batch_size: int | None = None,
        eval_train_size: int | None = 10_000,
        eval_batch_size: int = 1000,
        eval_size: int | None = None,
        data_root: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        epochs: int | None = None,
        target: Mapping | None = None,
    ) -> None:
        """``batch_size``, ``epochs`` (the budget: epochs x batches per epoch) and ``target``:
        as the problem's conf/task file sets them (None: read from that file)."""
        if dataset not in SHORT:
            raise ValueError(f"unknown DeepOBS dataset {dataset!r}; valid: {', '.join(SHORT)}")
        if arch not in ARCHS:
            raise ValueError(f"unknown DeepOBS architecture {arch!r}; valid: {', '.join(ARCHS)}")
        self.arch = arch
        identity = {"dataset": dataset, "arch": arch}
        w = fill(self.family, identity, batch_size=batch_size, epochs=epochs, target=target)
        super().__init__(
            dataset,
            w["batch_size"],
            False,
            eval_train_size,
            eval_batch_size,
            data_root,
            device,
            eval_size,
        )
        self.name = f"{SHORT[dataset]}_{arch}"
        check_positive(epochs=w["epochs"])
        self.set_budget(w["epochs"] * (len(self.data.train_x) // self.batch_size), w["target"])

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() / 255  # ToTensor: pixels in [0, 1], nothing else

    fixed_hparams = {"weight_decay": 0.0}  # unregularized: tuning searches without it

    def build_model(self) -> nn.Module:
        return NETS[self.arch](self.num_classes).to(self.device)
