"""Faults during batch prediction: kill -9 mid-batch, a full file system (a small tmpfs where this
machine lets the test mount one, and an injected ENOSPC everywhere), a read-only output folder.
Cases written before a fault stay valid, a re-run continues from them, no temporary file is left."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from hepaseg.cli import main
from hepaseg.inference import batch, outputs

from ..inference.predict_cases import model_folder, write_case
from .processes import digests, interrupt_when, run, temporaries

CASES = 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(manifest of CASES cases, model folder, the outputs of an undisturbed run)."""
    root = tmp_path_factory.mktemp("predict-faults")
    cases = []
    for i in range(CASES):
        image, liver = write_case(root / f"c{i:02d}", seed=i)
        cases.append({"id": f"c{i:02d}", "split": "test", "image": str(image), "liver": str(liver)})
    manifest = root / "dataset.json"
    manifest.write_text(json.dumps({"name": "faults", "raters": [], "cases": cases}))
    model = model_folder(root / "model")
    reference = root / "reference"
    done = run("predict", str(model), "--dataset", str(manifest), "-o", str(reference), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    return manifest, model, reference


def _outputs(folder: Path) -> dict[str, str]:
    return {**digests(folder, "*.nii.gz"), **digests(folder, "lesions/*.csv"), **digests(folder, "lesions.csv"),
            **digests(folder, "liver/*.nii.gz"), **digests(folder, "overview/*.png")}


def _predict(dataset, out: Path, *extra: str) -> list[str]:
    manifest, model, _ = dataset
    return ["predict", str(model), "--dataset", str(manifest), "-o", str(out), "--device", "cpu", *extra]


def test_killed_mid_batch_continues_where_it_stopped(dataset, tmp_path):
    out = tmp_path / "out"
    def masks() -> list[str]:
        return sorted(p.name for p in out.glob("*.nii.gz") if not p.name.startswith("."))  # not temporaries

    killed = interrupt_when(_predict(dataset, out), lambda: len(masks()) >= 2)
    assert killed.returncode == -signal.SIGKILL
    written = masks()
    assert 2 <= len(written) < CASES, "the fault point was missed"
    reference = _outputs(dataset[2])
    assert {k: v for k, v in _outputs(out).items() if k.endswith(".nii.gz") and "/" not in k} == {k: reference[k] for k in written}
    done = run(*_predict(dataset, out))
    assert done.returncode == 0, done.stderr
    skipped = int(done.stdout.split(" already done")[0].split()[-1])
    assert skipped >= len(written) - 1  # a case killed between its mask and its lesion file is redone
    assert _outputs(out) == reference and temporaries(out) == []


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder``, or a skip where this machine does not allow it."""
    folder.mkdir(parents=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a small file system")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip() or 'not root'}); "
                    "the injected-ENOSPC test covers a full disk")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_file_system_keeps_the_written_cases_and_a_rerun_completes(dataset, tmp_path):
    with _tmpfs(tmp_path / "disk", "64k") as disk:
        out = disk / "out"
        full = run(*_predict(dataset, out))
        assert full.returncode == 1
        errors = [line for line in full.stderr.splitlines() if not line.startswith("predict: ")]  # not progress
        assert errors and all(line.startswith("error: ") and "No space left on device" in line for line in errors)
        assert "Traceback" not in full.stderr and temporaries(out) == []
        reference = _outputs(dataset[2])
        kept = _outputs(out)
        assert 0 < len([k for k in kept if k.endswith(".nii.gz") and "/" not in k]) < CASES
        assert all(kept[k] == reference[k] for k in kept if k != "lesions.csv")  # what was written is valid
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        done = run(*_predict(dataset, out))
        assert done.returncode == 0, done.stderr
        assert _outputs(out) == reference


def test_a_read_only_output_folder_is_one_line_and_nothing_is_written(dataset, tmp_path):
    with _tmpfs(tmp_path / "disk", "1m") as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        done = run(*_predict(dataset, disk / "out"))
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {disk / 'out'}: ")
        assert list(disk.iterdir()) == []


def test_an_injected_enospc_is_one_line_per_case_and_one_for_the_table(dataset, tmp_path, monkeypatch, capsys):
    writes = {"n": 0}
    real = outputs.write_mask

    def fill_up_after_three_cases(mask, like, path):  # two masks a case: the liver used, then the tumour
        writes["n"] += 1
        if writes["n"] > 6:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(mask, like, path)

    def no_space_for_the_table(rows, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(outputs, "write_mask", fill_up_after_three_cases)
    monkeypatch.setattr(batch, "write_csv", no_space_for_the_table)  # batch writes only the table
    out = tmp_path / "out"
    assert main(_predict(dataset, out, "--workers", "1")) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("predict: ")]
    assert len(err) == CASES - 3 + 1
    assert all(line.endswith(".nii.gz: No space left on device") for line in err[:-1])
    assert err[-1] == f"error: {out / batch.LESIONS}: No space left on device"
    assert len(list(out.glob("*.nii.gz"))) == 3 and temporaries(out) == []
