"""PyTorch helpers: publish a module's parameters and persistent buffers (what its state_dict() holds) as
versions of a topic, and load a version into a module.

    publisher = ModulePublisher(client.create_topic("policy"), model)   # copies into weightbus-owned replicas
    publisher.publish(metadata=b"step 10")                               # on the current stream, no host sync

    load_module(client.open_topic("policy"), server_model)                # copy-into on the current stream
    with client.open_topic("policy").snapshot() as s:
        weights = snapshot_tensors(s)                                     # zero-copy: {name: torch tensor}

Sharded models (docs/sharded-models.md): a trainer rank describes its shards as dicts (split_shard,
replicated_shard, shards_from_dtensors), allocates them (Topic.alloc_shards) and publishes them (publish_shards);
a tensor-parallel server rank describes what it wants (vllm_tp_layout, or dest dicts of its own) and copies it
with a SlicePlan every version (load_slices).

load_module (and weightbus.serving's plans) convert on the way where a module holds FP8 weights of a bf16, f16
or f32 topic, writing the scales into the weights' scale parameters, and round f32 into bf16 (weightbus.convert).
"""
from __future__ import annotations

import contextlib
import operator
import re
import time
import weakref
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple,
                    Union)

import torch

from ._flip import snapshot_tensors  # noqa: F401 (one of this module's: the zero-copy flip)
from .convert import FP8, INTO_FP8, Convert, check_block, converts
from .errors import InvalidArgumentError, NotFoundError, StateError, UnsupportedError
from .plan import SlicePlan, parts_merged, parts_qkv, split, split_vocab
from .snapshot import CopyPlan, Snapshot
from .topic import Topic

# How a module's names map to the topic's: a dict, or a function returning the topic's name (None: skip it).
NameMap = Union[None, Mapping[str, str], Callable[[str], Optional[str]]]
Shard = Dict[str, Any]  # a trainer rank's shard: split_shard, replicated_shard, shards_from_dtensors
Dest = Dict[str, Any]   # a slice plan's destination (weightbus.plan)


def module_tensors(module: torch.nn.Module, include_buffers: bool = True) -> Dict[str, torch.Tensor]:
    """The module's parameters and persistent buffers by name, as plain tensors: the tensors of its
    state_dict() (include_buffers=False: the parameters alone)."""
    return {name: t.detach() for name, t in _named_tensors(module, include_buffers)}


def _named_tensors(module: torch.nn.Module, include_buffers: bool) -> List[Tuple[str, torch.Tensor]]:
    """The module's parameters (and persistent buffers), the objects themselves (Parameter, buffer), by name."""
    named = list(module.named_parameters())
    if include_buffers:
        owners = dict(module.named_modules())
        named += [(name, buffer) for name, buffer in module.named_buffers() if _persistent(owners, name)]
    return named


def _persistent(owners: Mapping[str, torch.nn.Module], name: str) -> bool:
    """Whether buffer `name` is persistent: state_dict() leaves the others out (caches a module recomputes, such as
    rotary embeddings' tables), and so do publishing and loading."""
    owner, _, key = name.rpartition(".")
    return key not in owners[owner]._non_persistent_buffers_set


def _gpu_of(tensors: Iterable[torch.Tensor]) -> Optional[torch.device]:
    """The one GPU of the CUDA tensors among `tensors` (None: all on the host)."""
    devices = {t.device for t in tensors if t.is_cuda}
    if len(devices) > 1:
        raise InvalidArgumentError(f"tensors on several GPUs ({sorted(map(str, devices))}): publish each GPU's "
                                   "tensors as its own topic", -1)
    return devices.pop() if devices else None


def _current_stream(tensors: Mapping[str, torch.Tensor]) -> Optional[torch.cuda.Stream]:
    device = _gpu_of(tensors.values())
    return torch.cuda.current_stream(device) if device is not None else None


