"""``hepaseg predict`` on one case, a folder pair, or a dataset manifest: forms, skips, errors.

Three forms (``predict_paths`` chooses by its arguments):

- one case: ``image`` (file or DICOM series folder) + ``liver`` file -> ``out``: a folder (every
  output) or a mask file (``inference.outputs``); existing outputs are replaced.
- folders: ``image`` and ``liver`` both folders; case id = file name without suffix (a sub-folder
  of ``image`` is a DICOM series named by the folder); the liver mask is ``<liver>/<id>.<suffix>``.
  Without ``liver`` (or a case without a mask there) the model's liver model makes the liver mask.
- a manifest: ``dataset`` (+ ``split``).

Batch outputs in ``out/`` (``outputs.batch_outputs``): per case the mask, the liver mask used, the
lesion table and the overview picture (with ``--save-probabilities`` the probability map) and, at
the end, ``lesions.csv``: the rows of every case with a result in ``out/`` (also from earlier runs,
e.g. another split), sorted by case id. A case whose outputs all exist is skipped unless
``overwrite``; a failing case is reported in one line and the rest go on. Every file is written
atomically (the mask last, so a case is "done" only when all its files are); inputs are only
read. Reading and pre-processing (before) and post-processing and writing (after) run in
background threads while the current case is in the network.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..io.dicom_results import OBJECTS
from ..io.formats import volume_stem
from ..io.lock import folder_lock
from ..progress import Progress
from .lesion_table import Lesion, read_csv, write_csv
from .outputs import LESIONS, Outputs, batch_outputs, check_format, check_writable, require_dicom, single_outputs, write_case
from .predictor import LoadedCase, NetworkPass, Predictor, load_case

STAGES = ("read", "liver", "preprocess", "network", "postprocess", "write")  # "liver": the liver model, where it ran


@dataclass(frozen=True)
class CaseJob:
    """One case to predict: id, image (file or DICOM folder), liver mask (None if absent), and the
    Series Instance UID to read from a DICOM folder holding several (None: its only series)."""

    id: str
    image: Path
    liver: Path | None
    series: str | None = None


@dataclass
class BatchSummary:
    """What a run did: counts, failures ``(case id, message)``, summed stage seconds of done cases, and
    the DICOM objects left out (one line each: which, and why)."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    lesions_csv: Path | None = None
    objects_left_out: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every case and object was written, 1 when some case failed or an object was left out."""
        return 1 if self.failed or self.objects_left_out else 0


# --- jobs --------------------------------------------------------------------------------------


def jobs_from_manifest(manifest: str | Path, split: str | None = None) -> list[CaseJob]:
    """The cases of a manifest (one split, or all), in manifest order; InputError if none."""
    from ..data.manifest import load_manifest

    dataset = load_manifest(manifest)
    cases = dataset.split(split) if split else dataset.cases
    if not cases:
        raise InputError(manifest, f"has no case in split {split!r}" if split else "has no case")
    return [CaseJob(c.id, c.image, c.liver, c.series) for c in cases]


def _volume_id(path: Path) -> str | None:
    """Case id of a folder entry: file name without a volume suffix; a sub-folder's name; else None."""
    if path.name.startswith("."):
        return None
    return path.name if path.is_dir() else volume_stem(path.name)


def is_case_folder(path: Path) -> bool:
    """Whether ``-i path`` is a folder of cases (volume files or sub-folders), not one DICOM series."""
    return path.is_dir() and any(not p.name.startswith(".") and (p.is_dir() or volume_stem(p.name))
                                 for p in path.iterdir())


def jobs_from_folders(images: str | Path, livers: str | Path | None) -> list[CaseJob]:
    """Pair every volume in ``images`` with ``livers/<same id>.<any volume suffix>``, sorted by id;
    without ``livers`` (or a case missing there) the case's liver is None: the liver model makes it."""
    images = Path(images)
    for folder in (images, livers):
        if folder is not None and not Path(folder).is_dir():
            raise InputError(folder, "folder not found")
    liver_files = {} if livers is None else {i: p for p in Path(livers).iterdir() if p.is_file() and (i := _volume_id(p))}
    jobs = [CaseJob(i, p, liver_files.get(i)) for p in sorted(images.iterdir()) if (i := _volume_id(p))]
    if not jobs:
        raise InputError(images, "holds no image (NIfTI, NRRD, MHA file or DICOM series folder)")
    return jobs


