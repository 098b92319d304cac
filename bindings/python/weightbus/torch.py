"""PyTorch helpers: publish a module's parameters as versions of a topic, and load a version into a module.

    publisher = ModulePublisher(client.create_topic("policy"), model)   # copies into weightbus-owned replicas
    publisher.publish(metadata=b"step 10")                               # on the current stream, no host sync

    load_module(client.open_topic("policy"), server_model)                # copy-into on the current stream
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterator, Mapping, Optional, Tuple, Union

import torch

from .errors import InvalidArgumentError, NotFoundError, StateError
from .topic import Topic

# How a module's names map to the topic's: a dict, or a function returning the topic's name (None: skip it).
NameMap = Union[None, Mapping[str, str], Callable[[str], Optional[str]]]


def module_tensors(module: torch.nn.Module, include_buffers: bool = False) -> Dict[str, torch.Tensor]:
    """The module's parameters (and buffers) by name, as plain tensors."""
    named = {name: p.detach() for name, p in module.named_parameters()}
    if include_buffers:
        named.update({name: b.detach() for name, b in module.named_buffers()})
    return named


def _current_stream(tensors: Mapping[str, torch.Tensor]) -> Optional[torch.cuda.Stream]:
    devices = {t.device for t in tensors.values() if t.is_cuda}
    if len(devices) > 1:
        raise InvalidArgumentError(f"tensors on several GPUs ({sorted(map(str, devices))}): publish each GPU's "
                                   "tensors as its own topic", -1)
    return torch.cuda.current_stream(devices.pop()) if devices else None


class ModulePublisher:
    """Publishes a module's parameters as versions of a topic (the publisher's handle).

    mode="copy" (default): the topic holds its own R replicas, on the parameters' GPU (VMM memory that
    outlives this process) or in shared host memory for CPU parameters; publish() copies the parameters into
    the version being written on the current CUDA stream and publishes on that stream: no host wait.

    mode="register": the topic shares the parameters' own CUDA memory, without any copy (R must be 1). Every
    change to the parameters must happen inside `with publisher.writing():`, which waits until no reader holds
    the previous version and publishes the new one at its end.
    """

    def __init__(self, topic: Topic, module: torch.nn.Module, mode: str = "copy",
                 include_buffers: bool = False) -> None:
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
                strict: bool = True, include_buffers: bool = False, timeout: Optional[float] = None) -> int:
    """Copies version `version` (0: the latest) into the module's parameters, on the current CUDA stream after
    the version's GPU work, and returns the version loaded. `name_map` maps the module's names to the topic's.
    strict=True: every mapped tensor must exist in the topic; dtype and shape must match in any case."""
    targets: Dict[str, torch.Tensor] = {}
    for name, tensor in module_tensors(module, include_buffers).items():
        source = _target_name(name_map, name)
        if source is not None:
            targets[source] = tensor
    layout = {t.name: t for t in topic.layout()}
    missing = [name for name in targets if name not in layout]
    if missing and strict:
        raise NotFoundError(f"WB_E_NOT_FOUND: topic {topic.name!r} has no tensor {missing[:5]} "
                            f"({len(missing)} missing; map names with name_map or pass strict=False)", -3)
    targets = {name: t for name, t in targets.items() if name in layout}
    for name, tensor in targets.items():
        want = layout[name]
        if (want.dtype, want.shape) != (_dtype_name(tensor.dtype), tuple(tensor.shape)):
            raise InvalidArgumentError(f"WB_E_SHAPE: {name!r} is {want.dtype}{list(want.shape)} in the topic but "
                                       f"{tensor.dtype}{list(tensor.shape)} in the module", -7)
    stream = _current_stream(targets)
    with topic.snapshot(version, timeout) as snapshot:
        snapshot.copy_into(targets, stream)
        if stream is not None:
            stream.synchronize()  # the copies read the snapshot: they must end before its release
        return snapshot.version


def _dtype_name(dtype: torch.dtype) -> str:
    from .dtypes import dtype_name

    return dtype_name(dtype)