class ModulePublisher:
    """Publishes a module's parameters and persistent buffers (its state_dict()'s tensors, which load_module
    loads; include_buffers=False: the parameters alone) as versions of a topic (the publisher's handle).

    mode="copy" (default): the topic holds its own R replicas, on the tensors' GPU (VMM memory that outlives
    this process) or in shared host memory for CPU tensors; publish() copies the tensors into the version being
    written on the current CUDA stream and publishes on that stream: no host wait.

    mode="register": the topic shares the tensors' own CUDA memory, without any copy (R must be 1). Every
    change to them must happen inside `with publisher.writing():`, which waits until no reader holds the
    previous version and publishes the new one at its end: a forward pass in training mode changes buffers too
    (BatchNorm's running statistics).
    """

    def __init__(self, topic: Topic, module: torch.nn.Module, mode: str = "copy",
                 include_buffers: bool = True) -> None:
        if mode not in ("copy", "register"):
            raise ValueError(f"mode must be 'copy' or 'register', not {mode!r}")
        self.topic, self.mode = topic, mode
        self.tensors = {name: t for name, t in module_tensors(module, include_buffers).items()}
        self._stream = _current_stream(self.tensors)
        self._destinations: Dict[Tuple[str, int], torch.Tensor] = {}
        if mode == "copy":
            self._allocate()
        else:
            self._register()

    def _allocate(self) -> None:
        by_device: Dict[Optional[int], Dict[str, Tuple[Tuple[int, ...], torch.dtype]]] = {}
        for name, t in self.tensors.items():
            by_device.setdefault(t.device.index if t.is_cuda else None, {})[name] = (tuple(t.shape), t.dtype)
        for device, tensors in by_device.items():
            self.topic.alloc(tensors, device=device)

    def _register(self) -> None:
        if self.topic.info().replicas != 1:
            raise InvalidArgumentError("mode='register' shares the parameters in place: create the topic with "
                                       "replicas=1", -1)
        not_cuda = [name for name, t in self.tensors.items() if not t.is_cuda]
        if not_cuda:
            raise InvalidArgumentError(f"mode='register' needs CUDA tensors; on the CPU: {not_cuda[:5]}", -1)
        self.topic.register_cuda(self.tensors)

    def publish(self, metadata: bytes = b"", timeout: Optional[float] = None) -> int:
        """mode="copy": copies the parameters into a new version and publishes it; returns its number."""
        if self.mode != "copy":
            raise StateError("WB_E_STATE: registered parameters are published by `with publisher.writing():` "
                             "around the code that changes them", -17)
        with self.topic.update(timeout) as update:
            for name, source in self.tensors.items():
                self._destination(update, name).copy_(source, non_blocking=True)
            update.metadata, update.stream = metadata, self._stream
        assert update.published_version is not None
        return update.published_version

    def _destination(self, update, name: str) -> torch.Tensor:
        """The version's tensor `name` as a torch tensor: one per replica, made once (they never move)."""
        tensor = update.tensor(name)
        key = (name, tensor.data_ptr)
        if key not in self._destinations:
            self._destinations[key] = torch.from_dlpack(tensor)
        return self._destinations[key]

    @contextlib.contextmanager
    def writing(self, metadata: bytes = b"", timeout: Optional[float] = None) -> Iterator[None]:
        """mode="register": the block changes the parameters in place; readers see the result as one new version
        when the block ends (nothing is published if it raises)."""
        if self.mode != "register":
            raise StateError("WB_E_STATE: writing() is for mode='register'; use publish()", -17)
        with self.topic.update(timeout) as update:
            for name in self.tensors:
                update.tensor(name)
            update.metadata, update.stream = metadata, self._stream
            yield


def _target_name(name_map: NameMap, name: str) -> Optional[str]:
    if name_map is None:
        return name
    if callable(name_map):
        return name_map(name)
    return name_map.get(name, name)


def load_module(topic: Topic, module: torch.nn.Module, version: int = 0, name_map: NameMap = None,
                strict: bool = True, include_buffers: bool = True, timeout: Optional[float] = None,
                fp8_block: Tuple[int, int] = (128, 128), after: Optional[int] = None) -> int:
    """Copies version `version` (0: the latest) into the module's parameters and persistent buffers (the
    tensors of its state_dict(), BatchNorm's running statistics included; include_buffers=False: the parameters
    alone), on the current CUDA stream after the version's GPU work, and returns the version loaded. `name_map`
    maps the module's names to the topic's. strict=True: every mapped tensor must exist in the topic; shapes
    must match in any case, and dtypes too, but for the conversions made on the way:

    - an FP8 tensor (float8_e4m3fn, float8_e5m2) fed from a bf16, f16 or f32 one is quantized, its scales
      written into the module's scale parameter of it: for "x.weight", "x.weight_scale_inv" (blocks of
      `fp8_block` rows x columns, shape [ceil(N / rows), ceil(K / cols)]: DeepSeek-V3's, vLLM's and SGLang's
      block FP8) or "x.weight_scale" (numel 1: one scale for the tensor; [N] or [N, 1]: one per row). That
      parameter is not looked for in the topic.
    - a bf16 tensor fed from an f32 one is rounded (to nearest even).

    Raises NotFoundError (strict: a tensor the topic lacks), InvalidArgumentError (WB_E_SHAPE: a shape or dtype
    that does not fit, a scale parameter whose shape is not its layout's; WB_E_INVAL: a converted tensor without
    a scale parameter, one that is not float32 or not contiguous), ValueError (fp8_block not two positive
    integers), and the errors of Topic.snapshot and SlicePlan.

    The first call for a module resolves its tensors into a SlicePlan (one copy kernel for every tensor) and
    keeps it with the topic; later calls only run it. While the copies run, the call checks that the module
    still has the same tensors at the same addresses (replaced parameters or buffers, `param.data = ...`); if
    not, it makes the plan again and copies again. The same name_map (the same function, or an equal dict) and
    options keep it.

    after=N, for a server's loop (`seen = load_module(topic, model, after=seen)`): loads the latest version if
    it is newer than N, else waits for the next one and loads it. What does not depend on the version (the plan,
    and the check that the module still has its tensors) is done before the wait, and the plan is armed for the
    version (SlicePlan.arm: leased before it is published), on a stream of its own that follows the current
    one: the library's own wait starts the copies, with no Python in between, or, with WEIGHTBUS_GPU_ARMS=on in
    the environment (weightbus.h, "GPU arms": opt-in), they are enqueued there before the version exists and the
    GPU starts them the moment it is published, if it is within 100 ms (the hold: until then, what waits for the
    whole device in this process, torch.cuda.synchronize() included, waits for that stream).
    Either way they are done when the call returns. The errors of the module against the topic's tensors
    come before the wait too (after the first version: before it, nothing can be checked). Raises
    WaitTimeoutError when no newer version comes within `timeout` seconds (the module untouched), ValueError
    with a `version`."""
    options = _Options(name_map, strict, include_buffers, _fp8_block(fp8_block))
    if after is None:
        return _load(topic, module, options, version, timeout, _loader(topic, module, options), checked=False)
    if version:
        raise ValueError(f"load_module: version={version} and after={after}: pass one of them")
    ready = _ready_loader(topic, module, options)
    if ready is not None:
        return _load_armed(topic, module, options, after, timeout, ready)
    deadline = None if timeout is None else time.monotonic() + timeout
    topic.wait(after=after, timeout=timeout)
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    return _load(topic, module, options, 0, left, _loader(topic, module, options), checked=False)


