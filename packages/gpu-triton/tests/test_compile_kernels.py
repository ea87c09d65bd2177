"""Every kernel variant real launches use, compiled for sm_90 (and sm_80) without a GPU,
its PTX inspected. The variants come from the launchers' own plans, specialised by
Triton's own binder (see pydotcompute_triton.ops._variants).

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

from pydotcompute_triton.ops._variants import (  # noqa: E402
    PlannedVariant,
    Specialization,
    launch_plans,
    specialization,
)
from pydotcompute_triton.ops.row_reduce import REDUCTIONS  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402

pytestmark = pytest.mark.compile_check

TARGETS = {"sm80": GPUTarget("cuda", 80, 32), "sm90": GPUTarget("cuda", 90, 32)}
PLANS = launch_plans()
BY_NAME = {plan.name: plan for plan in PLANS}
Case = tuple[str, str]  # (planned launch's name, target name)


def cases() -> list[Case]:
    """Every planned launch's variant for sm_90 (H100/H200), and the float32 ones of
    aligned widths for sm_80 too; one case per distinct variant."""
    out: list[Case] = []
    seen: set[tuple[str, str]] = set()
    for plan in PLANS:
        for target in ("sm90", "sm80") if plan.float32_aligned else ("sm90",):
            key = (specialization(plan.launch, TARGETS[target]).key, target)
            if key not in seen:
                seen.add(key)
                out.append((plan.name, target))
    return out


def compile_ptx(case: Case) -> str:
    name, target = case
    plan = BY_NAME[name]
    spec: Specialization = specialization(plan.launch, TARGETS[target])
    compiled = triton.compile(spec.source(), target=TARGETS[target], options=spec.options.__dict__)
    assert compiled.asm["cubin"], f"ptxas produced no cubin for {plan.name}"
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


def test_every_launcher_is_planned() -> None:
    names = {plan.launch.kernel.__name__ for plan in PLANS}
    assert names == {
        "_minmax_normalize_kernel",
        "_normalize_stats_kernel",
        "_row_reduce_kernel",
        "_segment_sum_kernel",
        "_partition_hist_kernel",
        "_partition_scatter_kernel",
        "_ring_push_kernel",
        "_ring_pop_kernel",
    }
    assert len(PLANS) == len({plan.name for plan in PLANS})


@pytest.mark.parametrize(
    ("plan", "target"), [pytest.param(BY_NAME[c[0]], c[1], id=f"{c[1]}-{c[0]}") for c in CASES]
)
def test_compiles_and_uses_the_expected_instructions(plan: PlannedVariant, target: str) -> None:
    code = COMPILER.ptx((plan.name, target))
    name = plan.launch.kernel.__name__
    assert f".entry {name}" in code
    if name in ("_ring_push_kernel", "_ring_pop_kernel"):
        # The completion ticket: an acquire-release add at GPU scope, after a CTA barrier.
        assert "atom.global.gpu.acq_rel.add.u64" in code
        assert "bar.sync" in code
    if name in (
        "_minmax_normalize_kernel",
        "_normalize_stats_kernel",
        "_row_reduce_kernel",
        "_segment_sum_kernel",
    ):
        # No FMA contraction (enable_fp_fusion=False) and no approximate division: the
        # float32 results round exactly as the numpy reference's.
        assert "fma.rn.f32" not in code
        assert "div.full.f32" not in code and "div.approx.f32" not in code
    op = plan.launch.constexprs.get("OP")
    reduction = REDUCTIONS[op] if name == "_row_reduce_kernel" else None
    if name in ("_minmax_normalize_kernel", "_normalize_stats_kernel") or reduction in (
        "mean",
        "std",
        "var",
    ):
        assert "div.rn.f32" in code
    if reduction == "std":
        assert "sqrt.rn.f32" in code and "sqrt.approx" not in code
