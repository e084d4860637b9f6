"""Batches drawn ahead by one or more producers (``training.producers``): the same sequence for every
number of producers and from any start, a producer's error raised by the consumer, no process or
shared memory left behind."""

from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import signal

import numpy as np
import pytest
import torch

from hepaseg.config import AugmentConfig, PatchConfig
from hepaseg.data.preprocess import load_prepared
from hepaseg.errors import InputError
from hepaseg.training.producers import Prefetcher, producer_count
from hepaseg.training.sampling import PatchSampler

OUT, MARGIN = (8, 8, 4), (6, 6, 2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory, phantom_cache):
    return phantom_cache(tmp_path_factory.mktemp("prep"), seed=3, n_train=2, n_val=0)


def _sampler(root, seed: int) -> PatchSampler:
    return PatchSampler(load_prepared(root).split("train"), "R1", OUT, MARGIN, PatchConfig(), AugmentConfig(), seed)


def _shared_memory_in_use() -> list[str]:
    """This process's open files and mappings in /dev/shm (shared tensors, semaphores)."""
    fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
           if os.path.exists(f"/proc/self/fd/{fd}")]
    with open("/proc/self/maps") as maps:
        mapped = [line.split(maxsplit=5)[-1].strip() for line in maps if "/dev/shm/" in line]
    return sorted(path for path in fds + mapped if path.startswith("/dev/shm/"))


def _drawn(sampler: PatchSampler, producers: int, n: int) -> list:
    """``n`` batches through a Prefetcher of ``producers``; afterwards no producer process is left."""
    with Prefetcher(sampler, 2, producers=producers) as batches:
        drawn = [batches.get() for _ in range(n)]
    assert multiprocessing.active_children() == []
    return drawn


def _assert_same(drawn: list, expected: list) -> None:
    assert [batch.index for batch, _ in drawn] == [want.index for want in expected]
    for (batch, host), want in zip(drawn, expected):
        for got, array, tensor in zip((batch.image, batch.target, batch.weight),
                                      (want.image, want.target, want.weight), host):
            assert np.array_equal(got, array) and torch.equal(tensor, torch.from_numpy(array))
        assert batch.augment == want.augment


def test_the_batch_sequence_is_the_same_for_any_number_of_producers_and_from_any_start(cache):
    sampler = _sampler(cache, seed=4)
    expected = [sampler.batch(i, 2) for i in range(7)]  # drawn here, by index, in order
    shared_before = _shared_memory_in_use()
    for producers in (1, 2, 3):  # 7 batches: producer 0 of 3 makes one more than the others
        _assert_same(_drawn(sampler, producers, 7), expected)
    assert sampler.state() == 0  # the prefetcher leaves the sampler as it was
    sampler.set_state(4)  # a resumed run: batches 4, 5, 6 of the same sequence
    resumed = _drawn(sampler, 2, 3)
    _assert_same(resumed, expected[4:])
    assert [batch.sampler_state for batch, _ in resumed] == [5, 6, 7]
    other = _drawn(_sampler(cache, seed=5), 2, 3)
    assert not any(np.array_equal(batch.image, want.image) for (batch, _), want in zip(other, expected))
    del resumed, other
    gc.collect()
    assert _shared_memory_in_use() == shared_before


def test_a_producer_process_error_is_raised_by_the_consumer(cache, tmp_path):
    root = tmp_path / "prep"
    shutil.copytree(cache, root)
    sampler = _sampler(root, seed=0)
    case = sampler.cases[0].id
    # the producers open the cache themselves: a liver of another shape (a new file: this process keeps
    # the old one mapped) makes each of them fail where the sampler checks the shapes
    np.save(root / case / "liver.new.npy", np.ones((5, 5, 5), np.uint8))
    os.replace(root / case / "liver.new.npy", root / case / "liver.npy")
    with Prefetcher(sampler, 2, producers=2) as batches, pytest.raises(InputError, match="shapes differ"):
        batches.get()
    assert multiprocessing.active_children() == []


def test_a_producer_thread_error_is_raised_after_the_batches_before_it(cache, monkeypatch):
    sampler = _sampler(cache, seed=0)
    draw = PatchSampler.batch

    def failing(self, index, batch_size):
        if index == 2:
            raise ValueError("batch 2 failed")
        return draw(self, index, batch_size)

    monkeypatch.setattr(PatchSampler, "batch", failing)
    with Prefetcher(sampler, 2, producers=1) as batches:
        assert [batches.get()[0].index for _ in range(2)] == [0, 1]
        with pytest.raises(ValueError, match="batch 2 failed"):
            batches.get()


def test_a_killed_producer_process_is_an_error_and_leaving_on_an_error_ends_the_others(cache):
    sampler = _sampler(cache, seed=0)
    with pytest.raises(KeyError, match="in the loop"), Prefetcher(sampler, 2, producers=2) as batches:
        batches.get()
        os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
        # the batches the producers had ready come first, then the killed one's turn fails
        with pytest.raises(RuntimeError, match="ended without a batch"):
            for _ in range(20):
                batches.get()
        raise KeyError("in the loop")
    assert multiprocessing.active_children() == []


def test_the_default_is_one_producer_on_the_cpu_and_a_quarter_of_the_cores_on_a_gpu(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert producer_count(3, cpu) == 3 == producer_count(3, cuda)
    assert producer_count(0, cpu) == 1
    for cores, expected in ((2, 1), (8, 2), (16, 4), (64, 4)):  # cores // 4, at least 1, at most 4
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)))
        assert producer_count(0, cuda) == expected