def _ready_loader(topic: Topic, module: torch.nn.Module, options: _Options) -> Optional[_Loader]:
    """load_module's plan for the module, checked against it, made before waiting for a version; None before
    the topic's first version (its tensors are not known yet)."""
    if topic.latest == 0:
        return None
    loader = _loader(topic, module, options)
    return loader if loader.fits(module) else _loader(topic, module, options, rebuild=True)


_arm_streams: Dict[torch.device, Any] = {}


def _arm_stream(device: torch.device) -> Any:
    """load_module(after=)'s stream on `device`, made once: one of torch's pool, which do not wait for the
    legacy default stream (CUDA's non-blocking streams), as GPU arms need. torch hands out its pool's 32 streams
    in turn, so code that asks for 32 more gets this one too, and its work there may wait for a GPU arm's hold
    (100 ms at most by default): torch makes no stream of a process's own."""
    stream = _arm_streams.get(device)
    if stream is None:
        stream = _arm_streams[device] = torch.cuda.Stream(device)
    return stream


def _load_armed(topic: Topic, module: torch.nn.Module, options: _Options, after: int, timeout: Optional[float],
                loader: _Loader) -> int:
    """load_module(after=)'s load by `loader`, checked against the module: its plan armed for the first version
    after `after`, which the wait copies (SlicePlan.arm)."""
    stream = None
    if loader.device is not None:
        # The arm's own stream, after the current one's work so far: the library may enqueue the copies on it
        # before the version is published (a GPU arm), holding it until then, which must not hold up the
        # current stream's other work.
        stream = _arm_stream(loader.device)
        stream.wait_stream(torch.cuda.current_stream(loader.device))
    with loader.plan.arm(after, stream) as armed:
        loader.on_stream = armed.on_stream  # for benchmarks: whether the GPU started the copies itself
        snapshot = armed.wait(timeout)
    with snapshot:
        current = _loader(topic, module, options)  # the same one, unless a view came during the wait
        if current is loader:
            if loader.scalars is not None:
                snapshot.copy_into(loader.scalars, stream)
        else:
            current.run(snapshot, stream)  # made from the module just now: it fits
        if stream is not None:
            stream.synchronize()  # the copies read the snapshot: they must end before its release
        return snapshot.version


def _load(topic: Topic, module: torch.nn.Module, options: _Options, version: int, timeout: Optional[float],
          loader: _Loader, checked: bool) -> int:
    """Copies `version` into the module by `loader`, whose fit to the module is checked while the copies run
    unless it was just `checked`."""
    stream = torch.cuda.current_stream(loader.device) if loader.device is not None else None
    with topic.snapshot(version, timeout) as snapshot:
        loader.run(snapshot, stream)
        if not checked and not loader.fits(module):  # checked while the GPU copies; stray copies went into
            if stream is not None:                   # storages it keeps
                stream.synchronize()
            loader = _loader(topic, module, options, rebuild=True)
            loader.run(snapshot, stream)
        if stream is not None:
            stream.synchronize()  # the copies read the snapshot: they must end before its release
        return snapshot.version


class _Options(NamedTuple):
    """load_module's options that its plan depends on."""
    name_map: NameMap
    strict: bool
    include_buffers: bool
    fp8_block: Tuple[int, int]


