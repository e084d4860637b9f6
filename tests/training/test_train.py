"""Training runs on the CPU: learning, bit-identical resume, checkpoint errors, weight averaging,
mixed precision, CLI. (Model-folder errors: tests/model/test_folder.py.)"""

from __future__ import annotations

import io
import json
import signal
from dataclasses import replace

import pytest
import torch

from hepaseg.cli import main
from hepaseg.config import Config, ModelConfig
from hepaseg.presets import demo_config
from hepaseg.data.preprocess import load_prepared
from hepaseg.errors import InputError
from hepaseg.model.folder import CONFIG, INFO, LOG, WEIGHTS, load_model, model_dir
from hepaseg.model.shapes import margins
from hepaseg.model.unet import UNet
from hepaseg.training import train as train_module
from hepaseg.training.checkpoint import CHECKPOINT, load_checkpoint
from hepaseg.training.loss import masked_soft_dice_loss
from hepaseg.training.sampling import PatchSampler
from hepaseg.training.train import train_run


def tiny_config(iterations: int = 10, validate_every: int = 4, learning_rate: float = 1e-3) -> Config:
    base = demo_config()
    return base.replace(
        model=ModelConfig(widths=(4, 8), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.1),
        patch=replace(base.patch, output_size=(12, 12, 4), tumor_sampling="voxel"),
        train=replace(base.train, iterations=iterations, validate_every=validate_every, log_every=2,
                      learning_rate=learning_rate, lr_schedule="constant", warmup_iterations=0),
        infer=replace(base.infer, tile_output_size=(24, 24, 8)),
    )


@pytest.fixture(scope="module")
def prep(tmp_path_factory, phantom_cache):
    return phantom_cache(tmp_path_factory.mktemp("prep"), seed=2, n_train=2, n_val=1)


def _fixed_loss(cfg: Config, prep, state: dict) -> float:
    """Loss of a network state on 6 fixed patches (eval mode, no augmentation)."""
    out = cfg.patch.output_size
    sampler = PatchSampler(load_prepared(prep).split("train"), "R1", out, margins(cfg.model, out), cfg.patch,
                           cfg.augment, 99)
    batch = sampler.next_batch(6)
    net = UNet(cfg.model)
    net.load_state_dict(state)
    with torch.no_grad():
        logits = net.eval()(torch.from_numpy(batch.image))
    return masked_soft_dice_loss(logits, torch.from_numpy(batch.target), torch.from_numpy(batch.weight)).item()


def test_training_lowers_the_loss(prep, tmp_path):
    cfg = tiny_config(iterations=40, validate_every=20, learning_rate=1e-2)
    result = train_run(prep, tmp_path / "run", cfg, seed=0, device="cpu", progress=False)
    assert result.iterations_done == 40 and [i for i, _ in result.history] == [20, 40]
    assert result.best_score == max(j for _, j in result.history)
    torch.manual_seed(0)
    initial = UNet(cfg.model).state_dict()
    final = load_checkpoint(tmp_path / "run" / CHECKPOINT)["model"]
    assert _fixed_loss(cfg, prep, final) < _fixed_loss(cfg, prep, initial) - 0.05
    folder = model_dir(tmp_path / "run")
    assert sorted(p.name for p in folder.iterdir()) == sorted([WEIGHTS, CONFIG, INFO, LOG])
    net, loaded = load_model(folder)
    assert loaded == cfg and not net.training
    info = json.loads((folder / INFO).read_text())
    assert info["best_score"] == result.best_score and info["seed"] == 0
    log = [json.loads(line) for line in (folder / LOG).read_text().splitlines()]
    assert [r["iteration"] for r in log if "loss" in r] == list(range(2, 41, 2))


def _final_state(run) -> dict:
    ck = load_checkpoint(run / CHECKPOINT)
    return {"model": ck["model"], "optimizer": ck["optimizer"]["state"], "best": ck["best"],
            "history": [(h["iteration"], h["score"]) for h in ck["history"]], "sampler": ck["sampler"],
            "iteration": ck["iteration"]}


