"""What Client and Topic share as context managers: close() on exit."""
from __future__ import annotations

from typing import Any

from .errors import StateError


class ClosesOnExit:
    """`with obj:` closes obj at the end of the block. A close refused because snapshots are still alive
    (StateError) is raised only when the block itself succeeded: otherwise the block's own exception says more,
    and the garbage collector closes the object later."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.close()
        except StateError:
            if exc_type is None:
                raise
