"""Zero-copy flips: every tensor of a snapshot as a torch tensor at once (snapshot_tensors, which weightbus.torch
gives), in one C call for all of them and a few torch calls per run of memory, not per tensor.
"""
from __future__ import annotations

import operator
import re
import weakref
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from . import _dlpack, _table
from ._streams import stream_pointer
from .dtypes import itemsize
from .errors import UnsupportedError
from .snapshot import Snapshot, _Hold
from .topic import Topic


def snapshot_tensors(snapshot: Snapshot, stream: Any = None, *, borrow: bool = False) -> Dict[str, torch.Tensor]:
    """Every tensor and view of the snapshot as a torch tensor, by name in topic order, without a copy: what
    torch.from_dlpack(snapshot[name]) gives for each name, in one C call for all of them and a few torch calls
    per run of memory and per run of like tensors in it (a model's layers), not per tensor.

    The tensors are views of the leased version: each keeps it leased, after the snapshot's `with` block or
    release() too, until every one of them is garbage-collected. They share storages (one per run of memory
    holding many tensors: torch.save would write a whole run; clone() what you keep); empty tensors share
    nothing. They are read-only: a write kills the process (host memory is mapped read-only) or changes the
    version under every reader (CUDA). CUDA tensors are ordered after the GPU work that wrote the version on
    `stream` (None: each GPU's current stream), as torch.from_dlpack orders one tensor; the version stays leased
    while the tensors live, but GPU work reading them must be done before they die.

    borrow=True: the tensors are borrowed from the snapshot, as a C reader's pointers are: valid while it is
    open, and they do not keep it leased. In exchange a flip costs no torch call per run of memory: the tensors
    are made once for each place a version's tensors lie and handed out again (new dict, the same tensor
    objects) for every later version that lies there, from any snapshot of this topic handle: every version of
    an R = 1 topic (the library says they stayed, with no look at each tensor: wb_snapshot_place), each replica
    of an R >= 2 one. Their addresses stay, so CUDA graphs captured on them stay valid. Treat them as read-only
    in every way (no requires_grad_, resize_ or set_: the next version's dict holds the same objects); GPU work
    reading them must be done before the snapshot is released. Read after it, they give whatever the memory
    then holds, and, once the publisher has revoked that memory, memory no longer mapped (a crash, as in C).

    Raises StateError (the snapshot is released; a sharded topic, whose logical tensors have no one address:
    use shard() or a SlicePlan), UnsupportedError (a dtype this torch lacks: fp8 before torch 2.1, u16/u32/u64
    before 2.3), and the errors of a lookup (StaleError, NoCudaError...)."""
    with snapshot._lock:
        snapshot._check_open()
        plan, where = None, None
        if borrow:  # where the tensors lie, read before the table: a move after it gives another place
            where = _table.place(snapshot)
            last = _BORROWED.get(snapshot.topic)
            if where[0] and last is not None and last[0] == where:
                plan = last[1]  # they lie where they did: no table to read
        if plan is None:
            table, pointers, key = _table.read(snapshot)
            plan = _flip_plan(snapshot.topic, table, pointers, key)
        for device in plan.gpus:  # before any tensor exists: a consumer may launch work right after
            snapshot._order_stream(stream_pointer(stream if stream is not None else torch.cuda.current_stream(device)))
        if borrow:
            if plan.borrowed is None:
                plan.borrowed = plan.tensors(plan.bases(None))
            _BORROWED[snapshot.topic] = (where, plan)
            return dict(plan.borrowed)
        hold = _Hold(snapshot)
        bases = plan.bases(hold)
    return plan.tensors(bases)


_PAGE = 4096  # a hole between two mappings is at least a page: runs closer than that share no hole
_DIGITS = re.compile(r"\d+")