def _assert_identical(a: dict, b: dict) -> None:
    assert a["iteration"] == b["iteration"] and a["history"] == b["history"] and a["sampler"] == b["sampler"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["best"]["state"]:
        assert torch.equal(a["best"]["state"][key], b["best"]["state"][key]), key
    for index, state in a["optimizer"].items():
        for name, value in state.items():
            assert torch.equal(value, b["optimizer"][index][name]), (index, name)


def _as_written_by_0_1(run) -> None:
    """Rename the score keys of ``run``'s checkpoint and ``model.json`` back to hepaseg 0.1's."""
    state = torch.load(run / CHECKPOINT, weights_only=True)
    assert "jaccard" not in state["best"] and all("jaccard" not in h for h in state["history"])
    state["best"]["jaccard"] = state["best"].pop("score")
    state["history"] = [{("jaccard" if k == "score" else k): v for k, v in h.items()} for h in state["history"]]
    torch.save(state, run / CHECKPOINT)
    info = json.loads((model_dir(run) / INFO).read_text())
    info["best_jaccard"] = info.pop("best_score")
    info["history"] = [{("jaccard" if k == "score" else k): v for k, v in h.items()} for h in info["history"]]
    (model_dir(run) / INFO).write_text(json.dumps(info))


def test_stopped_and_resumed_runs_end_bit_identical(prep, tmp_path, monkeypatch):
    cfg = tiny_config(iterations=10, validate_every=4)
    straight = train_run(prep, tmp_path / "a", cfg, seed=5, device="cpu", progress=False)

    # stopped by the budget at iteration 6 (between validations), then continued
    part = train_run(prep, tmp_path / "b", cfg, seed=5, until_iterations=6, device="cpu", progress=False)
    assert part.iterations_done == 6 and len(part.history) == 1
    resumed = train_run(prep, tmp_path / "b", cfg, seed=5, device="cpu", progress=False)
    assert resumed.history == straight.history and resumed.best_score == straight.best_score

    # Ctrl-C during iteration 7: it finishes, checkpoints, raises KeyboardInterrupt; then resumed
    step, calls = train_module._Stepper._step, []

    def interrupted_step(self, *args):
        calls.append(1)
        if len(calls) == 7:
            signal.raise_signal(signal.SIGINT)
        return step(self, *args)

    monkeypatch.setattr(train_module._Stepper, "_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        train_run(prep, tmp_path / "c", cfg, seed=5, device="cpu", progress=False)
    monkeypatch.setattr(train_module._Stepper, "_step", step)
    assert load_checkpoint(tmp_path / "c" / CHECKPOINT)["iteration"] == 7
    train_run(prep, tmp_path / "c", cfg, seed=5, device="cpu", progress=False)

    # stopped at iteration 6, its checkpoint and model.json rewritten as hepaseg 0.1 wrote them (the score
    # under "jaccard" / "best_jaccard"), then continued
    train_run(prep, tmp_path / "d", cfg, seed=5, until_iterations=6, device="cpu", progress=False)
    _as_written_by_0_1(tmp_path / "d")
    old = train_run(prep, tmp_path / "d", cfg, seed=5, device="cpu", progress=False)
    assert old.history == straight.history and old.best_score == straight.best_score

    reference = _final_state(tmp_path / "a")
    _assert_identical(reference, _final_state(tmp_path / "b"))
    _assert_identical(reference, _final_state(tmp_path / "c"))
    _assert_identical(reference, _final_state(tmp_path / "d"))
    for run in "bcd":
        assert (tmp_path / run / "model" / WEIGHTS).read_bytes() == (tmp_path / "a" / "model" / WEIGHTS).read_bytes()
    log_a = [(r["iteration"], r["loss"]) for r in map(json.loads, (tmp_path / "a/model" / LOG).read_text().splitlines())
             if "loss" in r]
    log_b = [(r["iteration"], r["loss"]) for r in map(json.loads, (tmp_path / "b/model" / LOG).read_text().splitlines())
             if "loss" in r]
    assert log_a == log_b


def test_bad_checkpoints_and_conflicting_runs_are_input_errors(prep, tmp_path):
    cfg = tiny_config(iterations=4, validate_every=4)
    run = tmp_path / "run"
    train_run(prep, run, cfg, seed=1, until_iterations=2, device="cpu", progress=False)
    with pytest.raises(InputError, match="already holds a training run"):
        train_run(prep, run, cfg, seed=1, device="cpu", resume=False, progress=False)
    with pytest.raises(InputError, match="seed 1, not 2"):
        train_run(prep, run, cfg, seed=2, device="cpu", progress=False)
    other = cfg.replace(augment=replace(cfg.augment, brightness_sd=0.1))
    with pytest.raises(InputError, match="augment.brightness_sd"):
        train_run(prep, run, other, seed=1, device="cpu", progress=False)

    path = run / CHECKPOINT
    good = path.read_bytes()
    for content, message in [(good[: len(good) // 2], "corrupt or unreadable"), (b"not a checkpoint", "corrupt"),
                             (None, "not a hepaseg training checkpoint")]:
        if content is None:
            torch.save({"weights": torch.zeros(3)}, path)
        else:
            path.write_bytes(content)
        with pytest.raises(InputError, match=message) as info:
            train_run(prep, run, cfg, seed=1, device="cpu", progress=False)
        assert str(path) in str(info.value)

    # a checkpoint of hepaseg before batch i was drawn from (seed, i): its sampler state was a generator's
    old = torch.load(io.BytesIO(good), weights_only=True)
    old.update(version=1, sampler={"bit_generator": "PCG64", "state": {"state": 1, "inc": 3}})
    torch.save(old, path)
    with pytest.raises(InputError, match="earlier hepaseg, whose batch sequence this version does not continue"):
        train_run(prep, run, cfg, seed=1, device="cpu", progress=False)


def test_several_batch_producers_train_the_same_run_bit_for_bit(prep, tmp_path):
    """train.batch_producers 2 (two producer processes) on the CPU: the same batches, so the same run as
    the default's one producer thread."""
    cfg = tiny_config(iterations=4, validate_every=4)
    two = cfg.replace(train=replace(cfg.train, batch_producers=2))
    train_run(prep, tmp_path / "one", cfg, seed=3, device="cpu", progress=False)
    train_run(prep, tmp_path / "two", two, seed=3, device="cpu", progress=False)
    _assert_identical(_final_state(tmp_path / "one"), _final_state(tmp_path / "two"))


def test_cli_trains_and_resumes(prep, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(prep), "-o", str(run), "--preset", "demo", "--iterations", "2", "--device", "cpu"]
    assert main(args) == 0
    assert "best validation Jaccard" in capsys.readouterr().out
    assert (model_dir(run) / WEIGHTS).is_file()
    net, config = load_model(model_dir(run))
    assert config.preset == "demo" and config.train.iterations == 2
    assert main(args) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert main(["train", str(prep), "-o", str(run), "--resume", "--iterations", "3", "--device", "cpu"]) == 0
    assert json.loads((model_dir(run) / INFO).read_text())["iterations_done"] == 3


def test_weight_average_is_the_exponential_average_of_the_trained_states(prep, tmp_path):
    """ema_decay d keeps e_1 = w_1, e_t = d e_(t-1) + (1 - d) w_t (weights and BN statistics) and leaves
    training itself unchanged; the states w_t come from a run without averaging, stopped after each step."""
    plain = tiny_config(iterations=3, validate_every=3)
    trained = []
    for until in (1, 2, 3):
        train_run(prep, tmp_path / "plain", plain, seed=4, until_iterations=until, device="cpu", progress=False)
        trained.append(load_checkpoint(tmp_path / "plain" / CHECKPOINT)["model"])
    decay = 0.75
    averaged = plain.replace(train=replace(plain.train, ema_decay=decay))
    train_run(prep, tmp_path / "ema", averaged, seed=4, device="cpu", progress=False)
    # the same run stopped after step 2 and resumed ends identical (the average is checkpointed)
    train_run(prep, tmp_path / "ema2", averaged, seed=4, until_iterations=2, device="cpu", progress=False)
    train_run(prep, tmp_path / "ema2", averaged, seed=4, device="cpu", progress=False)
    run, resumed = load_checkpoint(tmp_path / "ema" / CHECKPOINT), load_checkpoint(tmp_path / "ema2" / CHECKPOINT)
    kept, _ = load_model(model_dir(tmp_path / "ema"))
    kept_state = kept.state_dict()
    checked = 0
    for key, final in trained[2].items():
        assert torch.equal(run["model"][key], final), key
        assert torch.equal(resumed["best"]["state"][key], run["best"]["state"][key]), key
        if not final.is_floating_point():
            continue
        expected = trained[0][key].double()
        for state in trained[1:]:
            expected = decay * expected + (1 - decay) * state[key].double()
        torch.testing.assert_close(kept_state[key].double(), expected, rtol=1e-5, atol=1e-6)
        checked += 1
    assert checked > 10
    assert any(not torch.equal(kept_state[k], v) for k, v in trained[2].items() if v.is_floating_point())


def _mixed_precision_and_float32(prep, tmp_path) -> tuple[Config, dict]:
    """The mixed-precision configuration, and the weights after 2 iterations of the same run in float32."""
    cfg = tiny_config(iterations=2, validate_every=2)
    fp32 = cfg.replace(train=replace(cfg.train, mixed_precision=False))
    train_run(prep, tmp_path / "fp32", fp32, seed=1, device="cpu", progress=False)
    return cfg, load_checkpoint(tmp_path / "fp32" / CHECKPOINT)["model"]


def test_mixed_precision_trains_in_float32_where_the_cpu_has_no_bf16(prep, tmp_path, monkeypatch):
    """mixed_precision on a CPU without bf16 instructions (as seen by training): float32, bit for bit."""
    cfg, reference = _mixed_precision_and_float32(prep, tmp_path)
    monkeypatch.setattr(train_module, "native_bf16", lambda device: False)
    train_run(prep, tmp_path / "no-bf16-cpu", cfg, seed=1, device="cpu", progress=False)
    trained = load_checkpoint(tmp_path / "no-bf16-cpu" / CHECKPOINT)["model"]
    assert trained.keys() == reference.keys()
    assert all(torch.equal(v, reference[k]) for k, v in trained.items())


def test_bf16_autocast_only_where_the_cpu_has_bf16_instructions(prep, tmp_path):
    """mixed_precision trains under bf16 autocast on a CPU with bf16 instructions: not float32's weights."""
    from hepaseg.model.device import native_bf16

    if not native_bf16(torch.device("cpu")):
        pytest.skip("this CPU has no bf16 instructions")
    cfg, reference = _mixed_precision_and_float32(prep, tmp_path)
    train_run(prep, tmp_path / "bf16-cpu", cfg, seed=1, device="cpu", progress=False)
    trained = load_checkpoint(tmp_path / "bf16-cpu" / CHECKPOINT)["model"]
    assert trained.keys() == reference.keys()
    assert not all(torch.equal(v, reference[k]) for k, v in trained.items())


def test_learning_rate_schedule_formula_and_bit_identical_resume(prep, tmp_path, monkeypatch):
    """lr of step t (0-based) = lr (t + 1) / W during warm-up, then lr (1 + cos(pi (t - W) / (T - W))) / 2;
    the rate used by each step is that one, and a run stopped and resumed (also at a larger
    until_iterations, as A1 continues runs) ends bit-identical to one trained straight."""
    import math

    from hepaseg.training.train import learning_rate_at

    cfg = tiny_config(iterations=10, validate_every=4, learning_rate=1e-2)
    cfg = cfg.replace(train=replace(cfg.train, lr_schedule="cosine", warmup_iterations=3))
    tc = cfg.train
    expected = [1e-2 * (t + 1) / 3 if t < 3 else 1e-2 * 0.5 * (1 + math.cos(math.pi * (t - 3) / 7))
                for t in range(10)]
    assert [learning_rate_at(tc, t) for t in range(10)] == pytest.approx(expected, rel=1e-12)
    linear = replace(tc, lr_schedule="linear", warmup_iterations=0)
    assert [learning_rate_at(linear, t) for t in range(10)] == pytest.approx([1e-2 * (1 - t / 10) for t in range(10)])
    assert learning_rate_at(replace(tc, lr_schedule="constant", warmup_iterations=0), 7) == 1e-2

    step, used = train_module._Stepper._step, []

    def recording_step(self, *args):
        used.append(self.optimizer.param_groups[0]["lr"])
        return step(self, *args)

    monkeypatch.setattr(train_module._Stepper, "_step", recording_step)
    straight = train_run(prep, tmp_path / "a", cfg, seed=5, device="cpu", progress=False)
    assert used == pytest.approx(expected, rel=1e-12)
    train_run(prep, tmp_path / "b", cfg, seed=5, until_iterations=4, device="cpu", progress=False)
    train_run(prep, tmp_path / "b", cfg, seed=5, until_iterations=7, device="cpu", progress=False)
    resumed = train_run(prep, tmp_path / "b", cfg, seed=5, device="cpu", progress=False)
    assert used[10:] == pytest.approx(expected, rel=1e-12)
    assert resumed.history == straight.history
    _assert_identical(_final_state(tmp_path / "a"), _final_state(tmp_path / "b"))
    with pytest.raises(InputError, match="lr_schedule"):
        train_run(prep, tmp_path / "c", cfg.replace(train=replace(tc, lr_schedule="step")), device="cpu",
                  progress=False)


def test_validation_metric_keeps_and_records_its_score(prep, tmp_path):
    """train.validation_metric decides the kept state's score; every metric is recorded per validation."""
    from hepaseg.training.validation import validation_score

    counts = {"a": (5, 10, 10), "b": (0, 0, 0), "c": (0, 4, 0)}
    assert validation_score(counts, "jaccard") == pytest.approx((5 / 15 + 1 + 0) / 3)
    assert validation_score(counts, "dice") == pytest.approx((0.5 + 1 + 0) / 3)
    assert validation_score(counts, "global_dice") == pytest.approx(10 / 24)
    cfg = tiny_config(iterations=8, validate_every=4)
    cfg = cfg.replace(train=replace(cfg.train, validation_metric="global_dice"))
    result = train_run(prep, tmp_path / "run", cfg, seed=1, device="cpu", progress=False)
    info = json.loads((model_dir(tmp_path / "run") / INFO).read_text())
    assert info["validation_metric"] == "global_dice"
    for (iteration, score), h in zip(result.history, info["history"]):
        assert h["metric"] == "global_dice" and score == h["scores"]["global_dice"] == h["score"]
        assert set(h["scores"]) == {"jaccard", "dice", "global_dice"}
    assert result.best_score == max(s for _, s in result.history)
    with pytest.raises(InputError, match="validation_metric"):
        train_run(prep, tmp_path / "bad", cfg.replace(train=replace(cfg.train, validation_metric="auc")),
                  device="cpu", progress=False)