class _Loader:
    """What load_module keeps per topic and module between versions: the plan into the module's tensors, and
    what must not have changed for it to stay right: the options, the topic's tensor count (its tensors are
    sealed by the first publish, but views may come later), and the module's parameters and buffers (names,
    objects, addresses, shapes)."""

    def __init__(self, topic: Topic, module: torch.nn.Module, options: _Options) -> None:
        self.tensor_count = topic.tensor_count()
        name_map = options.name_map
        self.options = options._replace(name_map=dict(name_map) if isinstance(name_map, Mapping) else name_map)
        self.include_buffers = options.include_buffers
        self._remember(module)
        # The plan keeps them: their storages outlive a replacement.
        tensors = {name: tensor.detach() for name, tensor in zip(self.names, self.tensors)}
        sources = {name: _target_name(name_map, name) for name in tensors}
        layout = {t.name: t for t in topic.layout()}
        dests: Dict[str, Dest] = {}
        for name, source in sources.items():
            if source in layout:
                _check_fits(name, source, layout[source], tensors[name])
                extent = list(layout[source].shape)
                dests[name] = {"dst": tensors[name], "parts": [{"name": source, "extent": extent}]}
        converted = _conversions(dests, tensors, {n: t.dtype for n, t in layout.items()}, options.fp8_block)
        missing = [source for name, source in sources.items()
                   if source is not None and source not in layout and name not in converted.filled]
        if missing and options.strict:
            raise NotFoundError(f"WB_E_NOT_FOUND: topic {topic.name!r} has no tensor {missing[:5]} "
                                f"({len(missing)} missing; map names with name_map or pass strict=False)", -3)
        self.device = _gpu_of(dest["dst"] for dest in converted.dests.values())
        self.plan = _plan(topic, [d for d in converted.dests.values() if d["dst"].dim()], converted.spreads)
        scalars = {}  # a plan's boxes have dimensions: copy-into takes 0-d tensors
        for dest in converted.dests.values():
            source = dest["parts"][0]["name"]
            if not dest["dst"].dim():
                scalars[source] = _scalar_target(dest, layout[source].dtype)
        self.scalars = CopyPlan(scalars) if scalars else None

    def run(self, snapshot: Snapshot, stream: Optional[torch.cuda.Stream]) -> None:
        self.plan.run(snapshot, stream)
        if self.scalars is not None:
            snapshot.copy_into(self.scalars, stream)

    def same_options(self, topic: Topic, options: _Options) -> bool:
        if topic.tensor_count() != self.tensor_count:
            return False
        if options[1:] != self.options[1:]:
            return False
        name_map, kept = options.name_map, self.options.name_map
        if isinstance(name_map, Mapping):  # an equal dict, else the same function (or None)
            return isinstance(kept, Mapping) and name_map == kept
        return name_map is kept

    def _remember(self, module: torch.nn.Module) -> None:
        """Takes down the module's tensors, and where each of them and each submodule hangs (the dict of its
        owner and its key there), so that fits() can check them without walking the module again."""
        self.registrations = _registrations()
        named = _named_tensors(module, self.include_buffers)
        self.names = tuple(name for name, _ in named)
        self.tensors = tuple(tensor for _, tensor in named)
        self.addresses, self.shapes = _placement(self.tensors)
        modules = dict(module.named_modules())
        hangers: List[Tuple[Dict[str, Any], str, Any]] = []  # (the owner's dict, the key there, the object)
        for name, child in modules.items():
            if name:
                parent, _, key = name.rpartition(".")
                hangers.append((modules[parent]._modules, key, child))
        for name, tensor in named:
            owner, _, key = name.rpartition(".")
            table = modules[owner]._parameters if key in modules[owner]._parameters else modules[owner]._buffers
            hangers.append((table, key, tensor))
        self.tables, self.keys, self.objects = (tuple(column) for column in zip(*hangers)) if hangers else ((), (), ())

    def fits(self, module: torch.nn.Module) -> bool:
        """Whether the module still has the tensors the plan copies into: each submodule and tensor where it was
        (by identity: never compared by value), at the same address and shape. Additions are seen through torch's
        registration hooks (torch >= 2.0); without them, or after any registration in the process, the module is
        walked again (named_parameters: about a microsecond per parameter)."""
        if not all(map(operator.is_, map(dict.get, self.tables, self.keys), self.objects)):
            return False
        if _placement(self.tensors) != (self.addresses, self.shapes):
            return False
        if self.registrations is not None and self.registrations == _registrations():
            return True
        named = _named_tensors(module, self.include_buffers)
        if tuple(name for name, _ in named) != self.names or \
                not all(map(operator.is_, (tensor for _, tensor in named), self.tensors)):
            return False
        self._remember(module)  # the same tensors: the walk is not needed again until the next registration
        return True


def _placement(tensors: Sequence[torch.Tensor]) -> Tuple[List[int], List[torch.Size]]:
    return list(map(torch.Tensor.data_ptr, tensors)), [t.shape for t in tensors]


# Registrations of parameters, buffers and submodules anywhere in the process, counted through torch's global
# hooks (torch >= 2.0), so that load_module sees a module gain a tensor without walking it every version.
_registration_count = [0]
_hooked: List[bool] = []


def _count_registration(*_: Any) -> None:
    _registration_count[0] += 1  # returns None: the registration goes ahead unchanged


def _registrations() -> Optional[int]:
    """The count of registrations so far, or None where torch has no registration hooks."""
    if not _hooked:
        hooks = [getattr(torch.nn.modules.module, f"register_module_{kind}_registration_hook", None)
                 for kind in ("parameter", "buffer", "module")]
        if all(hooks):
            for hook in hooks:
                hook(_count_registration)
        _hooked.append(all(hooks))
    return _registration_count[0] if _hooked[0] else None


# Per topic, per module: weak on both, so that neither is kept alive by having been loaded.
_LOADERS: "weakref.WeakKeyDictionary[Topic, weakref.WeakKeyDictionary[torch.nn.Module, _Loader]]" = \
    weakref.WeakKeyDictionary()


