"""The backend conformance suite: every operation of :class:`ComputeBackend`, checked against
the policies and against :class:`NumpyBackend`, the reference.

Each :class:`ConformanceCase` is one named check; ``case.run(backend)`` returns quietly or
raises ``AssertionError`` naming the backend, the operation, the input and the mismatch.
The suite needs numpy only (no pytest), so a third-party backend runs it from its own
tests, one test per case::

    import pytest
    from pydotcompute.backend import conformance_cases

    @pytest.mark.parametrize("case", conformance_cases(), ids=str)
    def test_conformance(case):
        case.run(MyBackend())

Inputs are small (at most a few thousand elements per call), so the suite also suits a
slow backend such as Triton's interpreter. Results are compared exactly wherever the
policy fixes every bit (min-max normalization, clip, min, max, range, partitions,
integer-valued sums); sums over float32 values, means and standard deviations within
float32 rounding, since backends may add in another order.
"""

from __future__ import annotations

from ._case import ConformanceCase

__all__ = ["ConformanceCase", "conformance_cases"]


def conformance_cases() -> list[ConformanceCase]:
    """Every case of the suite, in a fixed order, each with a unique name."""
    from ._arrays import array_cases  # the cases are built only when asked for
    from ._reductions import reduction_cases

    return [*array_cases(), *reduction_cases()]
