"""Training and inference of the CNN.

Adam with an exponentially decaying learning rate (multiplied by ``lr_decay`` after every
epoch), binary cross-entropy on logits, mini-batches in a seeded random order. After every
epoch the validation loss and accuracy are computed; training stops when the validation loss
has not improved for ``patience`` epochs, and the weights kept are those of the epoch with the
best validation accuracy (ties: the lower validation loss, then the earlier epoch).

On the CPU a given seed and thread count give the same weights bit for bit (deterministic
algorithms are enforced). On a GPU cuDNN is asked for deterministic kernels, but results may
still differ from the CPU's in the last bits.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from cohortflow.classify.model import Architecture, HeteroMRINet

log = logging.getLogger("cohortflow.classify")


@dataclass(frozen=True)
class TrainSettings:
    learning_rate: float = 1e-4
    lr_decay: float = 0.96
    batch_size: int = 2
    max_epochs: int = 100
    patience: int = 40
    device: str = "auto"  # auto | cpu | cuda
    #: CPU threads of torch in training, cross-validation and permutations. Fixed by the config,
    #: not taken from the scheduler: float sums (and so the weights) depend on the thread count,
    #: and a run with --cores 1 or on another cluster must give the same model.
    threads: int = 2
    #: flip each training input left-right with probability 0.5 (seeded), every epoch
    augment_flip: bool = False

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_epochs, self.patience, self.threads) < 1:
            raise ValueError("batch_size, max_epochs, patience and threads must be at least 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, not {self.device!r}")

    @classmethod
    def from_config(cls, cfg: dict) -> TrainSettings:
        return cls(
            learning_rate=float(cfg.get("learning_rate", 1e-4)),
            lr_decay=float(cfg.get("lr_decay", 0.96)),
            batch_size=int(cfg.get("batch_size", 2)),
            max_epochs=int(cfg.get("max_epochs", 100)),
            patience=int(cfg.get("patience", 40)),
            device=str(cfg.get("device", "auto")),
            threads=int(cfg.get("threads", 2)),
            augment_flip=bool(cfg.get("augment_flip", False)),
        )

    def as_dict(self) -> dict:
        return asdict(self)


def pick_device(name: str = "auto") -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("classify.train.device is 'cuda' but no CUDA GPU is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def make_deterministic(seed: int, device: torch.device, threads: int | None = None) -> None:
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    # CUDA has no deterministic max-pool backward: there a warning, not an error.
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    best_epoch: int
    epochs_run: int
    seconds: float
    device: str


def _tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1).to(device)


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: np.ndarray, device: torch.device, batch_size: int = 2
) -> np.ndarray:
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        out.append(model(_tensor(x[start : start + batch_size], device)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def predict_probabilities(
    model: nn.Module, x: np.ndarray, device: torch.device, batch_size: int = 2
) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-predict_logits(model, x, device, batch_size).astype(np.float64)))


def _loss_accuracy(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    loss = nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(logits.astype(np.float64)), torch.from_numpy(y.astype(np.float64))
    )
    return float(loss), float(((logits >= 0) == (y >= 0.5)).mean())


def _batches(order: np.ndarray, size: int) -> list[np.ndarray]:
    """Mini-batches in the given order; a trailing batch of one subject joins the one before
    it (batch norm cannot normalise a single subject whose feature map is one voxel)."""
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [np.concatenate(batches[-2:])]
    return batches


def train_model(
    arch: Architecture,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    settings: TrainSettings,
    seed: int,
    *,
    threads: int | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train one network; x arrays are (n, X, Y, Z), y arrays 0/1. torch uses
    ``settings.threads`` CPU threads unless ``threads`` overrides it (benchmarks)."""
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError("training needs at least one training and one validation subject")
    device = pick_device(settings.device)
    make_deterministic(seed, device, threads or settings.threads)
    model = HeteroMRINet(arch, x_train.shape[1:]).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=settings.lr_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    y_train = np.asarray(y_train, dtype=np.float32)
    y_val = np.asarray(y_val, dtype=np.float32)
    best: tuple[float, float, int] | None = None  # (-val accuracy, val loss, epoch)
    best_state: dict[str, torch.Tensor] = {}
    lowest_loss, since_lowest = float("inf"), 0
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        order = rng.permutation(len(x_train))
        losses, correct = [], 0
        for batch in _batches(order, settings.batch_size):
            target = torch.from_numpy(y_train[batch]).to(device)
            inputs = x_train[batch]
            if settings.augment_flip:
                flip = rng.random(len(batch)) < 0.5
                inputs = np.stack([x[::-1] if f else x for x, f in zip(inputs, flip, strict=True)])
            optimiser.zero_grad(set_to_none=True)
            logits = model(_tensor(inputs, device))
            loss = loss_fn(logits, target)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()) * len(batch))
            correct += int(((logits.detach() >= 0).float() == target).sum())
        lr = optimiser.param_groups[0]["lr"]
        schedule.step()
        val_loss, val_acc = _loss_accuracy(
            predict_logits(model, x_val, device, settings.batch_size), y_val
        )
        row = {
            "epoch": epoch,
            "learning_rate": lr,
            "train_loss": sum(losses) / len(x_train),
            "train_accuracy": correct / len(x_train),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        log.info(
            "epoch %d/%d  loss %.4f  acc %.3f  val_loss %.4f  val_acc %.3f  lr %.3g  %.1f s",
            epoch, settings.max_epochs, row["train_loss"], row["train_accuracy"],
            val_loss, val_acc, lr, row["seconds"],
        )  # fmt: skip
        if on_epoch:
            on_epoch(row)
        key = (-val_acc, val_loss, epoch)
        if best is None or key < best:
            best = key
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        if val_loss < lowest_loss:
            lowest_loss, since_lowest = val_loss, 0
        else:
            since_lowest += 1
            if since_lowest >= settings.patience:
                log.info("early stop: no lower validation loss for %d epochs", settings.patience)
                break
    assert best is not None
    log.info("kept epoch %d (val_acc %.3f, val_loss %.4f)", best[2], -best[0], best[1])
    return TrainResult(
        state_dict=best_state,
        history=history,
        best_epoch=best[2],
        epochs_run=len(history),
        seconds=time.perf_counter() - start,
        device=str(device),
    )


def load_network(arch: Architecture, shape, state_dict, device: torch.device) -> HeteroMRINet:
    model = HeteroMRINet(arch, shape)
    model.load_state_dict(state_dict)
    return model.to(device).eval()
