"""Reads shared by the panels of one dashboard load (query.shared_reads), with threads as a
server runs panel requests: one read per load and key, the others waiting for it."""

import threading
import uuid

import pytest

from query import shared_reads


def reads_at_once(count: int, read, load: str) -> list:
    """``count`` threads asking for the same key of ``load`` at the same moment."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def ask(index: int) -> None:
        start.wait()
        with shared_reads.sharing(load):
            try:
                results[index] = shared_reads.shared(("cpu", 0, 60_000), read)
            except ValueError as error:
                results[index] = error

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_requests_of_one_load_asking_at_once_read_once():
    made = []
    release = threading.Event()

    def read():
        made.append(1)
        release.wait(5)
        return ["samples"], 1

    threading.Timer(0.3, release.set).start()
    assert reads_at_once(4, read, uuid.uuid4().hex) == [["samples"]] * 4
    assert len(made) == 1


def test_a_failed_read_is_not_kept_and_the_waiting_requests_read_for_themselves():
    made = []

    def read():
        made.append(1)
        if len(made) == 1:
            raise ValueError("the first read fails")
        return "samples", 1

    load = uuid.uuid4().hex
    results = reads_at_once(3, read, load)

    assert sum(isinstance(result, ValueError) for result in results) == 1
    assert results.count("samples") == 2
    with shared_reads.sharing(load):
        assert shared_reads.shared(("cpu", 0, 60_000), read) == "samples"


def test_outside_a_load_every_read_is_made(monkeypatch):
    made = []

    def read():
        made.append(1)
        return len(made), 1

    assert [shared_reads.shared(("cpu", 0, 60_000), read) for _ in range(2)] == [1, 2]
    with shared_reads.sharing(None):
        assert shared_reads.shared(("cpu", 0, 60_000), read) == 3


@pytest.mark.parametrize(("reads", "samples_each"), [(40, 1), (2, 1_500_000)])
def test_what_is_kept_stays_within_its_bounds(reads, samples_each):
    load = uuid.uuid4().hex
    with shared_reads.sharing(load):
        for key in range(reads):
            shared_reads.shared(("bounds", key), lambda: ("samples", samples_each))

    kept = [read for key, read in shared_reads._reads.items() if key[0] == load]
    assert len(kept) <= shared_reads.MAX_KEPT_READS
    assert sum(read.samples for read in kept) <= shared_reads.MAX_KEPT_SAMPLES
