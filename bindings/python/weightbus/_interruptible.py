"""Blocking C calls made in slices, so that Ctrl-C reaches Python while they wait.

Python runs its signal handlers (KeyboardInterrupt for SIGINT) between bytecodes, never during a ctypes call:
a wait without a limit would hold Ctrl-C back for ever. call_in_slices makes the C call wait at most SLICE_MS at
a time and comes back to Python in between, until the caller's own timeout runs out. It serves only calls that
leave nothing behind when they time out (no lease, no open update, no half-made state), so that an interrupt
between two slices leaves nothing behind either; a call that succeeds in the slice the signal arrives in is the
caller's to undo (see Topic.snapshot and Topic.update).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Optional

from ._lib import timeout_ms
from .errors import WaitTimeoutError

# A KeyboardInterrupt arrives at most this late (plus the scheduler's delays); each slice costs one C call.
SLICE_MS = 50


def call_in_slices(call: Callable[[int], Any], timeout: Optional[float]) -> Any:
    """call(ms) with ms <= SLICE_MS until it returns without WaitTimeoutError, for at most `timeout` seconds
    (None: without a limit); then its WaitTimeoutError, whose message names `timeout` as the C call's would."""
    total_ms = timeout_ms(timeout)
    if 0 <= total_ms <= SLICE_MS:
        return call(total_ms)
    deadline = None if total_ms < 0 else time.monotonic() + total_ms / 1000
    while True:
        slice_ms = SLICE_MS if deadline is None else min(SLICE_MS, _ms_until(deadline))
        try:
            return call(slice_ms)
        except WaitTimeoutError as e:
            if deadline is not None and time.monotonic() >= deadline:
                raise _for_the_whole_call(e, slice_ms, total_ms) from None


def _ms_until(deadline: float) -> int:
    return max(0, math.ceil((deadline - time.monotonic()) * 1000))


def _for_the_whole_call(error: WaitTimeoutError, slice_ms: int, total_ms: int) -> WaitTimeoutError:
    """The last slice's error, its "<slice_ms> ms" (the C library names the timeout it was given) made the
    caller's total."""
    message, said = error.args[0], f" {slice_ms} ms"
    at = message.rfind(said)
    if at >= 0:
        message = f"{message[:at]} {total_ms} ms{message[at + len(said):]}"
    return WaitTimeoutError(message, error.code)
