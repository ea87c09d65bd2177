"""What the package does with and without triton, a CUDA device, or the interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pydotcompute_triton
import pytest
import torch
from pydotcompute_triton import TorchBackend, TritonBackend, TritonUnavailableError
from pydotcompute_triton._availability import interpreter_active, triton_unavailable_reason

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
NO_CUDA = not torch.cuda.is_available()


def test_without_triton_the_package_imports_and_offers_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "triton", None)  # makes `import triton` fail
    reason = triton_unavailable_reason()
    assert reason is not None and "'triton' package is not importable" in reason
    with pytest.raises(
        TritonUnavailableError, match=r"the 'triton' backend needs Triton kernels.*pip install"
    ):
        TritonBackend()
    with pytest.raises(TritonUnavailableError, match="DeviceRing needs Triton kernels"):
        pydotcompute_triton.DeviceRing(4, 2)
    backend = TorchBackend("cpu")
    assert backend.row_sum(torch.ones((2, 3))).tolist() == [3.0, 3.0]


def test_in_a_fresh_process_without_triton() -> None:
    """The whole package, plugin included, imports and serves torch with triton blocked."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["triton"] = None
        import pydotcompute_triton as p
        from pydotcompute_triton import _plugin
        factories = _plugin.pydotcompute_register_backends()
        assert sorted(factories) == ["torch", "triton"]
        torch_backend = factories["torch"]()
        assert torch_backend.row_mean(torch_backend.asarray([[1, 3]])).tolist() == [2.0]
        try:
            factories["triton"]()
        except p.TritonUnavailableError as exc:
            assert "triton" in str(exc), exc
        else:
            raise AssertionError("the triton factory should have failed")
        try:
            import pydotcompute_triton.ops
        except ImportError as exc:
            assert "needs the 'triton' package" in str(exc), exc
        else:
            raise AssertionError("ops should not import without triton")
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_importing_the_plugin_imports_neither_torch_nor_triton() -> None:
    script = (
        "import sys, pydotcompute_triton._plugin\n"
        "print('torch' in sys.modules, 'triton' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=100, check=True
    )
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.interpreter
def test_under_the_interpreter_triton_runs_on_the_cpu() -> None:
    assert interpreter_active()
    assert triton_unavailable_reason() is None
    assert TritonBackend().device == torch.device("cpu")


@pytest.mark.skipif(INTERPRET, reason="checks the compiled mode: unset TRITON_INTERPRET")
@pytest.mark.skipif(not NO_CUDA, reason="checks a machine without a CUDA device")
def test_without_cuda_or_interpreter_the_error_names_both() -> None:
    pytest.importorskip("triton")
    assert not interpreter_active()
    reason = triton_unavailable_reason()
    assert reason is not None and "no CUDA device" in reason and "TRITON_INTERPRET=1" in reason
    with pytest.raises(TritonUnavailableError, match="no CUDA device"):
        TritonBackend()


@pytest.mark.skipif(INTERPRET, reason="checks the compiled mode: unset TRITON_INTERPRET")
def test_compiled_launchers_refuse_cpu_tensors_by_name() -> None:
    pytest.importorskip("triton")
    from pydotcompute_triton import ops

    with pytest.raises(TritonUnavailableError, match="minmax_normalize input is on cpu"):
        ops.minmax_normalize(torch.ones((2, 2)))
    with pytest.raises(TritonUnavailableError, match="partition keys is on cpu"):
        ops.partition(torch.ones(3, dtype=torch.int64), 2)
