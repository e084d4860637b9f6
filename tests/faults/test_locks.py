"""One writer per folder: every command that writes a folder refuses one another process holds
(here: this test process, through ``io.lock.folder_lock``), in one line naming the holder; the
lock dies with its holder; --resume where nothing was started is an error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hepaseg.cli import main
from hepaseg.io.atomic import TEMPORARY_MARK
from hepaseg.io.lock import LOCK_FILE, folder_lock

from ..inference.predict_cases import model_folder
from ..tiny_evaluation import make_dataset


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, phantom_cache):
    """A dataset (train / val / test cases, raters, predictions), a prepared cache and a model folder."""
    root = tmp_path_factory.mktemp("locks")
    manifest = make_dataset(root / "data")
    data = json.loads(manifest.read_text())
    for case in data["cases"]:
        if case["id"] == "c04":
            case["split"] = "val"  # a study needs train, val and test cases
    manifest.write_text(json.dumps(data))
    prep = phantom_cache(root / "prep")
    return {"manifest": manifest, "preds": root / "data" / "preds" / "a1", "prep": prep,
            "model": model_folder(root / "model")}


COMMANDS = {
    "synth": lambda i, out: ["synth", str(out), "--small", "--workers", "1"],
    "preprocess": lambda i, out: ["preprocess", str(i["manifest"]), "-o", str(out), "--preset", "demo", "--workers", "1"],
    "train": lambda i, out: ["train", str(i["prep"]), "-o", str(out), "--preset", "demo", "--device", "cpu"],
    "select": lambda i, out: ["select", str(i["prep"]), "-o", str(out), "--preset", "demo", "--device", "cpu"],
    "predict": lambda i, out: ["predict", str(i["model"]), "--dataset", str(i["manifest"]), "-o", str(out),
                               "--device", "cpu"],
    "evaluate": lambda i, out: ["evaluate", str(i["manifest"]), "--pred", f"A1={i['preds']}", "-o", str(out),
                                "--workers", "1"],
    "study": lambda i, out: ["study", str(i["manifest"]), "-o", str(out), "--preset", "demo", "--device", "cpu"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_in_use_is_refused_in_one_line_and_left_alone(inputs, tmp_path, capsys, command):
    out = tmp_path / "out"
    with folder_lock(out):
        holder = (out / LOCK_FILE).read_text()
        code = main(COMMANDS[command](inputs, out))
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written
        assert (out / LOCK_FILE).read_text() == holder
    assert code == 2
    err = capsys.readouterr().err
    pid, since = holder.split(maxsplit=1)
    assert err == f"error: {out}: in use by process {pid} since {since.strip()}\n"
    assert int(pid) == os.getpid()
    assert not out.joinpath(LOCK_FILE).exists()  # released and removed


def test_the_lock_dies_with_its_holder_even_on_kill_9(tmp_path):
    folder = tmp_path / "held"
    code = (f"import sys, time; from hepaseg.io.lock import folder_lock\n"
            f"with folder_lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "held\n"
        with pytest.raises(Exception, match=f"in use by process {proc.pid} since "):
            with folder_lock(folder):
                pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert (folder / LOCK_FILE).exists()  # left behind by the killed holder ...
    start = time.monotonic()
    with folder_lock(folder):  # ... and locked again at once, no cleaning by hand
        assert (folder / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("command", ["select", "study"])
def test_resume_where_nothing_was_started_is_an_error(inputs, tmp_path, capsys, command):
    out = tmp_path / "nothing"
    assert main([*COMMANDS[command](inputs, out)[:4], "--resume"]) == 2
    what = {"select": "selection", "study": "study"}[command]
    assert capsys.readouterr().err == f"error: {out}: holds no {what} to resume (start one without --resume)\n"
    assert not out.exists()


def test_taking_a_lock_removes_what_a_killed_writer_left(tmp_path):
    folder = tmp_path / "out"
    (folder / "lesions").mkdir(parents=True)
    stale = [folder / f".c01.nii.gz{TEMPORARY_MARK}k2j4x9.nii.gz", folder / "lesions" / f".c01.csv{TEMPORARY_MARK}a8.csv"]
    for path in stale:
        path.write_text("half")
    (folder / f".case{TEMPORARY_MARK}dir").mkdir()  # a half-built cache folder
    keep = [folder / "c00.nii.gz", folder / ".keep"]
    for path in keep:
        path.write_text("done")
    other = folder / "runs" / "seed-000"  # another writer's folder (it holds a lock file): not ours to clean
    other.mkdir(parents=True)
    (other / LOCK_FILE).write_text("4242 2026-12-02 04:00:00\n")
    (other / f".checkpoint.pt{TEMPORARY_MARK}x1.pt").write_text("being written")
    with folder_lock(folder):
        left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert left == sorted([LOCK_FILE, "c00.nii.gz", ".keep", "lesions", "runs", "runs/seed-000",
                           f"runs/seed-000/{LOCK_FILE}", f"runs/seed-000/.checkpoint.pt{TEMPORARY_MARK}x1.pt"])
