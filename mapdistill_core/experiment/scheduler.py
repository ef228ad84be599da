"""Runs a plan's pending runs in worker processes (``python -m mapdistill_core.experiment PLAN RUN``),
``parallel`` at a time, teacher runs first (distilled runs wait for the shipped teacher), with one
progress bar for the plan (its ETA) and one per worker; a worker dies with the plan's process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from mapdistill_core.config import config_to_dict
from mapdistill_core.errors import RunFailedError, TeacherNotReadyError
from mapdistill_core.experiment.plan import Plan, RunSpec
from mapdistill_core.training.run_log import RunLog


def planned_steps(spec: RunSpec, train_samples: int) -> int:
    if not spec.train:
        return 0
    t = spec.config.train
    return t.epochs * (train_samples // t.batch_size)


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGTERM when the experiment process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Scheduler:
    """Runs pending specs in worker processes, ``parallel`` at a time, teacher runs first (distilled
    runs wait for the shipped teacher), with one progress bar for the plan and one per worker.

    Args:
        plan: the plan's runs (names, order, device); out: their folders.
        pending: the runs to train.
        teacher_ready: whether the distilled runs may start (the shipped teacher is the best one).
        finished: called in this process after a run's worker exited 0 (its record is written).
    """

    def __init__(
        self,
        plan: Plan,
        out: Path,
        pending: list[RunSpec],
        parallel: int,
        teacher_ready: Callable[[], bool],
        finished: Callable[[RunSpec], None],
    ):
        from mapdistill_core.training.datasets import build_train_set

        self.plan, self.out, self.queue, self.parallel = plan, out, list(pending), parallel
        self.teacher_ready, self.finished = teacher_ready, finished
        self.total_runs = len(plan.specs)
        self.index = {s.name: i + 1 for i, s in enumerate(plan.specs)}
        sizes = {}
        for spec in pending:
            key = json.dumps(config_to_dict(spec.config.data), sort_keys=True)
            if key not in sizes:
                sizes[key] = len(build_train_set(spec.config.data))
            sizes[spec.name] = planned_steps(spec, sizes[key])
        self.steps = {s.name: sizes[s.name] for s in pending}
        self.active: dict[str, tuple[subprocess.Popen, tqdm]] = {}
        self.failed: list[str] = []

    def env(self) -> dict:
        env = dict(os.environ)
        from mapdistill_core.inference import resolve_device

        if resolve_device(self.plan.config.device).type == "cpu":
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.parallel))
        return env

    def start(self, spec: RunSpec, slot: int) -> None:
        folder = self.out / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mapdistill_core.experiment", self.plan.path, spec.name]
        log = open(folder / "worker.log", "a", encoding="utf-8")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env(), preexec_fn=die_with_parent
        )
        log.close()
        bar = tqdm(
            total=self.steps[spec.name],
            initial=RunLog(folder).last_step(),
            desc=f"run {self.index[spec.name]}/{self.total_runs} {spec.name}",
            unit="step",
            position=slot + 1,
            leave=False,
        )
        self.active[spec.name] = (process, bar)

    def next_ready(self) -> RunSpec | None:
        teachers_pending = any(s.kind == "teacher" for s in self.queue) or any(
            self.plan.spec(n).kind == "teacher" for n in self.active
        )
        for spec in self.queue:
            if spec.needs_teacher and (teachers_pending or not self.teacher_ready()):
                continue
            self.queue.remove(spec)
            return spec
        return None

    def run(self) -> None:
        done = sum(RunLog(self.out / n).last_step() for n in self.steps)
        # steps trained before this start count as done but not into the rate (and the ETA)
        overall = tqdm(total=sum(self.steps.values()), initial=done, desc="plan", unit="step", position=0)
        try:
            while self.queue or self.active:
                while len(self.active) < self.parallel and not self.failed:
                    spec = self.next_ready()
                    if spec is None:
                        break
                    self.start(spec, len(self.active))
                if not self.active:
                    if self.queue and not self.failed:
                        raise TeacherNotReadyError(
                            f"{self.plan.path}: runs {[s.name for s in self.queue]} wait "
                            "for a teacher that no run will produce"
                        )
                    break
                time.sleep(1.0)
                for name, (process, bar) in list(self.active.items()):
                    step = RunLog(self.out / name).last_step()
                    overall.update(max(0, step - bar.n))
                    bar.update(max(0, step - bar.n))
                    if process.poll() is None:
                        continue
                    bar.close()
                    del self.active[name]
                    if process.returncode == 0:
                        self.finished(self.plan.spec(name))
                    else:
                        self.failed.append(name)
                        tqdm.write(f"{name}: failed (exit {process.returncode}); see {self.out / name}/worker.log")
        except BaseException:
            for process, _ in self.active.values():
                process.terminate()
            for process, _ in self.active.values():
                process.wait()
            raise
        finally:
            overall.close()
        if self.failed:
            raise RunFailedError(f"runs failed: {', '.join(self.failed)} (their worker.log says why)")
