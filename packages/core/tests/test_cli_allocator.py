"""The command keeps freed memory for reuse on glibc (fewer page faults in a streaming run)."""

from __future__ import annotations

import platform

import pytest
from pydotcompute.cli import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_the_command_keeps_freed_memory_for_reuse_on_glibc() -> None:
    assert keep_freed_memory() is True


@pytest.mark.skipif(platform.libc_ver()[0] == "glibc", reason="not glibc")
def test_elsewhere_nothing_changes() -> None:
    assert keep_freed_memory() is False
