"""The training loop: AdamW with warm-up and cosine decay, gradient clipping, mixed precision on
CUDA, DistributedDataParallel under torchrun, JSONL metrics, validation mAP, atomic safetensors
checkpoints (best and last weights, plus a resumable training state).

Output folder:
    config.yaml          the experiment config as run
    log.jsonl            one JSON line per step and per validation (training/run_log.py: its writer and reader)
    state.safetensors    weights, optimizer, scheduler, position, RNG (for --resume)
    last.safetensors     model weights + config metadata after the last epoch
    best.safetensors     the weights with the best validation mAP
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from mapdistill_core.checkpoint import save_model
from mapdistill_core.config import config_to_dict
from mapdistill_core.data.batch import collate, to_device
from mapdistill_core.distill.distiller import Distiller
from mapdistill_core.inference import resolve_device
from mapdistill_core.interrupts import sigint_deferred
from mapdistill_core.models.criterion import MapCriterion
from mapdistill_core.models.matcher import build_matcher
from mapdistill_core.models.model import MapModel, build_model
from mapdistill_core.results import provenance
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.datasets import build_dataset, build_train_set, data_metadata
from mapdistill_core.training.evaluation import evaluate_model
from mapdistill_core.training.run_log import RunLog
from mapdistill_core.training.state import load_state, save_state

LossFn = Callable[[dict, dict, MapModel, int], tuple[dict[str, torch.Tensor], dict]]
"""(outputs, batch, model, step) -> (terms, detached parts): the loss at optimizer step ``step``
(0-based) is the sum of the named terms ("map", or "map" plus the distillation terms); parts are
their detached pieces, for the log."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training, after the training state was saved at the step reached."""


