"""One training run: the aU-Net trained from one seed (algorithm A2, METHOD.md section 5).

``train_run`` trains (or continues the checkpoint in ``run_dir``) up to ``until_iterations`` and
stops there cleanly with a checkpoint, so successive halving (A1) can continue a run later.
Every ``validate_every`` iterations (and at the last one) it computes the validation score
(``train.validation_metric``; the paper's Jaccard by default), keeps the best state in ``run_dir/model/`` and writes ``run_dir/checkpoint.pt``. On the CPU, a
run that is stopped (``until_iterations``, Ctrl-C, crash) and resumed ends bit-identical to an
uninterrupted one. Ctrl-C finishes the current iteration, writes a checkpoint and raises
``KeyboardInterrupt``; a second Ctrl-C aborts at once (resume then starts at the last checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checks import train_problems
from ..config import Config, TrainConfig, resume_conflicts
from ..data.preprocess import PreparedDataset, load_prepared
from ..errors import InputError, Stopped
from ..evaluation.metrics import jaccard_from_counts
from ..io.atomic import write_text
from ..io.lock import folder_lock
from ..model.device import autocast, maybe_compile, memory_format, native_bf16, resolve_device
from ..model.folder import INFO, LOG, WEIGHTS, model_dir, read_model_info, write_model_info, write_weights
from ..model.shapes import margins
from ..model.unet import UNet
from ..progress import Progress
from .augment import apply_batch
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .feasibility import check_feasible
from .loss import masked_soft_dice_loss
from .producers import Prefetcher, producer_count
from .runtime import (
    batch_to_device,
    execution_mode,
    rng_state,
    seed_everything,
    set_rng_state,
    state_copy,
    stop_on_signals,
)
from .sampling import PatchSampler
from .validation import all_scores, validation_counts, validation_score


def learning_rate_at(tc: TrainConfig, step: int) -> float:
    """The learning rate of optimisation step ``step`` (0-based: the step that completes iteration
    ``step + 1``) of a run of ``tc.iterations`` iterations.

    With ``W = tc.warmup_iterations`` and ``T = tc.iterations``: ``lr * (step + 1) / W`` for
    ``step < W``; after that, with ``p = (step - W) / (T - W)``, ``lr`` (constant),
    ``lr * (1 + cos(pi p)) / 2`` (cosine) or ``lr * (1 - p)`` (linear). It depends on the step only,
    so a stopped and resumed run follows the same curve.
    """
    base, warmup, total = tc.learning_rate, tc.warmup_iterations, tc.iterations
    if step < warmup:
        return base * (step + 1) / warmup
    if tc.lr_schedule == "constant":
        return base
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    if tc.lr_schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * p))
    return base * (1.0 - p)


def check_schedule(tc: TrainConfig) -> None:
    """Refuse a run's settings with a problem (``checks.train_problems``: length, schedule, warm-up,
    validation metric, weight average, batch size)."""
    problems = train_problems(tc)
    if problems:
        raise InputError(None, "; ".join(problems))


@dataclass(frozen=True)
class RunResult:
    """Where a run stands after ``train_run``.

    best_score: best validation score so far, of ``train.validation_metric`` (None before the first
        validation).
    best_iteration: the iteration of that state (0 if none). iterations_done: iterations trained.
    history: ``(iteration, score)`` per validation, oldest first (per-case values are in
        ``model/model.json``).
    seconds: wall-clock seconds of this call.
    """

    best_score: float | None
    best_iteration: int
    iterations_done: int
    history: tuple[tuple[int, float], ...]
    seconds: float


@dataclass
class _Status:
    iteration: int = 0
    best_score: float | None = None
    best_iteration: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0


def run_settings(run_dir: str | Path) -> tuple[Config, int]:
    """The configuration and seed a run folder was started with (for ``--resume``).

    They are recorded in ``model/`` before the first iteration, so a run killed before its first
    checkpoint resumes with them too.

    Raises:
        InputError: the folder holds no training run.
    """
    if not (model_dir(run_dir) / INFO).is_file():
        raise InputError(run_dir, "holds no training run to resume (start one without --resume)")
    config, info = read_model_info(model_dir(run_dir))
    return config, int(info["seed"])


def train_run(prep_dir: str | Path, run_dir: str | Path, config: Config, seed: int = 0,
              until_iterations: int | None = None, device: str | torch.device = "auto",
              resume: bool = True, progress: bool = True) -> RunResult:
    """Train one model from ``seed``, or continue the run in ``run_dir``, up to ``until_iterations``.

    Args:
        prep_dir: prepared-case cache (``hepaseg preprocess``); trains on split ``train``,
            validates on split ``val``.
        run_dir: gets ``checkpoint.pt`` and ``model/``.
        config: the full configuration; ``config.train.iterations`` is the run's length (it decides
            the last validation), ``until_iterations`` (default: that length) where this call stops.
        seed: decides the initial weights, the patches, the augmentation and dropout.
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: continue the run in ``run_dir`` (with or without a checkpoint yet); if False, a
            run there is an error.
        progress: show the progress on stderr (``hepaseg.progress``).

    Raises:
        InputError: bad cache, a run of another configuration or seed, bad settings, another
            process writing ``run_dir``, or a run that does not fit the device's memory or (``auto``
            fallen back to the CPU) would take longer than a day (``feasibility``).
        Stopped: after the first Ctrl-C or SIGTERM, once the checkpoint is written.
    """
    started = time.perf_counter()
    total = config.train.iterations
    until = total if until_iterations is None else int(until_iterations)
    check_schedule(config.train)
    if not 0 < until <= total:
        raise InputError(None, f"until_iterations must lie in 1..{total} (config.train.iterations), got {until}")
    dev = resolve_device(device)
    data = load_prepared(prep_dir)
    if not data.split("val"):
        raise InputError(prep_dir, "has no validation case (split 'val'); training needs one to choose its model")
    with folder_lock(run_dir):
        saved = _load_for_resume(Path(run_dir), config, seed, resume)
        done = 0 if saved is None else saved["iteration"]
        if done > until:
            raise InputError(run_dir, f"has trained {done} iterations already, more than {until}")
        check_feasible(config, dev, str(device), until - done, config.train.mixed_precision and native_bf16(dev))
        run = _Run(data, Path(run_dir), config, seed, dev, saved)
        stopped = run.train(until, progress)
    if stopped is not None:
        raise Stopped(stopped, f"stopped at iteration {run.status.iteration}; checkpoint in "
                               f"{run.run_dir / CHECKPOINT} (continue with --resume)")
    s = run.status
    history = tuple((h["iteration"], h["score"]) for h in s.history)
    return RunResult(s.best_score, s.best_iteration, s.iteration, history, time.perf_counter() - started)


class _Run:
    """The objects of one run: network, optimizer, sampler, status, and their checkpoint."""

    def __init__(self, data: PreparedDataset, run_dir: Path, config: Config, seed: int, dev: torch.device,
                 saved: dict[str, Any] | None) -> None:
        self.val_cases = data.split("val")
        self.run_dir, self.config, self.seed, self.dev = run_dir, config, seed, dev
        tc = config.train
        out_size = config.patch.output_size
        seed_everything(seed)
        self.net = UNet(config.model)  # initial weights from the seed, on the CPU: the same on every device
        self.sampler = PatchSampler(data.split("train"), tc.rater, out_size, margins(config.model, out_size),
                                    config.patch, config.augment, seed)
        margins(config.model, config.infer.tile_output_size)  # an invalid validation tile fails now, not later
        self.fmt = memory_format(tc.channels_last)
        self.net.to(dev, memory_format=self.fmt)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=tc.learning_rate, betas=tc.betas, eps=tc.eps,
                                          fused=dev.type == "cuda")
        self.amp = tc.mixed_precision and native_bf16(dev)
        self.ema = weight_average(self.net, tc.ema_decay)
        self.status = _Status()
        self.log = _Log(model_dir(run_dir) / LOG)
        if saved is not None:
            self.net.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.sampler.set_state(saved["sampler"])
            if self.ema is not None:
                self.ema.load_state_dict(saved["ema"])
            set_rng_state(saved["rng"])
            best = saved["best"]
            self.status = _Status(saved["iteration"], best["score"], best["iteration"], best["state"],
                                  list(saved["history"]), saved["train_seconds"])
        self.sampler_state = self.sampler.state()  # after the last batch consumed
        folder = model_dir(run_dir)
        write_model_info(folder, config, self._info())
        if self.status.best_state:  # the checkpoint's best state (a crash may have left a newer file)
            write_weights(folder, self.status.best_state)
        else:
            (folder / WEIGHTS).unlink(missing_ok=True)
        self.log.truncate(self.status.iteration)
        self.saved_at = self.status.iteration if saved is not None else -1
        self.clock = time.perf_counter()

    def train(self, until: int, progress: bool) -> int | None:
        """Train up to iteration ``until``; the signal that stopped it first, if one did. Ends with a
        checkpoint."""
        tc, status, dev = self.config.train, self.status, self.dev
        step = _Stepper(self.net, maybe_compile(self.net, tc.compile, dev), self.optimizer, dev, self.amp)
        first, t0 = status.iteration, time.perf_counter()
        loss_sum, loss_count = torch.zeros((), device=dev), 0
        bar = Progress(until, "train", "it", initial=first, enabled=progress)
        with execution_mode(dev), stop_on_signals() as stop, \
                Prefetcher(self.sampler, tc.batch_size, pin=dev.type == "cuda",
                           producers=producer_count(tc.batch_producers, dev)) as batches:
            while status.iteration < until and stop.signum is None:
                batch, host = batches.get()
                image, target, weight = apply_batch(batch.augment, *batch_to_device(host, dev))
                if tc.lr_schedule != "constant" or tc.warmup_iterations:
                    for group in self.optimizer.param_groups:
                        group["lr"] = learning_rate_at(tc, status.iteration)
                loss_sum += step(image.contiguous(memory_format=self.fmt), target, weight)
                if self.ema is not None:
                    self.ema.update_parameters(self.net)
                loss_count += 1
                status.iteration += 1
                self.sampler_state = batch.sampler_state
                it = status.iteration
                bar.update()
                if it % tc.log_every == 0 or it == until:
                    rate = (it - first) / (time.perf_counter() - t0)
                    loss = loss_sum.item() / loss_count
                    self.log.write({"iteration": it, "loss": loss, "it_per_s": rate, "eta_s": (until - it) / rate})
                    bar.set_postfix(loss=f"{loss:.4f}", best=f"{status.best_score or 0.0:.4f}")
                    loss_sum, loss_count = torch.zeros((), device=dev), 0
                if it % tc.validate_every == 0 or it == tc.iterations:
                    self.validate()
                    self.checkpoint()
            if self.saved_at != status.iteration:
                self.checkpoint()
        bar.close()
        return stop.signum

    @property
    def kept_net(self) -> torch.nn.Module:
        """The network that is validated and kept: the trained one, or its weight average."""
        return self.net if self.ema is None else self.ema.module

    def validate(self) -> None:
        """Validate, record the history, keep (and write) the best state."""
        status, t0, metric = self.status, time.perf_counter(), self.config.train.validation_metric
        counts = validation_counts(self.kept_net, self.val_cases, self.config, self.dev, self.amp,
                                   self.config.train.channels_last)
        mean = validation_score(counts, metric)
        # "score" is the score of train.validation_metric ("metric"); "cases" the per-case Jaccard,
        # "scores" every metric, "counts" the per-case voxel counts (intersection, predicted, reference)
        status.history.append({"iteration": status.iteration, "score": mean, "metric": metric,
                               "scores": all_scores(counts), "cases": {k: jaccard_from_counts(*v) for k, v in counts.items()},
                               "counts": {k: list(v) for k, v in counts.items()},
                               "seconds": time.perf_counter() - t0})
        if status.best_score is None or mean > status.best_score:
            status.best_score, status.best_iteration = mean, status.iteration
            status.best_state = state_copy(self.kept_net)
            write_weights(model_dir(self.run_dir), status.best_state)
        self.log.write({"iteration": status.iteration, "val_score": mean, "validation_metric": metric, "best_score": status.best_score,
                        "best_iteration": status.best_iteration})

    def checkpoint(self) -> None:
        """Write ``checkpoint.pt`` and refresh ``model/model.json``."""
        now = time.perf_counter()
        self.status.train_seconds += now - self.clock
        self.clock = now
        s = self.status
        save_checkpoint(self.run_dir, {
            "seed": self.seed, "config": self.config.to_dict(), "iteration": s.iteration,
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "sampler": self.sampler_state, "rng": rng_state(), "history": s.history,
            "train_seconds": s.train_seconds,
            "best": {"score": s.best_score, "iteration": s.best_iteration, "state": s.best_state},
        })
        write_model_info(model_dir(self.run_dir), self.config, self._info())
        self.saved_at = s.iteration

    def _info(self) -> dict[str, Any]:
        s = self.status
        return {"seed": self.seed, "iterations_done": s.iteration, "best_iteration": s.best_iteration,
                "best_score": s.best_score, "validation_metric": self.config.train.validation_metric,
                "train_seconds": s.train_seconds, "history": s.history}


def weight_average(net: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``net``'s weights and buffers (None if ``decay`` is 0)."""
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class _Stepper:
    """One optimisation step; falls back to the eager network if the compiled one fails at first use."""

    def __init__(self, net: torch.nn.Module, forward: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 device: torch.device, amp: bool) -> None:
        self.net, self.forward, self.optimizer, self.device, self.amp = net, forward, optimizer, device, amp
        self.tried = forward is net

    def __call__(self, image: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.tried:
            return self._step(image, target, weight)
        self.tried = True
        backup = state_copy(self.net)  # a failed compiled forward may have moved the BN statistics
        try:
            return self._step(image, target, weight)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: train eagerly instead
            print(f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]}); training without it",
                  file=sys.stderr)
            self.net.load_state_dict(backup)
            self.forward = self.net
            return self._step(image, target, weight)

    def _step(self, image: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            logits = self.forward(image)
        loss = masked_soft_dice_loss(logits, target, weight)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def _load_for_resume(run_dir: Path, config: Config, seed: int, resume: bool) -> dict[str, Any] | None:
    """The checkpoint in ``run_dir`` if there is one, else None; a run started there (its checkpoint
    or its recorded ``model/``) must have the same seed and configuration (``train.iterations`` aside)."""
    path = run_dir / CHECKPOINT
    started = path.exists() or (model_dir(run_dir) / INFO).is_file()
    if not started:
        return None
    if not resume:
        raise InputError(run_dir, "already holds a training run; resume it or choose another folder")
    saved = load_checkpoint(path) if path.exists() else None
    if saved is not None:
        stored, stored_seed, where = Config.from_dict(saved["config"]), saved.get("seed"), path
    else:
        (stored, stored_seed), where = run_settings(run_dir), model_dir(run_dir)
    if stored_seed != seed:
        raise InputError(where, f"was trained with seed {stored_seed}, not {seed}")
    changed = resume_conflicts("training", stored, config)
    if changed:
        raise InputError(where, f"was trained with another configuration (differs in {', '.join(changed)})")
    return saved


class _Log:
    """The JSONL training log; each record gets the wall-clock time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({**record, "time": time.time()}) + "\n")

    def truncate(self, iteration: int) -> None:
        """Drop the records after ``iteration`` (they belong to an interrupted, repeated stretch)."""
        keep = []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    if json.loads(line).get("iteration", 0) <= iteration:
                        keep.append(line + "\n")
        write_text(self.path, "".join(keep))
