"""One way to run torch on a chosen number of threads and give the process its setting back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block on `threads` torch threads (None: leave the process's setting).

    The agents' networks are small: one thread is fastest, and on a shared machine more threads
    only fight each other and numpy's. The caller's setting is restored whatever happens.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
