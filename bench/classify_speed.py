"""Benchmark: CNN training seconds per epoch, inference seconds per subject, peak memory.

Two input settings, each in its own child process (so peak memory belongs to it alone):

* ``demo``: the demo config (2 mm block averages, 80×96×80 box, filters ×0.25, 'same' padding);
* ``full``: the published network on the whole 1 mm template grid (197×233×189; the paper's
  193×229×193 crop is the same order), 64-128-256 filters, 'valid' padding.

An epoch is one epoch of the pipeline's own training loop (``train_model``): ``--train``
subjects in batches of 2 (forward, backward, Adam step) plus the validation pass over
``--val`` subjects. Inputs are random
maps of the right shape: speed does not depend on the values. CPU figures use ``--threads``
threads (default 2, the CI machine); with a CUDA GPU visible, GPU figures follow (peak GPU
memory from torch's allocator).

    python bench/classify_speed.py                      # both settings, CPU (and GPU if any)
    python bench/classify_speed.py --settings demo --epochs 3
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SETTINGS = {
    "demo": {"shape": (80, 96, 80), "width": 0.25, "padding": "same", "resolution": "2 mm"},
    "full": {"shape": (197, 233, 189), "width": 1.0, "padding": "valid", "resolution": "1 mm"},
}


def child(name: str, device: str, threads: int, epochs: int, n_train: int, n_val: int) -> dict:
    import numpy as np
    import torch

    from cohortflow.classify.model import Architecture, count_parameters
    from cohortflow.classify.train import TrainSettings, load_network, predict_logits, train_model

    s = SETTINGS[name]
    arch = Architecture.from_config({"width": s["width"], "padding": s["padding"]})
    rng = np.random.default_rng(0)
    x_train = rng.random((n_train, *s["shape"]), dtype=np.float32)
    y_train = (np.arange(n_train) % 2).astype(np.float32)
    x_val = rng.random((n_val, *s["shape"]), dtype=np.float32)
    y_val = (np.arange(n_val) % 2).astype(np.float32)
    # the real training loop: batches of 2, Adam, validation pass, checkpoint bookkeeping
    settings = TrainSettings(max_epochs=epochs, patience=epochs, device=device)
    result = train_model(arch, x_train, y_train, x_val, y_val, settings, seed=0, threads=threads)
    ends = [row["seconds"] for row in result.history]
    epoch_seconds = np.diff([0.0, *ends])
    dev = torch.device(device)
    model = load_network(arch, s["shape"], result.state_dict, dev)
    infer = []
    for i in range(max(3, n_val)):
        start = time.perf_counter()
        predict_logits(model, x_val[i % n_val : i % n_val + 1], dev, 1)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        infer.append(time.perf_counter() - start)
    out = {
        "setting": name,
        "input": f"{'×'.join(map(str, s['shape']))} at {s['resolution']}",
        "filters": "-".join(map(str, arch.filters)),
        "parameters": count_parameters(model),
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "threads": threads,
        # the first epoch includes one-off allocation; report the later ones when there are any
        "epoch_s": float(np.median(epoch_seconds[1:] if epochs > 1 else epoch_seconds)),
        "first_epoch_s": float(epoch_seconds[0]),
        "infer_s": float(np.median(infer[1:])),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    if dev.type == "cuda":
        out["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per setting (CPU)")
    ap.add_argument("--full-epochs", type=int, default=1, help="epochs at 1 mm full size (CPU)")
    ap.add_argument("--train", type=int, default=6, help="training subjects per epoch")
    ap.add_argument("--val", type=int, default=2, help="validation subjects per epoch")
    ap.add_argument("--child", nargs=2, metavar=("SETTING", "DEVICE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, device = args.child
        epochs = args.full_epochs if name == "full" and device == "cpu" else args.epochs
        print(json.dumps(child(name, device, args.threads, epochs, args.train, args.val)))
        return
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        for name in args.settings:
            options = {"--threads": args.threads, "--epochs": args.epochs,
                       "--full-epochs": args.full_epochs, "--train": args.train,
                       "--val": args.val}  # fmt: skip
            cmd = [sys.executable, __file__, "--child", name, device]
            cmd += [str(v) for item in options.items() for v in item]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                print(f"{name} on {device} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"# {rows[-1]}", file=sys.stderr, flush=True)
    head = ("setting", "device", "input", "filters", "params", "s/epoch", "s/subject (infer)",
            "peak RSS GB", "peak GPU GB")  # fmt: skip
    print(
        f"epoch = {args.train} training subjects (batch 2, forward+backward+Adam) + "
        f"{args.val} validation subjects; CPU threads {args.threads}"
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = (r["setting"], r["device"], r["input"], r["filters"], f"{r['parameters']:,}",
                 f"{r['epoch_s']:.2f}", f"{r['infer_s']:.3f}", f"{r['peak_rss_gb']:.2f}",
                 f"{r['peak_gpu_gb']:.2f}" if "peak_gpu_gb" in r else "–")  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
