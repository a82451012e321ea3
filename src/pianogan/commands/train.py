"""`pianogan train`: train DCGAN, SpecGAN, StyleGAN2-ADA or the long-form model on a prepared dataset."""

from __future__ import annotations

import argparse
import json
import sys

from ..devices import DEVICE_CHOICES
from ..models import MODELS

HELP = f"train a GAN ({', '.join(MODELS)}) on a prepared dataset"
DESCRIPTION = """\
Train a generator of spectrogram images on a dataset made by `pianogan prepare` (its "train"
split, or every clip if it has none). The spectrogram preset and normalisation statistics come
from the dataset and are stored in every checkpoint, so `pianogan generate RUN` needs nothing else.

RUN gets checkpoints/step-N.pt (atomic, the newest --keep kept, `latest` names the newest),
generator.safetensors (EMA weights), samples/step-N.png (+ WAVs), tb/ (TensorBoard:
`tensorboard --logdir RUN/tb`), metrics.jsonl and config.json.
--steps is the run's total number of generator steps: `--resume` continues the run in RUN from its
last checkpoint up to --steps, exactly as if it had never stopped (same batches, latents, losses).
Several processes: `torchrun --nproc_per_node=G -m pianogan train ...` (same options; --batch is
the global batch, split across processes; NCCL on GPUs, gloo on CPUs)."""

EPILOG = """examples:
  pianogan train --model dcgan --data data/tiny --out runs/dcgan-tiny --config tiny
  pianogan train --model specgan --data data/10s-256 --out runs/specgan --steps 50000
  pianogan train --model specgan --data data/10s-256 --out runs/specgan --steps 80000 --resume
  torchrun --nproc_per_node=4 -m pianogan train --model stylegan2 --data data/20s-512 --out runs/sg2"""


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=MODELS,
                   help="model family")
    p.add_argument("--data", required=True, metavar="DIR", help="prepared dataset directory")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory (created)")
    p.add_argument("--config", metavar="NAME|FILE.json",
                   help='"default" (the paper\'s settings, the default), "tiny" (CPU demo) or a JSON '
                        'file {"base": NAME, "model": {...}, "train": {...}}; with --resume the default is '
                        'the run\'s own, and a config whose model settings differ from it is refused')
    p.add_argument("--steps", type=int, metavar="N", help="total generator steps of the run")
    p.add_argument("--batch", type=int, metavar="B", help="global batch size (default: the config's)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN from its last checkpoint (starts fresh if it has none)")
    p.add_argument("--device", choices=DEVICE_CHOICES,
                   help="where to train (default auto: CUDA when available)")
    p.add_argument("--amp", choices=["auto", "bf16", "off"],
                   help="mixed precision (default auto: bf16 on CUDA and on CPUs with AVX-512 BF16/AMX)")
    p.add_argument("--sample-every", type=int, metavar="K", help="sample grid + WAVs every K steps")
    p.add_argument("--ckpt-every", type=int, metavar="K", help="checkpoint every K steps")
    p.add_argument("--log-every", type=int, metavar="K", help="TensorBoard scalars every K steps")
    p.add_argument("--keep", type=int, metavar="N", help="checkpoints to keep (default 3)")
    p.add_argument("--seed", type=int, metavar="S", help="seed of weights, latents and data order")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def summary_line(s: dict) -> str:
    final = ", ".join(f"{k} {v:.4g}" for k, v in s["final"].items() if k in ("loss/D", "loss/G"))
    where = s["checkpoint"] or s["run"]
    return (f"trained {s['model']} to step {s['steps']} ({s['new_steps']} new) in {s['seconds']:.1f} s "
            f"({s['s_per_step']:.3g} s/step, {s['real_img_per_s']:.1f} real img/s, {s['device']}, "
            f"amp {s['amp']}, {s['world_size']} process(es)); {final}; checkpoint {where}")


def run(args) -> int:
    from ..train.precision import keep_freed_memory
    from ..train.trainer import Trainer

    overrides = {"steps": args.steps, "batch_size": args.batch, "device": args.device, "amp": args.amp,
                 "sample_every": args.sample_every, "ckpt_every": args.ckpt_every,
                 "log_every": args.log_every, "keep_checkpoints": args.keep, "seed": args.seed}
    config = args.config if (args.config is not None or args.resume) else "default"
    trainer = Trainer(args.model, args.data, args.out, config=config, resume=args.resume,
                      overrides=overrides, progress=not args.no_progress)
    if trainer.device.type == "cpu":
        # This process does nothing but train: let it keep freed memory (no page faults on
        # every step's activations; process-wide, so the command's choice, not the Trainer's).
        keep_freed_memory()
    summary = trainer.run()
    if trainer.env.is_main:
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(summary_line(summary))
    sys.stdout.flush()
    return 0