class EpochSampler(Sampler[int]):
    """This process's share of a seeded per-epoch permutation, optionally from a given batch on
    (so a resumed run sees exactly the batches it had not seen)."""

    def __init__(self, size: int, rank: int, world: int, seed: int):
        self.size, self.rank, self.world, self.seed = size, rank, world, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        per_rank = self.size // self.world
        return order[self.rank * per_rank : (self.rank + 1) * per_rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        return self.size // self.world - self.start


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def map_loss(criterion: MapCriterion) -> LossFn:
    def loss(outputs: dict, batch: dict, model: MapModel, step: int) -> tuple[dict, dict]:
        total, parts = criterion(outputs, batch)
        return {"map": total}, parts

    return loss


def term_gradients(terms: dict[str, torch.Tensor], params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each loss term's gradient with respect to ``params``, flattened: name -> float32 [P]. A term
    that is a constant in this batch (the pseudo-label head on a batch without a labelled sample)
    has a zero gradient."""
    out = {}
    for name, term in terms.items():
        if not term.requires_grad:
            out[name] = torch.cat([torch.zeros_like(p).float().flatten() for p in params])
            continue
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        out[name] = torch.cat(
            [(torch.zeros_like(p) if g is None else g).float().flatten() for g, p in zip(grads, params, strict=True)]
        )
    return out


def gradient_shares(grads: dict[str, torch.Tensor]) -> dict[str, float]:
    """Each term's share of the summed gradient norms: ||d term / d params|| / sum over terms.

    A term whose share is tiny (under 1 %) barely moves the model, whatever its value in the log.
    """
    norms = {name: float(g.norm()) for name, g in grads.items()}
    total = sum(norms.values()) or 1.0
    return {name: norm / total for name, norm in norms.items()}


def gradient_cosines(grads: dict[str, torch.Tensor], reference: str = "map") -> dict[str, float]:
    """Cosine between each other term's gradient and the ``reference`` term's, in [-1, 1].

    Above 0 a term pushes the weights the way the task loss does; below 0 it works against it.
    """
    ref = grads[reference].double()
    out = {}
    for name, g in grads.items():
        if name != reference:
            cos = float(torch.nn.functional.cosine_similarity(g.double(), ref, dim=0, eps=1e-30))
            out[name] = min(1.0, max(-1.0, cos))
    return out


class Trainer:
    """Trains ``config.model`` on ``config.data``; writes into ``out`` (see the module docstring).

    Args:
        loss_fn: the loss (default: the map loss of the model config); distillation passes its own.
        max_steps: stop after this many optimizer steps in total (0: run all epochs); a run cut short
            this way is validated where it stops, so it has a best.safetensors like a full run.
    """

    def __init__(
        self,
        config: ExperimentConfig,
        out: str | Path,
        device: str = "auto",
        loss_fn: LossFn | None = None,
        max_steps: int = 0,
        progress: bool = True,
    ):
        self.config, self.out, self.max_steps, self.progress = config, Path(out), max_steps, progress
        self.run_log = RunLog(self.out)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(device)
        if self.world > 1:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.manual_seed(config.train.seed)
        self.model = build_model(config.model).to(self.device)
        if self.world > 1 and self.rank != 0:
            dist.barrier()  # wait while rank 0 generates missing data
            self.train_set = build_train_set(config.data)
        else:
            self.train_set = build_train_set(config.data)
            if self.world > 1:
                dist.barrier()
        self.val_set = build_dataset(config.data, "val") if self.rank == 0 and config.train.val_every > 0 else None
        self.data_metadata = data_metadata(self.train_set)
        t = config.train
        self.sampler = EpochSampler(len(self.train_set), self.rank, self.world, t.seed)
        self.loader = DataLoader(
            self.train_set,
            batch_size=t.batch_size,
            sampler=self.sampler,
            num_workers=config.data.workers,
            collate_fn=partial(
                collate,
                image_size=config.model.image_size,
                grid=self.model.grid,
                num_points=config.model.decoder.num_points,
            ),
            drop_last=True,
            pin_memory=self.device.type == "cuda",
        )
        self.steps_per_epoch = len(self.sampler) // t.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"train split has {len(self.train_set)} samples, fewer than a batch of {t.batch_size}")
        backbone = [p for n, p in self.model.named_parameters() if n.startswith("image_encoder.backbone.")]
        others = [p for n, p in self.model.named_parameters() if not n.startswith("image_encoder.backbone.")]
        self.optimizer = torch.optim.AdamW(
            [{"params": others}, {"params": backbone, "lr": t.lr * t.backbone_lr_scale}],
            lr=t.lr,
            weight_decay=t.weight_decay,
        )
        self.net = DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.amp_dtype = None
        if t.amp and self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if loss_fn is None and config.distill is not None:
            loss_fn = Distiller.from_config(config.distill, config.model, self.device, self.amp_dtype)
        self.loss_fn = loss_fn or map_loss(MapCriterion(config.model.loss, build_matcher(config.model.loss)))
        self.loss_module = self.loss_fn if isinstance(self.loss_fn, torch.nn.Module) else None
        self.loss_params = list(self.loss_module.parameters()) if self.loss_module is not None else []
        if self.loss_params:
            self.optimizer.add_param_group({"params": self.loss_params, "lr": t.lr})
        total = t.epochs * self.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, partial(lr_lambda, warmup=t.warmup_steps, total=total, min_ratio=t.min_lr_ratio)
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.position = {"step": 0, "epoch": 0, "batch": 0, "best_map": -1.0}

    @property
    def main(self) -> bool:
        return self.rank == 0

    def log(self, record: dict) -> None:
        if self.main:
            self.run_log.append(record)

    def save(self) -> None:
        if self.main:
            save_state(
                self.out / "state.safetensors",
                self.model,
                self.optimizer,
                self.scheduler,
                self.position,
                self.loss_module,
            )

    def resume(self) -> None:
        path = self.out / "state.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"{path}: nothing to resume (no training state in {self.out})")
        self.position = load_state(path, self.model, self.optimizer, self.scheduler, self.loss_module)
        if self.main:
            self.run_log.truncate(self.position["step"])
            self.log({"step": self.position["step"], "resumed": provenance(out=str(self.out), world_size=self.world)})

    def step(self, batch: dict) -> dict:
        batch = to_device(batch, self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            outputs = self.net(batch)
        terms, parts = self.loss_fn(outputs, batch, self.model, self.position["step"])
        every = self.config.train.grad_share_every
        if self.main and len(terms) > 1 and every and self.position["step"] % every == 0:
            grads = term_gradients(terms, [p for p in self.model.parameters() if p.requires_grad])
            self.log(
                {
                    "step": self.position["step"] + 1,
                    "grad_share": gradient_shares(grads),
                    "grad_cosine": gradient_cosines(grads),
                }
            )
        loss = sum(terms.values())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.world > 1:
            for p in self.loss_params:  # DDP averages the model's gradients; the adapters' are ours
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [*self.model.parameters(), *self.loss_params], self.config.train.grad_clip
        )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: float(v) for k, v in parts.items()} | {"grad_norm": float(grad_norm)}

    def validate(self, epoch: float) -> None:
        """Val mAP after ``epoch`` epochs (a fraction when a run stops part-way); keeps the best weights."""
        result = evaluate_model(self.model, self.val_set, self.device, self.config.train.val_samples)
        self.log({"epoch": epoch, "step": self.position["step"], "val": result.to_dict()})
        if result.mean_ap > self.position["best_map"]:
            self.position["best_map"] = result.mean_ap
            save_model(
                self.out / "best.safetensors",
                self.model,
                {"epoch": epoch, "val_mAP": result.mean_ap, **self.data_metadata},
            )
        if self.progress:
            tqdm.write(
                f"epoch {epoch:.3g} (step {self.position['step']}): val mAP {100 * result.mean_ap:.1f} "
                f"(best {100 * self.position['best_map']:.1f})"
            )

    def run(self, resume: bool = False) -> Path:
        """Train to the end (or ``max_steps``); returns the output folder. Ctrl-C is held until the
        step (or validation) under way ends, then the training state is saved at the step reached and
        TrainingInterrupted raised: ``run(resume=True)`` continues from there."""
        self.out.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume()
        elif self.main:
            self.run_log.clear()
            (self.out / "config.yaml").write_text(yaml.safe_dump(config_to_dict(self.config), sort_keys=False))
            self.log({"meta": provenance(out=str(self.out), world_size=self.world)})
        try:
            self.train_epochs()
        except KeyboardInterrupt:
            self.save()
            self.log({"step": self.position["step"], "interrupted": True})
            raise TrainingInterrupted(
                f"interrupted at step {self.position['step']}; the training state is saved in "
                f"{self.out / 'state.safetensors'}: run again with --resume to continue"
            ) from None
        if self.main:
            save_model(self.out / "last.safetensors", self.model, {"step": self.position["step"], **self.data_metadata})
        if self.world > 1:
            self.log({"step": self.position["step"], "replicas_identical": replicas_identical(self.model)})
        return self.out

    def train_epochs(self) -> None:
        """The epochs from the current position; each step and each validation ends whole (Ctrl-C waits)."""
        t = self.config.train
        done = False
        while self.position["epoch"] < t.epochs and not done:
            epoch = self.position["epoch"]
            self.sampler.set_epoch(epoch, self.position["batch"] * t.batch_size)
            left = self.max_steps - self.position["step"] if self.max_steps else self.steps_per_epoch
            bar = tqdm(
                self.loader,
                total=min(self.steps_per_epoch, self.position["batch"] + left),
                initial=self.position["batch"],
                desc=f"epoch {epoch + 1}/{t.epochs}",
                unit="step",
                disable=not (self.main and self.progress),
            )
            self.model.train()
            tick = time.perf_counter()
            for batch in bar:
                with sigint_deferred():  # the step, its log line and a due checkpoint, whole
                    parts = self.step(batch)
                    self.position["step"] += 1
                    self.position["batch"] += 1
                    now = time.perf_counter()
                    rate = t.batch_size * self.world / (now - tick)
                    tick = now
                    lr = self.scheduler.get_last_lr()[0]
                    self.log(
                        {"step": self.position["step"], "epoch": epoch, "lr": lr, "samples_per_s": rate, "loss": parts}
                    )
                    bar.set_postfix(loss=f"{parts['total']:.3f}")
                    if self.position["step"] % t.checkpoint_every == 0:
                        self.save()
                if self.max_steps and self.position["step"] >= self.max_steps:
                    done = True
                    break
            with sigint_deferred():
                if not done:
                    if self.val_set is not None and (epoch + 1) % t.val_every == 0:
                        self.validate(epoch + 1)
                    self.position.update(epoch=epoch + 1, batch=0)
                elif self.val_set is not None:  # cut short by max_steps: validated (and best saved) where it stops
                    self.validate(epoch + self.position["batch"] / self.steps_per_epoch)
                self.save()


def replicas_identical(model: torch.nn.Module) -> bool:
    """Whether every DDP process holds the same weights (checksums gathered from all ranks)."""
    sums = torch.stack([p.detach().double().sum() for p in model.parameters()]).cpu()
    gathered = [torch.zeros_like(sums) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, sums)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])
