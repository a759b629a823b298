"""A small Vision Transformer (timm) for 8x8 to 32x32 images.

Patches of 4x4 for 28/32 px images (7x7 or 8x8 tokens) and 2x2 for the 8x8
digits (4x4 tokens), as each conf/task/vit_*.yaml sets ``patch_size``; mean-pooled
tokens (no class token) feed the classifier.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from .image import ImageClassification, check_dataset, check_positive
from .workloads import fill


class ViTTask(ImageClassification):
    family = "vit"

    def __init__(
        self,
        dataset: str = "digits",
        embed_dim: int | None = None,
        depth: int | None = None,
        num_heads: int | None = None,
        mlp_ratio: float | None = None,
        patch_size: int | None = None,
        drop_path: float | None = None,
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
        """``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio``, ``patch_size``, ``drop_path``
        (the model), ``batch_size``, ``crop_pad``, ``hflip`` (augmentation), ``steps`` (the
        budget) and ``target``: as the workload's conf/task/vit_*.yaml sets them (None: read
        from it)."""
        check_dataset(dataset)
        w = fill(
            self.family,
            {"dataset": dataset},
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            patch_size=patch_size,
            drop_path=drop_path,
            batch_size=batch_size,
            steps=steps,
            target=target,
        )
        embed_dim, depth, num_heads = w["embed_dim"], w["depth"], w["num_heads"]
        mlp_ratio, drop_path, batch_size = w["mlp_ratio"], w["drop_path"], w["batch_size"]
        check_positive(
            embed_dim=embed_dim, depth=depth, num_heads=num_heads, patch_size=w["patch_size"]
        )
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        if not mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be > 0, got {mlp_ratio}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        self.drop_path = float(drop_path)
        self.embed_dim, self.depth, self.num_heads = embed_dim, depth, num_heads
        self.mlp_ratio = float(mlp_ratio)
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
        self.patch_size = w["patch_size"]
        self.set_budget(w["steps"], w["target"])
        if self.data.size % self.patch_size:
            raise ValueError(
                f"patch_size {self.patch_size} must divide the image size {self.data.size}"
            )

    def decays(self, name: str, param) -> bool:
        """As timm: no decay for biases, norms and the position embedding."""
        return param.ndim >= 2 and "pos_embed" not in name

    def build_model(self) -> nn.Module:
        # Imported here so that importing the task (and the suite) stays fast.
        from timm.models.vision_transformer import VisionTransformer

        model = VisionTransformer(
            img_size=self.data.size,
            patch_size=self.patch_size,
            in_chans=self.data.channels,
            num_classes=self.num_classes,
            embed_dim=self.embed_dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            class_token=False,
            global_pool="avg",
            drop_path_rate=self.drop_path,
        )
        return model.to(self.device)
