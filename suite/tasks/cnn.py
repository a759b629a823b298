"""A small ResNet (timm) for 8x8 to 32x32 images: digits, MNIST, Fashion-MNIST, CIFAR-10.

timm's ResNet with BasicBlocks and stage widths (w, 2w, 4w, 8w). The ImageNet
stem (7x7 stride-2 conv + max-pool) would shrink a 32x32 image to 8x8 before
the first block, so it is replaced by one 3x3 stride-1 conv and no pool, as in
the CIFAR ResNets of He et al. Feature maps: 32 -> 32, 16, 8, 4 (28 -> 28, 14, 7, 4;
8 -> 8, 4, 2, 1).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .image import ImageClassification, check_dataset, check_positive
from .workloads import fill


class CNNTask(ImageClassification):
    family = "cnn"

    def __init__(
        self,
        dataset: str = "digits",
        width: int | None = None,
        layers: Sequence[int] | None = None,
        batch_size: int | None = None,
        augment: bool = True,
        eval_train_size: int | None = 10_000,
        eval_batch_size: int = 1000,
        eval_size: int | None = None,
        data_root: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        crop_pad: int | None = None,
        hflip: bool | None = None,
        steps: int | None = None,
        target: Mapping | None = None,
    ) -> None:
        """``width``, ``layers`` (the model), ``batch_size``, ``crop_pad``, ``hflip``
        (augmentation), ``steps`` (the budget) and ``target``: as the workload's
        conf/task/cnn_*.yaml sets them (None: read from that file)."""
        check_dataset(dataset)
        w = fill(
            self.family,
            {"dataset": dataset},
            width=width,
            layers=layers,
            batch_size=batch_size,
            steps=steps,
            target=target,
        )
        width, layers, batch_size = w["width"], w["layers"], w["batch_size"]
        check_positive(width=width)
        if batch_size == 1:  # BatchNorm on the 1x1 map of the last stage: one value per channel
            raise ValueError(
                "batch_size must be >= 2 for a ResNet (BatchNorm needs more than one value "
                "per channel to train), got 1"
            )
        if width % 2:
            raise ValueError(f"width must be even, got {width}")
        layers = tuple(layers)
        if len(layers) != 4 or not all(isinstance(n, int) and n >= 1 for n in layers):
            raise ValueError(f"layers must be 4 integers >= 1 (blocks per stage), got {layers}")
        self.width, self.layers = width, layers
        super().__init__(
            dataset,
            batch_size,
            augment,
            eval_train_size,
            eval_batch_size,
            data_root,
            device,
            eval_size,
            crop_pad,
            hflip,
        )
        self.set_budget(w["steps"], w["target"])

    def build_model(self) -> nn.Module:
        # Imported here so that importing the task (and the suite) stays fast.
        from timm.models.resnet import BasicBlock, ResNet

        w, c = self.width, self.data.channels
        # stem_type="deep" makes timm size the stem output 2 * stem_width = w (with the
        # default stem that width is fixed at 64); its 3-conv stride-2 stem is then replaced.
        model = ResNet(
            BasicBlock,
            list(self.layers),
            num_classes=self.num_classes,
            in_chans=c,
            stem_width=w // 2,
            stem_type="deep",
            channels=(w, 2 * w, 4 * w, 8 * w),
        )
        model.conv1 = nn.Conv2d(c, w, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
        return model.to(self.device)