class _FlipPlan:
    """How snapshot_tensors makes a version's tensors lying where they lie: which runs of memory become one base
    tensor each (regions: (address, bytes, DLPack device)), each base viewed as the dtypes it holds (typed:
    (region, torch dtype, bytes viewed)), and the as_strided views of those (runs: (typed base, size, strides, offset in
    elements, unbound or not)) whose pieces, with the empty tensors after them, `order` puts in topic order.

    A region is tensors of one device whose bytes lie less than a page apart: it never spans memory that is not
    mapped, so a whole-storage operation (torch.save, a copy of the storage) can only read bytes of the topic.
    Tensors of one region, dtype, shape and strides at evenly spaced offsets are one as_strided view with a
    leading dimension, unbound into one view each (pieces in the gaps, at most as many as the tensors, are
    made and dropped). A model's layers are such runs: tensors are grouped by their names with the numbers taken
    out as well ("layers.#.input_layernorm.weight"), so that each kind of a layer's tensors forms its own run
    rather than breaking up another's."""

    def __init__(self, table: _table.TensorTable, pointers: Sequence[int]) -> None:
        unsupported = sorted({d for d in table.dtypes if d not in _TORCH_DTYPES})
        if unsupported:
            names = [n for n, d in zip(table.names, table.dtypes) if d in unsupported]
            raise UnsupportedError(f"torch {torch.__version__} has no dtype for {', '.join(unsupported)} "
                                   f"(tensors {names[:5]}): read them as bytes through NumPy, or a newer torch")
        self.table = table
        self.gpus = sorted({torch.device(d) for d in table.devices if d != "cpu"}, key=str)
        placed = self._place(table, pointers)
        typed: Dict[Tuple[int, str], int] = {}
        self.typed: List[Tuple[int, torch.dtype, int]] = []
        groups: Dict[Tuple[int, Tuple[int, ...], Tuple[int, ...], str], List[Tuple[int, int]]] = {}
        for position, (region, byte_offset) in placed.items():
            dtype = table.dtypes[position]
            if (region, dtype) not in typed:
                typed[(region, dtype)] = len(self.typed)
                whole = self.regions[region][1] - self.regions[region][1] % itemsize(dtype)
                self.typed.append((region, _TORCH_DTYPES[dtype], whole))
            key = (typed[(region, dtype)], table.shapes[position], table.strides[position],
                   _DIGITS.sub("#", table.names[position]))
            groups.setdefault(key, []).append((byte_offset // itemsize(dtype), position))
        self.runs: List[Tuple[int, Tuple[int, ...], Tuple[int, ...], int, bool]] = []
        pieces: Dict[int, int] = {}  # position -> index of its view in the pool
        size = 0  # of the pool
        for (which, shape, strides, _), members in groups.items():
            for offsets, positions, step in _even_runs(sorted(members)):
                if len(offsets) == 1:
                    self.runs.append((which, shape, strides, offsets[0], False))
                    pieces[positions[0]] = size
                    size += 1
                    continue
                count = (offsets[-1] - offsets[0]) // step + 1
                self.runs.append((which, (count, *shape), (step, *strides), offsets[0], True))
                for offset, position in zip(offsets, positions):
                    pieces[position] = size + (offset - offsets[0]) // step
                size += count
        self.empties: List[Tuple[Tuple[int, ...], Tuple[int, ...], str, str]] = []
        for position in range(table.count):
            if position not in placed:
                self.empties.append((table.shapes[position], table.strides[position], table.dtypes[position],
                                     table.devices[position]))
                pieces[position] = size
                size += 1
        order = [pieces[position] for position in range(table.count)]
        self.order: Callable[[List[torch.Tensor]], Sequence[torch.Tensor]] = \
            operator.itemgetter(*order) if len(order) > 1 else (lambda pool: [pool[i] for i in order])
        self.borrowed: Optional[Dict[str, torch.Tensor]] = None  # snapshot_tensors(borrow=True)'s, once made

    def bases(self, owner: Any) -> List[torch.Tensor]:
        """A uint8 tensor of each region, whose storage keeps `owner` (a _Hold, or None) until it dies."""
        return [torch.utils.dlpack.from_dlpack(_dlpack.export_region(start, size, device, owner))
                for start, size, device in self.regions]

    def tensors(self, bases: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Every tensor of the table, by name in topic order, as views of `bases`."""
        typed = [bases[region][:nbytes].view(dtype) for region, dtype, nbytes in self.typed]
        pool: List[torch.Tensor] = []
        for which, size, strides, offset, many in self.runs:
            view = typed[which].as_strided(size, strides, offset)
            if many:
                pool.extend(view.unbind(0))
            else:
                pool.append(view)
        for shape, strides, dtype, device in self.empties:
            pool.append(torch.empty_strided(shape, strides, dtype=_TORCH_DTYPES[dtype], device=device))
        return dict(zip(self.table.names, self.order(pool)))

    def _place(self, table: _table.TensorTable, pointers: Sequence[int]) -> Dict[int, Tuple[int, int]]:
        """Fills self.regions; returns {position: (region, byte offset in it)} for every tensor with bytes."""
        spans = sorted((table.devices[p], pointers[p], pointers[p] + table.extents[p], p)
                       for p in range(table.count) if table.extents[p])
        bounds: List[List[Any]] = []  # [device, start, end] per region
        placed: Dict[int, Tuple[int, int]] = {}
        for device, start, stop, position in spans:
            if not bounds or bounds[-1][0] != device or start >= bounds[-1][2] + _PAGE:
                bounds.append([device, start, stop])
            bounds[-1][2] = max(bounds[-1][2], stop)
            placed[position] = (len(bounds) - 1, start - bounds[-1][1])
        self.regions = [(start, stop - start, _dl_device(device)) for device, start, stop in bounds]
        for position, (region, byte_offset) in list(placed.items()):
            if byte_offset % itemsize(table.dtypes[position]):  # no view of the region's bytes as its dtype
                self.regions.append((pointers[position], table.extents[position],
                                     _dl_device(table.devices[position])))
                placed[position] = (len(self.regions) - 1, 0)
        return placed


def _dl_device(device: str) -> Tuple[int, int]:
    return (1, 0) if device == "cpu" else (2, torch.device(device).index)


def _even_runs(members: List[Tuple[int, int]]) -> Iterator[Tuple[List[int], List[int], int]]:
    """Splits (offset, position) pairs sorted by offset into runs at evenly spaced offsets: (offsets, positions,
    step). A run's step is its first gap; it takes the next member while that lies on the step's grid and the
    run's slots stay at most twice its members. Members at an offset already taken go round again."""
    while members:
        again: List[Tuple[int, int]] = []
        offsets, positions, step = [members[0][0]], [members[0][1]], 0
        for offset, position in members[1:]:
            if offset == offsets[-1]:
                again.append((offset, position))
                continue
            distance = offset - offsets[0]
            step = step or distance
            if distance % step == 0 and distance // step < 2 * (len(offsets) + 1):
                offsets.append(offset)
                positions.append(position)
                continue
            yield offsets, positions, step
            offsets, positions, step = [offset], [position], 0
        yield offsets, positions, step or 1
        members = again


# Per topic handle: the plans of the last few pointer layouts (R >= 2 alternates between replicas).
_PLANS: "weakref.WeakKeyDictionary[Topic, Dict[bytes, _FlipPlan]]" = weakref.WeakKeyDictionary()
_PLANS_KEPT = 8
# Per topic handle: the place (wb_snapshot_place, tensor count) and plan of the last borrowed flip.
_BORROWED: "weakref.WeakKeyDictionary[Topic, Tuple[Tuple[int, int], _FlipPlan]]" = weakref.WeakKeyDictionary()


def _flip_plan(topic: Topic, table: _table.TensorTable, pointers: Sequence[int], key: bytes) -> _FlipPlan:
    plans = _PLANS.setdefault(topic, {})
    plan = plans.get(key)
    if plan is None or plan.table is not table:
        plan = _FlipPlan(table, pointers)
        if len(plans) >= _PLANS_KEPT:
            del plans[next(iter(plans))]
        plans[key] = plan
    return plan


def _torch_dtypes() -> Dict[str, torch.dtype]:
    """weightbus dtype -> torch.dtype, for those this torch has."""
    from .dtypes import names, torch_dtype

    found = {}
    for name in names():
        try:
            found[name] = torch_dtype(name)
        except ValueError:  # this torch lacks it
            pass
    return found


_TORCH_DTYPES = _torch_dtypes()
