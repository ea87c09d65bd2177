"""Every kernel variant compiled for sm_80 and sm_90 without a GPU, its PTX inspected.

Catches what the interpreter lets through (type errors such as a loop-carried int32 that
becomes int64) and checks the instructions the numerics and the ring rely on. Runs only
without TRITON_INTERPRET (one Triton mode per process):

    python -m pytest packages/gpu-triton/tests/test_compile_kernels.py -m compile_check
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

if os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip(
        "compile checks need compiled mode: run this module in a process without "
        "TRITON_INTERPRET=1 (the interpreter replaces triton.jit for the whole process)",
        allow_module_level=True,
    )
triton = pytest.importorskip("triton")

from pydotcompute_triton.ops._utils import LAUNCH_OPTIONS  # noqa: E402
from pydotcompute_triton.ops._variants import IntFlavour, KernelVariant, kernel_variants  # noqa: E402
from pydotcompute_triton.ops.row_reduce import REDUCTIONS  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

pytestmark = pytest.mark.compile_check

TARGETS = {"sm80": GPUTarget("cuda", 80, 32), "sm90": GPUTarget("cuda", 90, 32)}
VARIANTS = kernel_variants()
Case = tuple[KernelVariant, str, IntFlavour]  # (variant, target name, integer flavour)


def cases() -> list[Case]:
    """Every variant for both targets with i32 integers (what most launches use), and the
    variants with the smallest and largest blocks with i64 integers and with integers
    pinned to 1 (Triton specialises those), for sm_90."""
    out: list[Case] = [(v, target, "i32") for v in VARIANTS for target in TARGETS]
    flavours: tuple[IntFlavour, ...] = ("i64", "one")
    out += [(v, "sm90", ints) for v in VARIANTS if v.block_extreme for ints in flavours]
    return out


def compile_ptx(case: Case) -> str:
    variant, target, ints = case
    compiled = triton.compile(variant.source(ints), target=TARGETS[target], options=LAUNCH_OPTIONS)
    assert compiled.asm["cubin"], f"ptxas produced no cubin for {variant.name}"
    text: str = compiled.asm["ptx"]
    return text


class BatchCompiler:
    """Compiles a test's case together with the next few pending ones on a thread pool.

    A cold compile takes about 0.5 s and most of it releases the GIL (MLIR passes, ptxas),
    so threads use every core, while each test still waits for one small batch only (the
    per-test timeout stays meaningful). Each case's own error is raised by its own test.
    """

    def __init__(self, cases: list[Case]) -> None:
        self.pending = list(cases)
        self.results: dict[Case, str | BaseException] = {}
        self.workers = os.cpu_count() or 1
        self.batch = 4 * self.workers

    def ptx(self, case: Case) -> str:
        if case not in self.results:
            rest = [c for c in self.pending if c != case and c not in self.results]
            batch = [case, *rest[: self.batch - 1]]
            with ThreadPoolExecutor(self.workers) as pool:
                futures = [pool.submit(compile_ptx, c) for c in batch]
            for c, f in zip(batch, futures, strict=True):
                self.results[c] = f.exception() or f.result()
        result = self.results.pop(case)
        self.pending.remove(case)
        if isinstance(result, BaseException):
            raise result
        return result


CASES = cases()
COMPILER = BatchCompiler(CASES)


def test_every_launcher_table_is_covered() -> None:
    names = {v.kernel.__name__ for v in VARIANTS}
    assert names == {
        "_minmax_normalize_kernel",
        "_row_reduce_kernel",
        "_segment_sum_kernel",
        "_partition_hist_kernel",
        "_partition_scatter_kernel",
        "_ring_push_kernel",
        "_ring_pop_kernel",
    }
    assert len(VARIANTS) == len(set(v.name for v in VARIANTS))


@pytest.mark.parametrize(
    ("variant", "target", "ints"),
    [pytest.param(*c, id=f"{c[1]}-{c[2]}-{c[0].name}") for c in CASES],
)
def test_compiles_and_uses_the_expected_instructions(
    variant: KernelVariant, target: str, ints: IntFlavour
) -> None:
    code = COMPILER.ptx((variant, target, ints))
    name = variant.kernel.__name__
    assert f".entry {name}" in code
    if name in ("_ring_push_kernel", "_ring_pop_kernel"):
        # The completion ticket: an acquire-release add at GPU scope, after a CTA barrier.
        assert "atom.global.gpu.acq_rel.add.u64" in code
        assert "bar.sync" in code
    if name in ("_minmax_normalize_kernel", "_row_reduce_kernel", "_segment_sum_kernel"):
        # No FMA contraction (enable_fp_fusion=False) and no approximate division: the
        # float32 results round exactly as the numpy reference's.
        assert "fma.rn.f32" not in code
        assert "div.full.f32" not in code and "div.approx.f32" not in code
    reduction = REDUCTIONS[variant.constexprs["OP"]] if name == "_row_reduce_kernel" else None
    if name == "_minmax_normalize_kernel" or reduction in ("mean", "std", "var"):
        assert "div.rn.f32" in code
    if reduction == "std":
        assert "sqrt.rn.f32" in code and "sqrt.approx" not in code