# --- driver ------------------------------------------------------------------------------------


def prefetch(items: Iterable, load: Callable, workers: int = 1) -> Iterator[tuple[object, Future]]:
    """Yield ``(item, future of load(item))`` in order, with ``workers`` loads running ahead in threads."""
    it = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hepaseg-load") as pool:
        pending = deque((item, pool.submit(load, item)) for item in itertools.islice(it, max(1, workers)))
        while pending:
            item, future = pending.popleft()
            pending.extend((nxt, pool.submit(load, nxt)) for nxt in itertools.islice(it, 1))
            yield item, future


def one_line(exc: BaseException) -> str:
    """A failed case's problem in one line: ``<file>: <cause>`` where a file is known."""
    if isinstance(exc, InputError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def predict_cases(predictor: Predictor, jobs: list[CaseJob], out_dir: str | Path, fmt: str = "nifti",
                  save_probabilities: bool = False, overwrite: bool = False, workers: int = 1,
                  progress: bool = True, on_error: Callable[[str], None] | None = None) -> BatchSummary:
    """Predict ``jobs`` into ``out_dir`` (see the module docstring), then write ``lesions.csv``.

    Args:
        on_error: called with one line ``error: <case id>: <problem>`` per failing case (default:
            printed on stderr, above the progress bar).
    """
    out_dir = Path(out_dir)
    check_writable(out_dir, is_dir=True)
    with folder_lock(out_dir):
        summary = BatchSummary()
        outputs = {job.id: batch_outputs(out_dir, job.id, fmt, save_probabilities) for job in jobs}
        todo = [job for job in jobs if overwrite or not outputs[job.id].all_exist()]
        summary.skipped = len(jobs) - len(todo)

        def load(job: CaseJob) -> LoadedCase:
            require_dicom(job.image, outputs[job.id])
            return load_case(job.image, job.liver, predictor.config.preprocess, job.series, predictor.liver_model)

        def finish(case: LoadedCase, network: NetworkPass, job: CaseJob) -> dict[str, float]:
            result = predictor.finish(case, network, job.id)
            written = write_case(job.id, result, case, outputs[job.id], predictor.infer.lesion_connectivity)
            return {**case.timings, **result.timings, "write": written}

        def fail(case_id: str, exc: Exception) -> None:
            summary.failed.append((case_id, one_line(exc)))
            (on_error or bar.write)(f"error: {case_id}: {one_line(exc)}")

        # Three stages overlap: readers (threads) -> network (this thread) -> post-processing and writing
        # (threads), so a GPU never waits for the CPU work of the cases before and after.
        with (Progress(len(jobs), "predict", "case", initial=summary.skipped, enabled=progress) as bar,
              ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hepaseg-write") as writers):
            pending: deque[tuple[str, Future]] = deque()

            def collect(keep: int) -> None:
                """Record finished cases; wait for the oldest while more than ``keep`` are unfinished."""
                while pending and (len(pending) > keep or pending[0][1].done()):
                    case_id, done = pending.popleft()
                    try:
                        seconds = done.result()
                    except Exception as exc:  # noqa: BLE001 - one bad case must not stop the others
                        fail(case_id, exc)
                    else:
                        summary.done += 1
                        for stage, value in seconds.items():
                            summary.seconds[stage] += value
                    bar.update()

            for job, loading in prefetch(todo, load, workers):
                try:
                    case = loading.result()
                    network = predictor.run_network(case)
                except Exception as exc:  # noqa: BLE001
                    fail(job.id, exc)
                    bar.update()
                    continue
                pending.append((job.id, writers.submit(finish, case, network, job)))
                collect(keep=max(1, workers))
            collect(keep=0)
        rows: list[Lesion] = []
        for path in sorted((out_dir / "lesions").glob("*.csv")):  # every case with a result in this folder
            if not path.name.startswith("."):  # not a temporary file being written
                rows += read_csv(path)
        summary.lesions_csv = write_csv(rows, out_dir / LESIONS)
        return summary


def predict_paths(model_dir: str | Path, out: str | Path, image: str | Path | None = None,
                  liver: str | Path | None = None, dataset: str | Path | None = None, split: str | None = None,
                  fmt: str | None = None, save_probabilities: bool = False, lesions_csv: str | Path | None = None,
                  overwrite: bool = False, device: str = "auto", precision: str = "auto", infer: dict | None = None,
                  workers: int | None = None, progress: bool = True,
                  on_error: Callable[[str], None] | None = None, series: str | None = None,
                  auto_liver: bool = False, objects: tuple[str, ...] = OBJECTS) -> BatchSummary:
    """Run any form of ``hepaseg predict`` (see the module docstring).

    Args:
        precision: ``auto`` (as the model trained, see ``Predictor``), ``fp32`` or ``bf16``.
        infer: overrides of the model's ``InferConfig`` fields (``tta``, ``threshold``, ...); None: the
            model folder's own, as a study predicts with it.
        workers: background loader threads (default 1 on the CPU, up to 4 on a GPU).
        series: one case: the Series Instance UID to read from a DICOM folder holding several.
        auto_liver: batch: leave the manifest's (or folder's) liver masks aside, so that the model's
            liver model makes every case's liver mask (the fully automatic setting of a study).
        objects: one case into a folder, from a DICOM series: the DICOM objects to write beside the
            NIfTI outputs (``io.dicom_results.OBJECTS``); one the series cannot give is left out and
            named in ``BatchSummary.objects_left_out``.

    Raises:
        InputError: bad input overall (model, manifest, folders, output path); in the one-case
            form also any problem of the case itself. Nothing is written then.
    """
    out = Path(out)
    folders = (liver is not None and Path(liver).is_dir()) or (liver is None and image is not None
                                                                and is_case_folder(Path(image)))
    if dataset is not None or folders:
        if dataset is not None and image is not None:
            raise InputError(None, "give either --dataset or -i / -l, not both")
        if lesions_csv is not None:
            raise InputError(lesions_csv, "--lesions is for one case; a batch writes <out>/lesions.csv")
        if series is not None:
            raise InputError(None, "--series is for one case (-i FOLDER); in a manifest give each case's \"series\"")
        fmt = check_format(fmt or "nifti")
        jobs = jobs_from_manifest(dataset, split) if dataset is not None else jobs_from_folders(image, liver)
        if auto_liver:
            jobs = [dataclasses.replace(job, liver=None) for job in jobs]
        check_writable(out, is_dir=True)
        predictor = Predictor.load(model_dir, device, infer, precision)
        n = workers or (1 if predictor.device.type == "cpu" else min(4, max(1, (os.cpu_count() or 2) // 2)))
        return predict_cases(predictor, jobs, out, fmt, save_probabilities, overwrite, n, progress, on_error)
    if image is None:
        raise InputError(None, "give an image (-i), with its liver mask (-l) unless the model has a liver model, "
                               "or --dataset")
    outputs = single_outputs(out, fmt, Path(image), save_probabilities, Path(lesions_csv) if lesions_csv else None,
                             objects)
    for path in outputs.files:
        check_writable(path, is_dir=False)
    require_dicom(Path(image), outputs)
    return predict_case(Predictor.load(model_dir, device, infer, precision), Path(image), liver, outputs, series)


def predict_case(predictor: Predictor, image: Path, liver: str | Path | None, outputs: Outputs,
                 series: str | None = None) -> BatchSummary:
    """One case (``image``, and its ``liver`` mask or None: the model's liver model makes it) into
    ``outputs`` (``outputs.single_outputs``); a DICOM object the series cannot give is left out and named.

    Raises:
        InputError: any problem of the case; nothing is written then.
    """
    case = load_case(image, liver, predictor.config.preprocess, series, predictor.liver_model)
    case_id = _volume_id(image) or image.name
    result = predictor.predict(case, case_id)
    left_out: list[str] = []
    written = write_case(case_id, result, case, outputs, predictor.infer.lesion_connectivity, left_out.append)
    return BatchSummary(done=1, seconds={**case.timings, **result.timings, "write": written},
                        lesions_csv=outputs.lesions, objects_left_out=left_out)