def _loader(topic: Topic, module: torch.nn.Module, options: _Options, rebuild: bool = False) -> _Loader:
    per_module = _LOADERS.setdefault(topic, weakref.WeakKeyDictionary())
    loader = per_module.get(module)
    if loader is not None and not rebuild and loader.same_options(topic, options):
        return loader
    if loader is not None:
        loader.plan.close()
        del per_module[module]
    loader = _Loader(topic, module, options)
    per_module[module] = loader
    return loader


def _check_fits(name: str, source: str, want: Any, tensor: torch.Tensor) -> None:
    """That module tensor `name` can receive topic tensor `source` (`want`, its TensorLayout): the same shape, and
    the same dtype or one a conversion makes of it; a last dimension that is contiguous, as plans copy rows."""
    dtype = _dtype_name(tensor.dtype)
    if want.shape != tuple(tensor.shape) or (want.dtype != dtype and not converts(want.dtype, dtype)):
        raise InvalidArgumentError(f"WB_E_SHAPE: {source!r} is {want.dtype}{list(want.shape)} in the topic but "
                                   f"{tensor.dtype}{list(tensor.shape)} in the module (load_module converts bf16, f16 "
                                   "and f32 into FP8 and f32 into bf16, nothing else)", -7)
    if tensor.dim() and tensor.stride(-1) != 1 and tensor.shape[-1] != 1:
        raise InvalidArgumentError(f"WB_E_SHAPE: {name!r} has strides {list(tensor.stride())} in the module: "
                                   "load_module copies rows, so the last dimension must be contiguous", -7)


def _scalar_target(dest: Dest, source: str) -> Any:
    """A 0-d destination fed from a tensor of dtype `source`, as copy-into takes it: the tensor itself, or a
    Convert where the dtypes differ."""
    if _dtype_name(dest["dst"].dtype) == source:
        return dest["dst"]
    return Convert(dest["dst"], scale=dest.get("scale"), layout=dest.get("scale_layout"), block=dest.get("block"))


def _dtype_name(dtype: torch.dtype) -> str:
    from .dtypes import dtype_name

    return dtype_name(dtype)


# Conversions on the way ---------------------------------------------------------------------------------------

class _Converted(NamedTuple):
    dests: Dict[str, Dest]      # by module tensor name, with their conversions' keys; no scale parameter's own
    filled: Set[str]            # the scale parameters that conversions fill
    spreads: List[torch.Tensor]  # scale parameters (flat) whose first element is to be copied over the rest


def _conversions(dests: Mapping[str, Dest], tensors: Mapping[str, torch.Tensor], sources: Mapping[str, str],
                 fp8_block: Tuple[int, int]) -> _Converted:
    """`dests` (by module tensor name) with what converts them on the way: an FP8 tensor fed from a bf16, f16 or
    f32 one gets its scale parameter (found among `tensors`, the module's by name) as the dest's scale, and that
    parameter's own dest is left out. `sources`: the topic's dtypes by tensor name. A bf16 tensor fed from f32
    needs nothing added: its dtype says it."""
    converted: Dict[str, Dest] = {}
    filled: Set[str] = set()
    spreads: List[torch.Tensor] = []
    for name, dest in dests.items():
        source = sources.get(dest["parts"][0]["name"])  # None: not in the topic, which the plan reports
        dtype = _dtype_name(dest["dst"].dtype)
        if dtype not in FP8 or source not in INTO_FP8:
            converted[name] = dest
            continue
        scale_name, keys, spread = _fp8_scale(name, dest["dst"], tensors, len(dest["parts"]), fp8_block, source)
        converted[name] = {**dest, **keys}
        filled.add(scale_name)
        if spread is not None:
            spreads.append(spread)
    return _Converted({n: d for n, d in converted.items() if n not in filled}, filled, spreads)


