"""Loading versions into a served model, for the inference engines' adapters (weightbus.vllm, weightbus.sglang)
and for servers of one's own. Engine-neutral: it needs torch, never vLLM or SGLang.

    receiver = ModelReceiver(client.open_topic("policy"), load="auto", tp_rank=r, tp_size=n, config=hf_config)
    version = receiver.receive(version, model)            # on every update message

Two ways to load, chosen per receiver (`load`):

- "plan": a SlicePlan straight into the model's parameters, made once and run every version: this tensor-
  parallel rank's slices of a vLLM/SGLang Llama- or Qwen-style model (fused qkv_proj and gate_up_proj, row-parallel
  o_proj and down_proj, padded vocabulary; weightbus.torch.vllm_tp_layout) or whole tensors at tp_size 1. One copy
  kernel for the whole model, nothing per tensor in Python. Needs the model's config and parameters that hold
  the checkpoint's values as they are (no processing after loading, such as transposed weights or repacked
  scales). An FP8 server of a bf16/f16/f32 trainer is one: its FP8 weights are quantized on the way, their scales
  written into their weight_scale_inv (blocks) or weight_scale (per tensor or row) parameters, as
  weightbus.torch.load_module does; an f32 trainer's tensors are rounded into bf16 parameters.
- "load_weights": the model's own load_weights(weights) (the engine's loaders, which slice and process every
  parameter as they do for a checkpoint) with zero-copy views of the version; a sharded topic's tensors are
  first put together whole, on the model's device, by a SlicePlan into buffers kept for the next version.
- "auto" (default): "plan" where one can be made for every parameter (names, shapes and dtypes all fit), else
  "load_weights", saying why once through the `weightbus` logger.

A version is copied out while it is leased and the lease is released only after the copies finished (the
current CUDA stream is synchronized): the trainer may publish the next version while the model is being loaded,
and the model never holds a mix of two versions.
"""
from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch

from .dtypes import dtype_name, torch_dtype
from .client import Client, connect
from .errors import InvalidArgumentError, LayoutError, WeightbusError
from .plan import SlicePlan
from .snapshot import Snapshot
from .topic import Topic
from .torch import (_conversions, _current_stream, _fp8_block, _plan, _run_to_completion, snapshot_tensors,
                    vllm_tp_layout)

LOAD_MODES = ("auto", "plan", "load_weights")

LoadWeights = Callable[[List[Tuple[str, torch.Tensor]]], Any]

log = logging.getLogger("weightbus")


def check_load_mode(load: str) -> str:
    """`load` if it names a way to load (LOAD_MODES), else InvalidArgumentError saying which there are."""
    if load not in LOAD_MODES:
        raise InvalidArgumentError(f"WB_E_INVAL: load={load!r}: choose one of {', '.join(LOAD_MODES)}", -1)
    return load


