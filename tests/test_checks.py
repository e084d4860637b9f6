"""A configuration is checked once, before any work (``checks``, ``presets.check_config``,
``presets.resolve_config``), and a warm-up is fitted to its run by one rule (``checks.fit_warmup``)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hepaseg.checks import fit_warmup, value_problems
from hepaseg.cli import main
from hepaseg.errors import InputError
from hepaseg.presets import PRESETS, check_config, demo_config, preset, resolve_config


def test_every_preset_is_valid():
    for name in PRESETS:
        assert check_config(preset(name)) == preset(name)


def test_fit_warmup_one_rule_for_iterations_and_config_files():
    train = demo_config().train  # 3000 iterations, warm-up 100
    assert fit_warmup(train) == train  # fits: the configuration's own
    # another length (--iterations): at most a tenth of it; by hand 40 // 10 = 4, 500 // 10 = 50, 5000 // 10 = 500 > 100
    assert [fit_warmup(train, n).warmup_iterations for n in (40, 500, 5000)] == [4, 50, 100]
    assert fit_warmup(train, 40).iterations == 40
    # a file whose warm-up does not fit its own run (40 iterations, warm-up 100): the same rule
    short = dataclasses.replace(train, iterations=40)
    assert fit_warmup(short).warmup_iterations == 4
    assert fit_warmup(dataclasses.replace(train, iterations=40, warmup_iterations=39)) == \
        dataclasses.replace(train, iterations=40, warmup_iterations=39)


def test_a_config_file_is_fitted_and_checked_when_resolved(tmp_path):
    base = demo_config()
    short = tmp_path / "short.json"
    short.write_text(base.replace(train=dataclasses.replace(base.train, iterations=40)).to_json())
    notes: list[str] = []
    config = resolve_config(config_file=short, note=notes.append)
    assert config.train.warmup_iterations == 4 and config.train.iterations == 40
    assert notes == ["note: train.warmup_iterations 100 -> 4, a tenth of the run's 40 iterations"]
    by_option = resolve_config("demo", iterations=40, note=notes.append)
    assert by_option.train == config.train  # --iterations and --config shorten the warm-up the same way

    bad = base.replace(train=dataclasses.replace(base.train, validation_metric="auc"),
                       select=dataclasses.replace(base.select, eta=1),
                       patch=dataclasses.replace(base.patch, output_size=(35, 36, 12)))
    path = tmp_path / "bad.json"
    path.write_text(bad.to_json())
    with pytest.raises(InputError) as info:
        resolve_config(config_file=path)
    message = str(info.value)
    assert message.startswith(f"{path}: configuration (preset 'demo'): ")
    for part in ("unknown train.validation_metric 'auc'", "select.eta must be >= 2, got 1",
                 "patch.output_size (35, 36, 12) is not an output size of the network"):
        assert part in message
    assert len(value_problems(bad)) == 2  # the patch size is the shapes' problem, not a value's


def test_a_bad_config_stops_the_study_before_anything_is_written(tmp_path, capsys):
    base = demo_config()
    bad = tmp_path / "bad.json"
    bad.write_text(base.replace(patch=dataclasses.replace(base.patch, lesion_fraction=1.5)).to_json())
    manifest = tmp_path / "dataset.json"
    manifest.write_text(json.dumps({"cases": []}))
    out = tmp_path / "study"
    assert main(["study", str(manifest), "-o", str(out), "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {bad}: configuration (preset 'demo'): patch.lesion_fraction must lie in [0, 1], got 1.5"]
    assert not out.exists()
    liver = tmp_path / "liver.json"
    liver_config = preset("demo-liver")
    liver.write_text(liver_config.replace(train=dataclasses.replace(liver_config.train, ema_decay=1.0)).to_json())
    assert main(["study", str(manifest), "-o", str(out), "--preset", "demo", "--liver-config", str(liver)]) == 2
    assert "the liver model's configuration (preset 'demo-liver'): train.ema_decay must lie in [0, 1), got 1.0" \
        in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("value", [-1, 1.5, "2"])
def test_a_batch_producer_count_that_is_no_int_of_at_least_zero_is_a_problem(value):
    from hepaseg.checks import train_problems

    train = dataclasses.replace(demo_config().train, batch_producers=value)
    assert [p for p in train_problems(train) if "batch_producers" in p] == \
        [f"train.batch_producers must be an int >= 0 (0: chosen by the device), got {value!r}"]
    assert train_problems(dataclasses.replace(train, batch_producers=4)) == []