def _fp8_scale(name: str, dst: torch.Tensor, tensors: Mapping[str, torch.Tensor], parts: int,
               fp8_block: Tuple[int, int], source: str) -> Tuple[str, Dict[str, Any], Optional[torch.Tensor]]:
    """The scale parameter of FP8 tensor `name` (dst, made of `parts` parts, fed from `source`): its name, the
    dest keys that write it, and the flat parameter when its one scale must be spread over it."""
    found = [n for n in (name + "_scale_inv", name + "_scale") if n in tensors]
    if not found:
        raise InvalidArgumentError(f"WB_E_INVAL: {name!r} is {_dtype_name(dst.dtype)} and its source {source}: "
                                   f"converting it needs its scale parameter {name + '_scale_inv'!r} (blocks) or "
                                   f"{name + '_scale'!r} (per tensor or row), and the module has neither", -1)
    scale_name = found[0]
    scale = tensors[scale_name]
    if scale.dtype != torch.float32 or not scale.is_contiguous():
        raise InvalidArgumentError(f"WB_E_INVAL: {scale_name!r}, the scales of {name!r}, must be a contiguous "
                                   f"float32 tensor, not {scale.dtype} with strides {list(scale.stride())}", -1)
    shape, rows = list(scale.shape), dst.shape[0] if dst.dim() else 1
    if scale_name.endswith("_scale_inv"):
        blocks = [-(-dst.shape[0] // fp8_block[0]), -(-dst.shape[1] // fp8_block[1])] if dst.dim() == 2 else None
        if shape != blocks:
            raise InvalidArgumentError(f"WB_E_SHAPE: {scale_name!r} is {shape}, but {name!r} {list(dst.shape)} in "
                                       f"blocks of fp8_block={tuple(fp8_block)} has " +
                                       (f"{blocks} scales" if blocks else "no blocks: it is not 2-D"), -7)
        return scale_name, {"scale": scale, "scale_layout": "block", "block": tuple(fp8_block)}, None
    if scale.numel() == 1:
        return scale_name, {"scale": scale, "scale_layout": "tensor"}, None
    if shape in ([rows], [rows, 1]):
        return scale_name, {"scale": scale, "scale_layout": "channel"}, None
    if parts > 1 and scale.numel() == parts:
        # vLLM keeps one weight_scale per logical part of a fused weight (q, k, v) until
        # process_weights_after_loading requantizes the parts to their max. Converted here, the whole destination
        # has one scale: written into every element, the max is that scale and the requantization changes nothing.
        flat = scale.view(-1)
        return scale_name, {"scale": flat[:1], "scale_layout": "tensor"}, flat
    raise InvalidArgumentError(f"WB_E_SHAPE: {scale_name!r} is {shape}, but {name!r} {list(dst.shape)} takes one "
                               f"scale (numel 1), one per row ([{rows}] or [{rows}, 1])" +
                               (f" or one per part (numel {parts})" if parts > 1 else ""), -7)


def _fp8_block(block: Any) -> Tuple[int, int]:
    """fp8_block as given, checked: two positive integers (ValueError otherwise)."""
    if block is None:
        raise ValueError("fp8_block must be (rows, cols), two positive integers, not None")
    return check_block("fp8_block", "block", block)


def _plan(topic: Topic, dests: Sequence[Dest], spreads: Sequence[torch.Tensor]) -> SlicePlan:
    """A SlicePlan of `dests`; one that spreads scales after each run where there are `spreads`."""
    return _SpreadingPlan(topic, dests, spreads) if spreads else SlicePlan(topic, dests)


class _SpreadingPlan(SlicePlan):
    """A SlicePlan that, after each run, copies the first element of each of `spreads` over the rest, on the
    run's stream (a torch.cuda.Stream or None): fused destinations' one scale, for vLLM (see _fp8_scale)."""

    def __init__(self, topic: Topic, dests: Sequence[Dest], spreads: Sequence[torch.Tensor]) -> None:
        super().__init__(topic, dests)
        self._spreads = list(spreads)

    def _ran(self, stream: Any) -> None:
        with torch.cuda.stream(stream) if isinstance(stream, torch.cuda.Stream) else contextlib.nullcontext():
            for flat in self._spreads:
                flat[1:] = flat[0]

    def close(self) -> None:
        super().close()
        self._spreads = []


# Sharded models -----------------------------------------------------------------------------------------------

def split_shard(name: str, tensor: torch.Tensor, logical_shape: Sequence[int], rank: int, ranks: int,
                dim: int = 0, mode: str = "chunk") -> Shard:
    """The shard description of `tensor`, rank `rank` of `ranks`'s part of logical tensor `name` split along
    `dim`: mode "chunk" for FSDP (torch.chunk, DTensor Shard(dim): the last ranks' parts short or empty), "even"
    for Megatron tensor parallelism. ValueError if the tensor's shape is not that part's."""
    logical = tuple(logical_shape)
    offset, extent = split(logical[dim], rank, ranks, mode)
    want = logical[:dim] + (extent,) + logical[dim + 1:]
    if tuple(tensor.shape) != want:
        raise ValueError(f"{name!r}: rank {rank} of {ranks} holds {list(want)} of {list(logical)} split along "
                         f"dimension {dim} ({mode}), not {list(tensor.shape)}")
    return {"name": name, "tensor": tensor, "logical_shape": logical,
            "offset": tuple(offset if d == dim else 0 for d in range(len(logical))), "extent": want}


def replicated_shard(name: str, tensor: torch.Tensor) -> Shard:
    """The shard description of a tensor every rank holding it holds whole and alike (norms, biases)."""
    return {"name": name, "tensor": tensor, "logical_shape": tuple(tensor.shape), "replicated": True}


def shards_from_dtensors(state_dict: Mapping[str, Any]) -> List[Shard]:
    """This rank's shard descriptions of a state dict of DTensors (FSDP2, torch.distributed.tensor): box from
    compute_local_shape_and_global_offset, "tensor" the local tensor; a box some mesh dimension replicates is
    flagged replicated; plain tensors are replicated whole. Partial placements are refused (reduce first).
    Raises UnsupportedError on a torch without DTensor (before 2.4: describe shards with split_shard)."""
    try:
        from torch.distributed.tensor import DTensor, Partial, Replicate
        from torch.distributed.tensor._utils import compute_local_shape_and_global_offset
    except ImportError as e:
        raise UnsupportedError(f"torch {torch.__version__} has no DTensor (torch.distributed.tensor, torch >= "
                               f"2.4): describe shards with split_shard and replicated_shard ({e})") from None
    shards = []
    for name, value in state_dict.items():
        if not isinstance(value, DTensor):
            shards.append(replicated_shard(name, value.detach()))
            continue
        if any(isinstance(p, Partial) for p in value.placements):
            raise InvalidArgumentError(f"WB_E_INVAL: {name!r} is a Partial DTensor ({value.placements}): reduce "
                                       "it (full_tensor or redistribute) before publishing", -1)
        shape, offset = compute_local_shape_and_global_offset(value.shape, value.device_mesh, value.placements)
        shards.append({"name": name, "tensor": value.to_local().detach(), "logical_shape": tuple(value.shape),
                       "offset": tuple(offset), "extent": tuple(shape),
                       "replicated": any(isinstance(p, Replicate) for p in value.placements)})
    return shards


def publish_shards(topic: Topic, shards: Sequence[Shard], metadata: bytes = b"",
                   timeout: Optional[float] = None) -> int:
    """Rank publisher: one version that copies each shard's "tensor" into this rank's shard (the n-th shard of
    a name is shard index n, as alloc_shards registered them), published on the tensors' current CUDA stream;
    returns the version. It becomes visible once every rank published it. `metadata` is rank 0's to give
    (other ranks' is refused, InvalidArgumentError)."""
    stream = _current_stream({str(i): s["tensor"] for i, s in enumerate(shards)})
    with topic.update(timeout) as update:
        seen: Dict[str, int] = {}
        for shard in shards:
            index = seen.get(shard["name"], 0)
            seen[shard["name"]] = index + 1
            torch.from_dlpack(update.shard(shard["name"], index)).copy_(shard["tensor"], non_blocking=True)
        update.metadata, update.stream = metadata, stream
    assert update.published_version is not None
    return update.published_version


def load_slices(topic: Topic, plan: Union[SlicePlan, Sequence[Dest]], version: int = 0,
                timeout: Optional[float] = None, after: Optional[int] = None) -> int:
    """Copies version `version` (0: the latest) into the plan's buffers (a SlicePlan, or dest dicts made into
    one for this call) on the current CUDA stream, synchronized before the snapshot is released; returns the
    version. A server that loads every version makes the SlicePlan once.

    after=N, for a server's loop (`seen = load_slices(topic, plan, after=seen)`): loads the latest version if
    it is newer than N, else waits for the next one, the plan armed for it before it is published
    (SlicePlan.arm), so that the library's wait starts the copies. Raises WaitTimeoutError when no newer version
    comes within `timeout` seconds (the buffers untouched), ValueError with a `version`."""
    if not isinstance(plan, SlicePlan):
        with SlicePlan(topic, plan) as made:
            return load_slices(topic, made, version, timeout, after)
    if after is not None:
        if version:
            raise ValueError(f"load_slices: version={version} and after={after}: pass one of them")
        stream = _plan_stream(plan)
        with plan.arm(after, stream) as armed, armed.wait(timeout) as snapshot:
            if stream is not None:
                stream.synchronize()  # the copies read the snapshot: they must end before its release
            return snapshot.version
    with topic.snapshot(version, timeout) as snapshot:
        _run_to_completion(plan, snapshot)
        return snapshot.version


def _plan_stream(plan: SlicePlan) -> Optional[torch.cuda.Stream]:
    """The current stream of the GPU of the plan's CUDA buffers, or None (host buffers)."""
    cuda = [b for b in plan._buffers if isinstance(b, torch.Tensor) and b.is_cuda]
    return torch.cuda.current_stream(cuda[0].device) if cuda else None


def _run_to_completion(plan: SlicePlan, snapshot: Snapshot) -> None:
    """Runs `plan` for `snapshot`'s version on the current stream of its buffers' GPU and waits for the copies:
    they read the snapshot, so they must end before it is released."""
    stream = _plan_stream(plan)
    plan.run(snapshot, stream)
    if stream is not None:
        stream.synchronize()


def column(name: str, dst: torch.Tensor, rank: int, ranks: int) -> Dest:
    """ColumnParallelLinear (weight or bias): rows [rank*n, (rank+1)*n) of `name`, n = dst's rows."""
    rows = dst.shape[0] * ranks
    offset, extent = split(rows, rank, ranks, "even")
    return _dest(dst, [_box(name, dst.shape, 0, offset, extent)])


def row(name: str, dst: torch.Tensor, rank: int, ranks: int) -> Dest:
    """RowParallelLinear's weight: columns [rank*n, (rank+1)*n) of `name`, n = dst's columns."""
    offset, extent = split(dst.shape[1] * ranks, rank, ranks, "even")
    return _dest(dst, [_box(name, dst.shape, 1, offset, extent)])


def replicated(name: str, dst: torch.Tensor) -> Dest:
    """The whole of `name` (norms, row-parallel biases, anything every server rank holds alike)."""
    return _dest(dst, [{"name": name, "offset": [0] * dst.dim(), "extent": list(dst.shape), "pad": 0}])


def vocab(name: str, dst: torch.Tensor, vocab_size: int, rank: int, ranks: int, pad_to: int = 64) -> Dest:
    """VocabParallelEmbedding / ParallelLMHead: rank `rank`'s rows of the vocabulary padded to `pad_to`, the
    padding rows zero-filled."""
    offset, extent, padded = split_vocab(vocab_size, rank, ranks, pad_to)
    part = _box(name, dst.shape, 0, offset, extent)
    part["pad"] = padded - extent
    return _dest(dst, [part])


def qkv(prefix: str, dst: torch.Tensor, config: Any, rank: int, ranks: int, suffix: str = "weight") -> Dest:
    """QKVParallelLinear: `prefix`.{q,k,v}_proj.`suffix` fused as vLLM's qkv_proj (GQA: KV heads split, or
    replicated when ranks >= kv heads). A bias (1-D) takes the weight's rows."""
    heads, kv_heads, head_dim, hidden = _attention(config)
    names = [f"{prefix}.{p}_proj.{suffix}" for p in "qkv"]
    parts = parts_qkv(*names, heads, kv_heads, head_dim, hidden if dst.dim() == 2 else 1, rank, ranks)
    if dst.dim() == 1:
        parts = [{**p, "offset": p["offset"][:1], "extent": p["extent"][:1]} for p in parts]
    return _dest(dst, parts)


def merged(names: Sequence[str], dst: torch.Tensor, rank: int, ranks: int) -> Dest:
    """MergedColumnParallelLinear of equal parts (gate_up_proj from gate_proj and up_proj)."""
    rows = dst.shape[0] * ranks // len(names)
    return _dest(dst, parts_merged(names, [rows] * len(names), dst.shape[1], rank, ranks))


# vLLM parameter name -> how it is made from the trainer's (Hugging Face) names; group 1 is the module prefix.
_QKV = re.compile(r"(.*)\.qkv_proj\.(weight|bias)$")
_GATE_UP = re.compile(r"(.*)\.gate_up_proj\.weight$")
_ROW = re.compile(r".*\.(o_proj|down_proj)\.weight$")
_VOCAB = re.compile(r"(.*\.)?(embed_tokens|lm_head)\.weight$")


def vllm_tp_layout(config: Any, rank: int, ranks: int, params: Mapping[str, torch.Tensor],
                   pad_to: int = 64) -> List[Dest]:
    """The destinations of tensor-parallel rank `rank` of `ranks` of a vLLM Llama/Qwen-style model: `params`
    is the server's {vLLM parameter name: tensor}, `config` the Hugging Face config (object or dict:
    num_attention_heads, num_key_value_heads, hidden_size, head_dim, vocab_size, tie_word_embeddings). The
    topic holds the trainer's names: qkv_proj <- q_proj, k_proj, v_proj; gate_up_proj <- gate_proj, up_proj;
    o_proj, down_proj split by columns; embed_tokens, lm_head by vocabulary rows padded to `pad_to`; the rest
    (norms, row-parallel biases) whole. Give the result to SlicePlan."""
    dests = []
    for name, dst in params.items():
        dests.append(_vllm_dest(config, rank, ranks, name, dst, pad_to))
    return dests


def _vllm_dest(config: Any, rank: int, ranks: int, name: str, dst: torch.Tensor, pad_to: int) -> Dest:
    match = _QKV.match(name)
    if match:
        return qkv(match.group(1), dst, config, rank, ranks, match.group(2))
    match = _GATE_UP.match(name)
    if match:
        return merged([f"{match.group(1)}.gate_proj.weight", f"{match.group(1)}.up_proj.weight"], dst, rank, ranks)
    if _ROW.match(name):
        return row(name, dst, rank, ranks)
    match = _VOCAB.match(name)
    if match:
        source = name
        if match.group(2) == "lm_head" and _config(config, "tie_word_embeddings", False):
            source = "model.embed_tokens.weight"  # tied: the trainer publishes the embedding only
        return vocab(source, dst, _config(config, "vocab_size"), rank, ranks, pad_to)
    return replicated(name, dst)


def _attention(config: Any) -> Tuple[int, int, int, int]:
    heads, hidden = _config(config, "num_attention_heads"), _config(config, "hidden_size")
    kv_heads = _config(config, "num_key_value_heads", heads) or heads
    head_dim = _config(config, "head_dim", None) or hidden // heads
    return heads, kv_heads, head_dim, hidden


_MISSING = object()


def _config(config: Any, key: str, default: Any = _MISSING) -> Any:
    value = config.get(key, default) if isinstance(config, Mapping) else getattr(config, key, default)
    if value is _MISSING:
        raise InvalidArgumentError(f"WB_E_INVAL: the model config has no {key!r}", -1)
    return value


def _box(name: str, dst_shape: Sequence[int], dim: int, offset: int, extent: int) -> Dict[str, Any]:
    """A part: `extent` elements of `name` from `offset` along `dim`, whole along the other dimensions."""
    ndim = len(dst_shape)
    return {"name": name, "offset": [offset if d == dim else 0 for d in range(ndim)],
            "extent": [extent if d == dim else dst_shape[d] for d in range(ndim)], "pad": 0}


def _dest(dst: torch.Tensor, parts: List[Dict[str, Any]]) -> Dest:
    return {"dst": dst, "parts": parts, "concat_dim": 0}
