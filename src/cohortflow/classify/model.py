"""The HeteroMRI 3D CNN, with configurable width and padding.

Five blocks of Conv3d (kernel 3) → ReLU → MaxPool3d(2) → BatchNorm3d, global average pooling,
Linear(512) → ReLU → Dropout(0.3) → Linear(1). The network returns logits; the probability
is their sigmoid (training uses ``BCEWithLogitsLoss``, the numerically stable form of sigmoid +
binary cross-entropy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

PUBLISHED_FILTERS = (64, 64, 128, 128, 256)


@dataclass(frozen=True)
class Architecture:
    """What defines the network; stored in the model card and checked on loading."""

    filters: tuple[int, ...] = PUBLISHED_FILTERS
    kernel_size: int = 3
    #: "valid" (no padding, each convolution trims one voxel per side) or "same".
    padding: str = "valid"
    dense_units: int = 512
    dropout: float = 0.3
    name: str = field(default="HeteroMRI-3DCNN")

    def __post_init__(self) -> None:
        if self.padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', not {self.padding!r}")
        if not self.filters or any(int(f) < 1 for f in self.filters):
            raise ValueError(f"filters must be positive integers, got {self.filters}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_config(cls, cfg: dict) -> Architecture:
        width = float(cfg.get("width", 1.0))
        base = tuple(int(f) for f in cfg.get("filters", PUBLISHED_FILTERS))
        filters = tuple(max(1, round(f * width)) for f in base)
        return cls(
            filters=filters,
            padding=str(cfg.get("padding", "valid")),
            dense_units=int(cfg.get("dense_units", 512)),
            dropout=float(cfg.get("dropout", 0.3)),
        )

    def as_dict(self) -> dict:
        record = asdict(self)
        record["filters"] = list(self.filters)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> Architecture:
        record = dict(record)
        record["filters"] = tuple(record["filters"])
        return cls(**record)

    def feature_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """Spatial shape after the five blocks; raises if the input is too small."""
        trim = 0 if self.padding == "same" else self.kernel_size - 1
        out = [int(s) for s in shape]
        for block in range(len(self.filters)):
            out = [(s - trim) // 2 for s in out]
            if min(out) < 1:
                raise ValueError(
                    f"input shape {tuple(int(s) for s in shape)} is too small for "
                    f"{len(self.filters)} blocks with {self.padding!r} padding "
                    f"(empty after block {block + 1}); use a larger shape"
                    + (" or padding 'same'" if self.padding == "valid" else "")
                )
        return tuple(out)


class HeteroMRINet(nn.Module):
    def __init__(self, arch: Architecture, input_shape: Sequence[int]):
        super().__init__()
        arch.feature_shape(input_shape)  # fail early on impossible shapes
        self.arch = arch
        pad = 0 if arch.padding == "valid" else arch.kernel_size // 2
        blocks: list[nn.Module] = []
        channels = 1
        for filters in arch.filters:
            blocks += [
                nn.Conv3d(channels, filters, arch.kernel_size, padding=pad),
                nn.ReLU(inplace=True),
                nn.MaxPool3d(2),
                nn.BatchNorm3d(filters),
            ]
            channels = filters
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, arch.dense_units),
            nn.ReLU(inplace=True),
            nn.Dropout(arch.dropout),
            nn.Linear(arch.dense_units, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, X, Y, Z) → logits (batch,)."""
        return self.head(self.pool(self.features(x))).squeeze(1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