class ModelReceiver:
    """Loads versions of one topic into one served model (see the module's doc). `tp_rank`/`tp_size`: this
    worker's tensor-parallel place; `config`: the model's Hugging Face config (object or dict) for "plan" (None:
    the model's .config);
    `pad_to`: the vocabulary padding of the engine (vLLM and SGLang: 64); `timeout`: seconds to wait for a
    version that is not yet published (None: the client's default); `fp8_block`: the (rows, cols) of the scale
    blocks of FP8 weights quantized on the way (None: the config's quantization_config.weight_block_size, else
    128 x 128). ValueError for an fp8_block that is not two positive integers."""

    def __init__(self, topic: Topic, load: str = "auto", tp_rank: int = 0, tp_size: int = 1, config: Any = None,
                 pad_to: int = 64, timeout: Optional[float] = 60.0,
                 fp8_block: Optional[Tuple[int, int]] = None) -> None:
        self.topic = topic
        self.load = check_load_mode(load)
        if not 0 <= tp_rank < tp_size:
            raise InvalidArgumentError(f"WB_E_INVAL: tensor-parallel rank {tp_rank} of {tp_size}", -1)
        self.tp_rank, self.tp_size, self.config, self.pad_to, self.timeout = tp_rank, tp_size, config, pad_to, timeout
        self.fp8_block = _fp8_block(fp8_block) if fp8_block is not None else None
        self.mode: Optional[str] = None if load == "auto" else load  # "auto" decides on the first model
        self._plan: Optional[SlicePlan] = None
        self._planned: Tuple[int, Tuple[int, ...]] = (0, ())  # the model's id and its parameters' addresses
        self._whole: Optional[SlicePlan] = None               # a sharded topic's tensors, put together
        self._whole_tensors: Dict[str, torch.Tensor] = {}

    def close(self) -> None:
        """Frees the plans and the buffers they fill (the topic stays open: it is the caller's)."""
        for plan in (self._plan, self._whole):
            if plan is not None:
                plan.close()
        self._plan = self._whole = None
        self._whole_tensors = {}

    def decide(self, model: Optional[torch.nn.Module]) -> str:
        """The way this receiver loads into `model` ("plan" or "load_weights"), making the plan if it is one."""
        if self.mode == "load_weights":
            return "load_weights"
        if model is None:
            if self.mode == "plan":
                raise InvalidArgumentError("WB_E_INVAL: load='plan' needs the model: this engine passed none", -1)
            return "load_weights"
        try:
            self._plan_for(model)
            self.mode = "plan"
        except (WeightbusError, KeyError, ValueError, TypeError, AttributeError) as e:  # a layout it cannot cut
            if self.mode == "plan":
                raise
            self.mode = "load_weights"
            log.info("weightbus: %r loads through the model's load_weights, not a plan: %s", self.topic.name, e)
        return self.mode

    def receive(self, version: int = 0, model: Optional[torch.nn.Module] = None,
                load_weights: Optional[LoadWeights] = None) -> int:
        """Loads version `version` (0: the latest) into `model` (its parameters by a plan, or through
        `load_weights`, default model.load_weights) and returns the version loaded, its copies finished. A version
        not yet published is waited for (WaitTimeoutError after `timeout`); one no longer kept raises ExpiredError."""
        mode = self.mode if self.mode is not None else self.decide(model)
        if version > self.topic.latest:  # the message may come before the version (the last rank still publishing)
            self.topic.wait(after=version - 1, timeout=self.timeout)
        with self.topic.snapshot(version, self.timeout) as snapshot:
            if mode == "plan":
                plan = self._plan_for(model) if model is not None else self._plan
                if plan is None:
                    raise InvalidArgumentError("WB_E_INVAL: load='plan' needs the model: none was given", -1)
                _run_to_completion(plan, snapshot)
            else:
                if load_weights is None:
                    if model is None or not hasattr(model, "load_weights"):
                        raise InvalidArgumentError("WB_E_INVAL: nothing to load into: pass the model (with a "
                                                   "load_weights method) or a load_weights function", -1)
                    load_weights = model.load_weights
                self._load_weights(snapshot, load_weights, _device_of(model))
            return snapshot.version

    def _plan_for(self, model: torch.nn.Module) -> SlicePlan:
        """The plan into `model`'s parameters, made again when they moved (a parameter replaced, or the model)."""
        params = dict(model.named_parameters())
        placed = (id(model), tuple(p.data_ptr() for p in params.values()))
        if self._plan is not None and placed == self._planned:
            return self._plan
        config = self.config if self.config is not None else getattr(model, "config", None)
        if config is None:
            raise InvalidArgumentError("WB_E_INVAL: a plan needs the model's config (num_attention_heads, ...): "
                                       "give it, or a model with a .config", -1)
        tensors = {n: p.data for n, p in params.items()}
        dests = dict(zip(tensors, vllm_tp_layout(config, self.tp_rank, self.tp_size, tensors, self.pad_to)))
        sources = {t.name: t.dtype for t in self.topic.layout()}
        converted = _conversions(dests, tensors, sources, self.fp8_block or _config_block(config))
        plan = _plan(self.topic, list(converted.dests.values()), converted.spreads)
        if self._plan is not None:
            self._plan.close()
        self._plan, self._planned = plan, placed
        return plan

    def _load_weights(self, snapshot: Snapshot, load_weights: LoadWeights, device: Optional[torch.device]) -> None:
        if self.topic.info().ranks:
            weights = list(self._put_together(snapshot, device).items())
        else:
            weights = list(snapshot_tensors(snapshot).items())  # zero-copy, one C call for all
        load_weights(weights)
        if any(t.is_cuda for _, t in weights):
            torch.cuda.current_stream().synchronize()  # the loaders' copies read the snapshot
        del weights

    def _put_together(self, snapshot: Snapshot, device: Optional[torch.device]) -> Dict[str, torch.Tensor]:
        """A sharded topic's logical tensors whole, in buffers on `device` that the next version reuses."""
        if self._whole is None:
            layout = [t for t in self.topic.layout() if not t.is_view]
            self._whole_tensors = {t.name: torch.empty(t.shape, dtype=torch_dtype(t.dtype), device=device)
                                   for t in layout}
            self._whole = SlicePlan(self.topic, [{"dst": b, "parts": [{"name": n, "extent": list(b.shape)}]}
                                                 for n, b in self._whole_tensors.items() if b.dim()])
        _run_to_completion(self._whole, snapshot)
        return self._whole_tensors


