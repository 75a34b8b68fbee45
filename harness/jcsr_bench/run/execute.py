"""Executors: run a plan's work units and hand back their results as they finish.

An executor loads each pending image on the driver (datasets are read where the run
was started), makes its LR image once and runs the image's work units
(``jcsr_bench.run.workunit``). It never writes: the driver's recorder stores what it yields.
:class:`LocalExecutor` runs in this process (``--executor local --workers 1``),
:class:`PoolExecutor` in worker processes of this machine (``--workers N``); the Ray executor
(``jcsr_bench.run.ray_executor``) spreads the units over Ray workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import pickletools
import signal
import sys
import types
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from typing import Any, Protocol

from jcsr_bench.imaging.images import pixel_hash
from jcsr_bench.kit.disk import stop_on_storage_error
from jcsr_bench.kit.errors import JcsrError, one_line
from jcsr_bench.run.plan import DatasetPlan, ImagePlan, Plan, iterate
from jcsr_bench.run.workunit import (
    UnitContext,
    UnitResult,
    WorkUnit,
    evaluate,
    failed,
    hr_and_lr,
)

CachedOutput = Callable[[str], Any]  # codec key -> CodecOutput or None


class Executor(Protocol):
    """Runs work units; yields each :class:`UnitResult` as soon as it is known."""

    def run(self, plan: Plan, context: UnitContext, cached: CachedOutput
            ) -> Iterator[UnitResult]: ...

    def describe(self) -> dict[str, Any]: ...


def pending_images(plan: Plan, dataset: DatasetPlan
                   ) -> Iterator[tuple[ImagePlan, Any, str | None]]:
    """``(image plan, HR tensor or None, error or None)`` for the images with work left."""
    pending = {img.index: img for img in dataset.images if img.pending()}
    if not pending:
        return
    source = dataset.component.obj
    if dataset.by_name:
        for image in pending.values():
            try:
                yield image, source.load(image.name), None
            except Exception as exc:
                yield image, None, f"loading image: {one_line(exc)}"
        return
    seen = set()
    try:
        for i, (name, hr) in enumerate(iterate(source, plan.settings.limit)):
            image = pending.get(i)
            if image is None:
                continue
            seen.add(i)
            if str(name) != image.name or pixel_hash(hr) != image.hash:
                yield image, None, (f"image {name!r} changed since planning (dataset "
                                    "order or content is not stable)")
            else:
                yield image, hr, None
    except Exception as exc:
        error = f"reading dataset {dataset.component.name}: {one_line(exc)}"
    else:
        error = "image missing from the dataset since planning"
    for i, image in pending.items():
        if i not in seen:
            yield image, None, error


def lr_pair(plan: Plan, dataset: DatasetPlan, image: ImagePlan, hr: Any
            ) -> tuple[Any, Any, str | None]:
    """``(mod-cropped HR, LR, None)``, or ``(None, None, error)``."""
    try:
        hr_c, lr = hr_and_lr(hr, image.name, plan.settings.scale, plan.settings.kernel,
                           dataset.component.obj)
    except Exception as exc:
        stop_on_storage_error(exc)  # a full LR cache stops the run, not every cell
        return None, None, f"making the LR image: {one_line(exc)}"
    return hr_c, lr, None


class LocalExecutor:
    """Every unit in this process, image by image, in plan order."""

    def __init__(self, threads: int):
        self.threads = threads  # torch intra-op threads (the engine sets them)

    def describe(self) -> dict[str, Any]:
        return {"executor": "local", "workers": 1, "threads_per_worker": self.threads}

    def run(self, plan: Plan, context: UnitContext, cached: CachedOutput
            ) -> Iterator[UnitResult]:
        for item in prepared_units(plan, cached):
            if isinstance(item, UnitResult):
                yield item
            else:
                unit, hr_c, lr, output = item
                yield evaluate(unit, context, hr_c, lr, output)


Prepared = tuple[WorkUnit, Any, Any, Any]  # (unit, mod-cropped HR, LR, cached codec output)


def prepared_units(plan: Plan, cached: CachedOutput) -> Iterator[UnitResult | Prepared]:
    """Each pending unit with its inputs, in plan order (the LR image made once per
    image, on the driver), or its failed result when the image could not be read."""
    for dataset in plan.datasets:
        for image, hr, error in pending_images(plan, dataset):
            units = plan.units(dataset, image)
            hr_c = lr = None
            if error is None:
                hr_c, lr, error = lr_pair(plan, dataset, image, hr)
            for unit in units:
                if error is not None:
                    yield failed(unit, error)
                else:
                    yield unit, hr_c, lr, cached(unit.codec_key)


class PoolExecutor:
    """Units in ``workers`` processes of this machine, one unit per worker at a time.

    Workers start from a forkserver that has imported torch once (never forked from the
    driver, whose OpenMP threads and locks a fork would copy half-held); each receives
    the run's context (codecs, SR models, metrics) once, pickled, then units with their
    HR and LR images, and sends back each :class:`UnitResult`. The driver stays the
    only writer of the store and the cache. A worker that dies (SIGKILL, out of memory)
    loses only the unit it was computing, which fails with the reason, and is replaced.
    """

    def __init__(self, workers: int, threads: int, *, auto: bool = False):
        self.workers, self.threads = workers, threads
        self.auto = auto  # chosen by default: components that cannot travel run in-process
        self.note: str | None = None
        self.payload: bytes | None = None  # the pickled context, made by prepare
        self.prepared = False

    def describe(self) -> dict[str, Any]:
        described = {"executor": "local", "workers": self.workers,
                     "threads_per_worker": self.threads}
        return described | ({"note": self.note} if self.note else {})

    def prepare(self, context: UnitContext) -> None:
        """Pickle the run's context for the workers (before the run row is written: a
        default pool whose components cannot travel becomes one process, and says so)."""
        self.prepared = True
        try:
            self.payload = _context_bytes(context)
        except JcsrError as exc:
            if not self.auto:
                raise
            from jcsr_bench.kit.devices import default_threads

            self.payload, self.workers, self.threads = None, 1, default_threads()
            self.note = f"in-process: {str(exc).split(': ', 1)[-1]}"

    def run(self, plan: Plan, context: UnitContext, cached: CachedOutput
            ) -> Iterator[UnitResult]:
        if not self.prepared:
            self.prepare(context)
        payload = self.payload
        if payload is None:
            import torch

            torch.set_num_threads(self.threads)  # the engine restores its own setting
            yield from LocalExecutor(self.threads).run(plan, context, cached)
            return
        pool = [_Worker(payload, self.threads) for _ in range(self.workers)]
        try:
            try:
                for item in prepared_units(plan, cached):
                    if isinstance(item, UnitResult):
                        yield item
                        continue
                    while all(w.busy for w in pool):
                        yield from _collect(pool, payload, self.threads)
                    idle = [w for w in pool if not w.busy]
                    # a worker that holds the unit's image reuses its prepared HR statistics
                    holder = [w for w in idle if w.image == _image_key(item[0])]
                    (holder or idle)[0].send(item)
            except Exception:  # the driver's side failed (a full LR cache): keep their work
                yield from _drain(pool, payload, self.threads)
                raise
            yield from _drain(pool, payload, self.threads)
        finally:
            for worker in pool:
                worker.stop()



def _image_key(unit: WorkUnit) -> tuple[str, int]:
    return unit.dataset, unit.image_index


def pickled_modules(payload: bytes) -> set[str]:
    """The top-level packages a pickle imports when loaded (a plugin's package...).

    Preloaded by the forkserver, they are imported once instead of once per worker.
    """
    packages, strings = set(), []
    for op, arg, _ in pickletools.genops(payload):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            packages.add(strings[-2].split(".")[0])
        elif op.name == "GLOBAL":
            packages.add(arg.split(" ")[0].split(".")[0])
    return {name for name in packages if name.isidentifier() and name != "__main__"}


def _context_bytes(context: UnitContext) -> bytes:
    """The run's context, pickled once for every worker."""
    try:
        return pickle.dumps(context, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise JcsrError(f"--workers: the run's components cannot be sent to worker "
                        f"processes ({one_line(exc)}); define them in an importable module "
                        "or use --workers 1") from exc


def _drain(pool: list[_Worker], payload: bytes, threads: int) -> Iterator[UnitResult]:
    """Every unit still in flight, as it finishes."""
    while any(w.busy for w in pool):
        yield from _collect(pool, payload, threads)


def _collect(pool: list[_Worker], payload: bytes, threads: int) -> Iterator[UnitResult]:
    """Wait until a busy worker answers or dies; yield what the ready ones finished."""
    busy = [w for w in pool if w.busy]
    ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
    for i, worker in enumerate(pool):
        if worker.busy and (worker.conn in ready or worker.process.sentinel in ready):
            result = worker.receive()
            if result is None:  # it died: its unit is lost, a fresh worker takes its place
                unit, reason = worker.unit, worker.death()
                worker.stop()
                pool[i] = _Worker(payload, threads)
                result = failed(unit, f"worker process died ({reason})")
            yield result


class _Worker:
    """One worker process and the unit it is computing (``None`` when idle)."""

    def __init__(self, payload: bytes, threads: int):
        ctx = multiprocessing.get_context("forkserver")
        # the server imports what every worker needs once (a process-wide setting, used
        # when the server starts: the first pool of this process)
        ctx.set_forkserver_preload(["torch", "jcsr_bench.run.execute",
                                    *sorted(pickled_modules(payload))])
        self.conn, child = ctx.Pipe()
        with _no_main_module():
            self.process = ctx.Process(target=_serve, args=(child, threads), daemon=True)
            self.process.start()
        child.close()
        # the forkserver's environment is that of the first pool of this process: each
        # worker takes the driver's as it is now (caches, TORCH_HOME, working folder)
        self.conn.send_bytes(pickle.dumps((dict(os.environ), os.getcwd())))
        self.conn.send_bytes(payload)
        self.unit: WorkUnit | None = None
        self.image: tuple[str, int] | None = None  # the image whose HR and LR it holds

    @property
    def busy(self) -> bool:
        return self.unit is not None

    def send(self, item: Prepared) -> None:
        """Hand the worker a unit; its images travel only when the worker lacks them."""
        unit, hr, lr, output = item
        self.unit = unit
        image, self.image = self.image, _image_key(unit)
        message = (unit, None, None, output) if image == self.image else item
        # if it died, the sentinel says so and the collector reports the unit
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def receive(self) -> UnitResult | None:
        """The finished unit's result, or ``None`` when the worker died."""
        try:
            answer = pickle.loads(self.conn.recv_bytes())
        except (EOFError, ConnectionResetError, OSError):
            return None
        self.unit = None
        if isinstance(answer, str):  # the worker could not load the run's components
            raise JcsrError(answer)
        return answer

    def death(self) -> str:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def stop(self) -> None:
        if self.busy:  # still computing (a run stopped early): no result is wanted
            self.process.kill()
        with contextlib.suppress(OSError):
            self.conn.close()  # an idle worker reads EOF and exits
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _serve(conn: Any, threads: int) -> None:
    """A worker's loop: the context once, then unit after unit until the pipe closes."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    torch.set_num_threads(threads)
    try:
        environ, cwd = pickle.loads(conn.recv_bytes())
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        context = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):  # the driver is gone
        return
    except Exception as exc:
        conn.send_bytes(pickle.dumps(f"--workers: a worker process cannot load the run's "
                                     f"components ({one_line(exc)}); define them in an "
                                     "importable module or use --workers 1"))
        return
    hr = lr = None
    while True:
        try:
            unit, new_hr, new_lr, output = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):  # the run is over, or the driver is gone
            return
        if new_hr is not None:  # a new image (else the same tensors: prepared once)
            hr, lr = new_hr, new_lr
        result = evaluate(unit, context, hr, lr, output)
        try:
            answer = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            answer = pickle.dumps(failed(unit, f"the unit's result cannot be sent back from "
                                               f"its worker process: {one_line(exc)}"))
        try:
            conn.send_bytes(answer)
        except OSError:  # the driver stopped wanting it (stopped early, or killed)
            return


@contextlib.contextmanager
def _no_main_module() -> Iterator[None]:
    """Start processes without re-running the driver's ``__main__`` module in them.

    multiprocessing re-imports the main script or module in each child, which re-runs
    one that calls ``run`` without an ``if __name__ == "__main__"`` guard; the workers
    need only jcsr_bench and the plugins' importable modules.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
