"""torch_threads: a block on a chosen number of torch threads."""

from __future__ import annotations

import pytest
import torch

from agents.common.threads import torch_threads


def test_the_block_runs_on_the_chosen_threads_and_the_setting_comes_back():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_the_setting_comes_back_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_none_leaves_the_process_setting():
    before = torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == before
