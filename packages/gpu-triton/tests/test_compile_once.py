"""Compile once (issue 11, item 6): sizes that vary per batch do not pick a variant.

Triton compiles one variant per specialization of a launch's arguments: integers equal
to 1 or divisible by 16 and 16-byte aligned pointers are specialized on unless a kernel
says ``do_not_specialize``. Read from Triton's own binder (no GPU, no compiling), a
ragged last batch, a one-row batch and an odd split must all map to the variant of the
first batch; the width, fixed for a stream, may pick another.
"""

from __future__ import annotations

import os

import pytest

if os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip("reads the compiled mode's specialization", allow_module_level=True)
pytest.importorskip("triton")

import torch
from pydotcompute_triton.ops._utils import WIDTH_CLASSES, row_tile
from pydotcompute_triton.ops._variants import _ring_launches, specialization
from pydotcompute_triton.ops.minmax_normalize import plan_minmax_normalize
from pydotcompute_triton.ops.partition import plan_partition
from pydotcompute_triton.ops.row_reduce import plan_row_reduce
from pydotcompute_triton.ops.segment_sum import plan_segment_sum
from triton.backends.compiler import GPUTarget

pytestmark = pytest.mark.compile_check

SM90 = GPUTarget("cuda", 90, 32)
ROW_COUNTS = (1, 2, 16, 4096, 65_536 + 7)  # one row, 16s, a ragged last batch


def key_of(launch: object) -> str:
    return specialization(launch, SM90).key  # type: ignore[arg-type]


def row_launches(rows: int, width: int, dtype: torch.dtype = torch.float32) -> list[object]:
    # Meta tensors: the binder reads dtypes, strides, sizes and pointer alignment (a meta
    # tensor's address is 0, aligned like every fresh CUDA allocation), never the data.
    x = torch.empty((rows, width), dtype=dtype, device="meta")
    out = torch.empty((rows,), dtype=torch.float32, device="meta")
    offsets = torch.empty((2,), dtype=torch.int64, device="meta")
    return [
        plan_minmax_normalize(x, x),
        plan_row_reduce(x, out, "mean"),
        plan_segment_sum(x, offsets, torch.empty((1, width), device="meta")),
    ]


@pytest.mark.parametrize("width", [64, 1024, 100])
def test_every_batch_size_runs_the_first_batchs_variant(width: int) -> None:
    first = [key_of(launch) for launch in row_launches(ROW_COUNTS[-2], width)]
    for rows in ROW_COUNTS:
        assert [key_of(launch) for launch in row_launches(rows, width)] == first, rows


def test_the_check_would_see_a_specialization() -> None:
    """The same comparison tells widths apart: it is not blind."""
    assert key_of(row_launches(8, 64)[0]) != key_of(row_launches(8, 65)[0])


def test_ring_pushes_and_pops_of_any_size_and_policy_share_a_variant() -> None:
    push, pop = _ring_launches(torch.int32, 64, 0)
    keys = set()
    for n_in, first_row, policy in ((1, 0, 0), (7, 0, 1), (4096, 32, 2), (16, 0, 0)):
        args = list(push.args)
        args[6], args[7], args[11] = n_in, first_row, policy
        keys.add(
            key_of(type(push)(push.kernel, push.grid, tuple(args), push.constexprs, push.num_warps))
        )
    assert len(keys) == 1
    pops = set()
    for max_rows in (1, 16, 63):
        args = list(pop.args)
        args[6] = max_rows
        pops.add(
            key_of(type(pop)(pop.kernel, pop.grid, tuple(args), pop.constexprs, pop.num_warps))
        )
    assert len(pops) == 1


def test_partition_of_any_key_count_shares_a_variant() -> None:
    keys_seen = set()
    for n_keys in (1, 64, 65, 1000):
        keys = torch.zeros(n_keys, dtype=torch.int64)
        blocks = -(-n_keys // 64)
        hist, scatter = plan_partition(
            keys,
            5,
            torch.zeros(5 * blocks, dtype=torch.int32),
            torch.zeros(5 * blocks, dtype=torch.int64),
            torch.zeros(n_keys, dtype=torch.int64),
            torch.zeros(5, dtype=torch.int64),
            torch.zeros(6, dtype=torch.int64),
        )
        keys_seen.add((key_of(hist), key_of(scatter)))
    assert len(keys_seen) == 1


def test_tiles_and_warps_are_chosen_per_width_class() -> None:
    assert [row_tile(t.block_n) for t in WIDTH_CLASSES] == list(WIDTH_CLASSES)
    assert row_tile(64).num_warps == 4 and row_tile(1024).num_warps == 8
    assert row_tile(64).block_m * 64 == 4096 and row_tile(1024).block_m * 1024 == 8192
    assert not row_tile(5000).single_pass
    launch = row_launches(8, 1024)[0]
    assert specialization(launch, SM90).options.num_warps == 8  # type: ignore[arg-type]
