"""A device ring is bound to one stream (issue 11, item 2): its push and pop kernels
share one completion ticket, ordered by that stream alone, so a push or pop from
another stream is refused before anything launches."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

pytestmark = pytest.mark.interpreter


def test_a_ring_refuses_a_push_or_pop_on_another_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    import pydotcompute_triton._device_ring as ring_module
    from pydotcompute_triton import DeviceRing

    ring = DeviceRing(8, 3)
    assert ring.stream is None  # no streams off CUDA: nothing to enforce
    # What a CUDA ring records, and a different stream made current afterwards.
    monkeypatch.setattr(ring, "_stream", "stream A")
    monkeypatch.setattr(ring_module, "current_stream", lambda device: "stream B")
    with pytest.raises(ValueError, match=r"push ran on stream stream B.*bound to stream stream A"):
        ring.push(torch.ones((2, 3)))
    with pytest.raises(ValueError, match=r"pop ran on stream stream B.*bound to stream stream A"):
        ring.pop(1)
    monkeypatch.setattr(ring_module, "current_stream", lambda device: "stream A")
    stats = ring.statistics()
    assert stats.pushed == stats.popped == 0  # nothing was launched for the refused calls
    assert ring.push(torch.ones((2, 3))) == 2
    assert ring.pop(2).tolist() == [[1.0, 1.0, 1.0]] * 2
