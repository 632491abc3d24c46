"""Model files and model cards.

A model file (``model.pt``) holds the weights together with what is needed to use them
safely: architecture, input spec and model ID. It is read with ``torch.load(weights_only=True)``
(plain tensors and containers only; no code is unpickled). The model card (JSON for machines,
Markdown for people) adds training subjects, input checksums, split, hyper-parameters,
metrics, software versions and seed.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path
from typing import Any

import torch

from cohortflow.classify.inputs import InputSpec
from cohortflow.classify.model import Architecture
from cohortflow.errors import InputError
from cohortflow.io.atomic import atomic_output_file

FORMAT = "cohortflow-cnn/1"


def model_id(state_dict: dict[str, torch.Tensor]) -> str:
    """A content ID of the weights: the same weights always get the same ID."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.numpy().tobytes())
    return "cnn-" + h.hexdigest()[:16]


def save_model(
    target: Path | str, state_dict: dict, arch: Architecture, spec: InputSpec, model: str
) -> None:
    payload = {
        "format": FORMAT,
        "model_id": model,
        "architecture": arch.as_dict(),
        "input_spec": spec.as_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    # Saved through a buffer: torch.save names the zip archive's folder after the file it
    # writes, which would put the temporary file's random name into the model's bytes.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_output_file(target) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_model(path: Path | str) -> tuple[dict, Architecture, InputSpec, str]:
    """(state_dict, architecture, input spec, model ID) of a model file, checked."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        raise InputError(path, f"cannot read model file: {type(exc).__name__}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, f"not a cohortflow model file (expected format {FORMAT})")
    state = payload["state_dict"]
    if model_id(state) != payload["model_id"]:
        raise InputError(path, "the weights do not match the model ID stored with them")
    arch = Architecture.from_dict(payload["architecture"])
    spec = InputSpec.from_dict(payload["input_spec"])
    return state, arch, spec, payload["model_id"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def card_markdown(card: dict) -> str:
    """A human-readable model card."""
    a, s, t = card["architecture"], card["input_spec"], card["training"]
    lines = [
        f"# Model card: {card['model_id']}",
        "",
        f"{card['description']}",
        "",
        "## Intended use",
        card["intended_use"],
        "",
        "## Architecture",
        f"- {a['name']}: {len(a['filters'])} blocks Conv3d(k={a['kernel_size']}, "
        f"padding {a['padding']}) → ReLU → MaxPool3d(2) → BatchNorm3d, filters "
        f"{', '.join(map(str, a['filters']))}; global average pooling; Linear {a['dense_units']}"
        f" + ReLU; Dropout {a['dropout']}; Linear 1 + sigmoid",
        f"- parameters: {card['parameters']:,}",
        "",
        "## Input",
        f"- WM cluster map (thresholded RFCM membership) in {s['space']}, grid "
        f"{'×'.join(map(str, s['source_shape']))} at "
        f"{'×'.join(_fmt(v) for v in s['source_voxel_mm'])} mm",
        f"- network input: block average to {s['resolution_mm']:g} mm, box "
        f"{'×'.join(map(str, s['shape']))} starting at voxel {tuple(s['offset'])}",
        "",
        "## Training",
        f"- subjects: {len(t['train'])} training, {len(t['val'])} validation "
        f"(pseudonyms and input SHA-256 in the JSON card)",
        f"- labels: {t['label_counts']}",
        f"- hyper-parameters: {', '.join(f'{k} {v}' for k, v in card['hyperparameters'].items())}",
        f"- seed {card['seed']}, device {t['device']}, epochs run {t['epochs_run']}, "
        f"kept epoch {t['best_epoch']} (val accuracy {_fmt(t['best_val_accuracy'])}, "
        # No training time here: it measures the machine, and would make two runs' cards
        # differ (it is in the JSON card, where compare-runs sets timings aside).
        f"val loss {_fmt(t['best_val_loss'])})",
        "",
        "## Evaluation (cross-validation on held-out subjects)",
    ]
    ev = card.get("evaluation")
    if ev:
        lines.append(f"- split strategy {ev['split']['strategy']}: {ev['description']}")
        lines.append(f"- runs: {ev['runs']}")
        lines.append("")
        lines.append("| metric | mean | SD |")
        lines.append("|---|---|---|")
        for key, (mean, sd) in ev["summary"].items():
            lines.append(f"| {key} | {_fmt(mean)} | {_fmt(sd)} |")
        perm = ev.get("permutation")
        if perm:
            lines.append("")
            lines.append(
                f"Label permutation test: {perm['n']} permutations, null accuracy "
                f"{_fmt(perm['null_mean'])} ± {_fmt(perm['null_sd'])}, observed "
                f"{_fmt(perm['observed'])}, p = {_fmt(perm['p_value'])}"
            )
    else:
        lines.append("- none")
    lines += [
        "",
        "## Limitations",
        card["limitations"],
        "",
        "## Software",
        ", ".join(f"{k} {v}" for k, v in card["software"].items()),
        "",
    ]
    return "\n".join(lines)