def _config_block(config: Any) -> Tuple[int, int]:
    """The FP8 scale blocks a Hugging Face config names (quantization_config.weight_block_size: DeepSeek-V3's
    [128, 128]), else 128 x 128."""
    quantization = config.get("quantization_config") if isinstance(config, dict) else \
        getattr(config, "quantization_config", None)
    block = quantization.get("weight_block_size") if isinstance(quantization, dict) else \
        getattr(quantization, "weight_block_size", None)
    return _fp8_block(tuple(block)) if block else (128, 128)


def _device_of(model: Optional[torch.nn.Module]) -> Optional[torch.device]:
    if model is None:
        return None
    for p in model.parameters():
        return p.device
    return None


# The trainer's side ---------------------------------------------------------------------------------------------

def post_json(url: str, body: Dict[str, Any], timeout: float) -> None:
    """POSTs `body` as JSON; raises (urllib.error.HTTPError, URLError) unless the server answers 2xx."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=timeout).close()


# One publisher per (socket, topic) in the process: the topic's tensors stay allocated between versions.
_PUBLISHERS: Dict[Tuple[Optional[str], str], Tuple[Client, Topic]] = {}
_PUBLISHERS_LOCK = threading.Lock()


def publish(tensors: Iterable[Tuple[str, torch.Tensor]], topic: str, socket: Optional[str] = None,
            replicas: int = 2, timeout: Optional[float] = 60.0, metadata: bytes = b"") -> int:
    """Publishes `tensors` as the next version of `topic` from this process's publisher of it (created, and its
    tensors allocated on the tensors' device, on the first call) on the current CUDA stream; returns the version.
    LayoutError when later calls send other names, shapes or dtypes than the first."""
    weights = {name: _materialized(t) for name, t in tensors}
    with _PUBLISHERS_LOCK:
        key = (socket, topic)
        if key not in _PUBLISHERS:
            client = connect(socket, client_name="trainer")
            try:
                _PUBLISHERS[key] = (client, client.create_topic(topic, replicas=replicas))
            except BaseException:
                client.close()
                raise
        _, publisher = _PUBLISHERS[key]
    layout = {t.name: t for t in publisher.layout()}
    if not layout:
        devices = {t.device for t in weights.values()}
        if len(devices) > 1:
            raise InvalidArgumentError(f"WB_E_INVAL: tensors on several devices ({sorted(map(str, devices))})", -1)
        publisher.alloc({name: (tuple(t.shape), t.dtype) for name, t in weights.items()},
                        device=devices.pop() if devices else None)
        layout = {t.name: t for t in publisher.layout()}
    _check_same_layout(topic, layout, weights)
    stream = _current_stream(weights)
    with publisher.update(timeout) as update:
        for name, tensor in weights.items():
            torch.from_dlpack(update[name]).copy_(tensor, non_blocking=True)
        update.metadata, update.stream = metadata, stream
    assert update.published_version is not None
    return update.published_version


def close_publishers() -> None:
    """Closes this process's publishers (the topics and their last version stay with the broker)."""
    with _PUBLISHERS_LOCK:
        for client, topic in _PUBLISHERS.values():
            topic.close()
            client.close()
        _PUBLISHERS.clear()


def _materialized(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor: an FSDP DTensor gathered (full_tensor(), a collective), as vLLM's sources do."""
    full = getattr(tensor, "full_tensor", None)
    return (full() if callable(full) else tensor).detach()


def _check_same_layout(topic: str, layout: Dict[str, Any], weights: Dict[str, torch.Tensor]) -> None:
    missing, extra = sorted(set(layout) - set(weights)), sorted(set(weights) - set(layout))
    if missing or extra:
        raise LayoutError(f"WB_E_LAYOUT: topic {topic!r} was published with other tensors: missing {missing[:5]}, "
                          f"new {extra[:5]} (a topic's tensors are fixed by its first version)", -14)
    for name, tensor in weights.items():
        want = layout[name]
        if (want.dtype, tuple(want.shape)) != (dtype_name(tensor.dtype), tuple(tensor.shape)):
            raise LayoutError(f"WB_E_LAYOUT: {name!r} is {want.dtype}{list(want.shape)} in topic {topic!r}, "
                              f"not {dtype_name(tensor.dtype)}{list(tensor.shape)}", -14)
