"""Issue 14's hangs, as a user's program meets them: a real ``asyncio.run`` in its own
process, which must end (or name the kernel that stops it) within a bound."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

BOUND_S = 60  # a hang fails the test here instead of stalling the suite

SWALLOWING = """
    import asyncio, logging
    from pydotcompute import RingKernelRuntime

    logging.basicConfig(level=logging.ERROR)

    async def immortal(ctx):
        while True:
            try:
                await asyncio.sleep(0.05)
            except BaseException:
                continue

    async def main():
        async with RingKernelRuntime(grace_period=0.05) as runtime:
            await runtime.launch("immortal", immortal)
            await runtime.activate("immortal")

    asyncio.run(main())
    print("asyncio.run returned", flush=True)
"""

# The kernel never awaits. The program can only end because a handler leaves the
# process as soon as the watchdog's warning is logged; with no warning within 30 s it
# stops spinning and says so.
BLOCKING = """
    import asyncio, logging, os, sys, time
    from pydotcompute import RingKernelRuntime

    class ExitOnWarning(logging.StreamHandler):
        def emit(self, record):
            super().emit(record)
            if "running without awaiting" in record.getMessage():
                self.flush()
                os._exit(0)

    logging.getLogger("pydotcompute").addHandler(ExitOnWarning(sys.stderr))

    async def spinner(ctx):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pass

    async def main():
        async with RingKernelRuntime(loop_block_threshold=0.3) as runtime:
            await runtime.launch("spinner", spinner)
            await asyncio.sleep(60)

    asyncio.run(main())
    print("no warning came", flush=True)
    sys.exit(1)
"""


def _run(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=BOUND_S,
        check=False,
    )


def test_asyncio_run_returns_despite_a_kernel_that_swallows_cancellation(
    tmp_path: Path,
) -> None:
    done = _run(tmp_path, SWALLOWING)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "asyncio.run returned\n"
    assert "kernel 'immortal' ignored termination" in done.stderr
    assert "cannot block exit" in done.stderr
    assert "await asyncio.sleep(0.05)" in done.stderr  # where it was stuck


def test_a_kernel_that_never_awaits_is_named_with_its_stack(tmp_path: Path) -> None:
    done = _run(tmp_path, BLOCKING)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kernel 'spinner' is running without awaiting" in done.stderr
    assert ", in spinner\n" in done.stderr  # the stack reaches into the kernel
    assert "asyncio.to_thread" in done.stderr
