"""pydotcompute's backend conformance suite against the torch and Triton backends.

``torch`` on the CPU runs in the default session; ``triton`` runs in the interpreter
session (``nox -s tests-interpreter``); both on a CUDA device in the ``gpu`` session.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from pydotcompute.backend import ConformanceCase, conformance_cases

CASES = conformance_cases()


@functools.cache
def torch_cpu() -> Any:
    from pydotcompute_triton import TorchBackend

    return TorchBackend("cpu")


@functools.cache
def torch_cuda() -> Any:
    from pydotcompute_triton import TorchBackend

    return TorchBackend("cuda")


@functools.cache
def triton_here() -> Any:
    from pydotcompute_triton import TritonBackend

    return TritonBackend()


BACKENDS = [
    pytest.param(torch_cpu, id="torch-cpu"),
    pytest.param(triton_here, id="triton-interpreter", marks=pytest.mark.interpreter),
    pytest.param(torch_cuda, id="torch-cuda", marks=pytest.mark.gpu),
    pytest.param(triton_here, id="triton-cuda", marks=pytest.mark.gpu),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("factory", BACKENDS)
def test_conforms(factory: Callable[[], Any], case: ConformanceCase) -> None:
    case.run(factory())  # one backend per factory (cached) for every case
