"""weightbus for SGLang: the update message of SGLang's update_weights_from_tensor carries a topic and a version
instead of serialized tensors, and a custom weight loader on the server loads that version.

Server: allow the loader once, at start:

    python -m sglang.launch_server --model-path MODEL --custom-weight-loader weightbus.sglang.load_weights

Trainer: publish, then tell the server which version to load (HTTP, or the offline Engine's method):

    version = weightbus.sglang.publish(model.named_parameters(), topic="policy")
    weightbus.sglang.request_update("http://localhost:30000", "policy", version, tp_size=2)
    engine.update_weights_from_tensor(**weightbus.sglang.update_request("policy", version, tp_size=2))

SGLang's update_weights_from_tensor takes, per tensor-parallel rank, a list of (name, tensor) pairs serialized
by its MultiprocessingSerializer (ForkingPickler, base64 over HTTP), and calls the loader named by load_format
with them. The list sent here is one pair: the name "weightbus:" + JSON {topic, version, socket, load, timeout},
and an empty tensor, which pickles to nothing but its dtype (no shared memory, no CUDA handle). Each rank's
loader takes its own slice through weightbus.serving.ModelReceiver (a plan into SGLang's fused qkv_proj and
gate_up_proj, or the model's load_weights with zero-copy views; "auto" picks, as for vLLM).
"""
from __future__ import annotations

import base64
import io
import json
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from .client import Client, connect
from .errors import InvalidArgumentError
from .serving import ModelReceiver, check_load_mode, close_publishers, post_json, publish

LOADER = "weightbus.sglang.load_weights"
_PREFIX = "weightbus:"


def message(topic: str, version: int, socket: Optional[str] = None, load: str = "auto",
            timeout: float = 60.0) -> List[Tuple[str, torch.Tensor]]:
    """The named tensors that stand for version `version` of `topic`: what update_weights_from_tensor carries."""
    if not topic:
        raise InvalidArgumentError("WB_E_INVAL: a topic name is needed", -1)
    if version < 0:
        raise InvalidArgumentError(f"WB_E_INVAL: version {version}: a version number (0: the latest)", -1)
    check_load_mode(load)
    body = {"topic": topic, "version": int(version), "socket": socket, "load": load, "timeout": float(timeout)}
    return [(_PREFIX + json.dumps(body, sort_keys=True), torch.empty(0))]


def update_request(topic: str, version: int, tp_size: int = 1, socket: Optional[str] = None, load: str = "auto",
                   timeout: float = 60.0, flush_cache: bool = True, as_text: bool = False) -> Dict[str, Any]:
    """The arguments of SGLang's update_weights_from_tensor (Engine method, or the JSON of the HTTP route with
    as_text=True): one serialized message per tensor-parallel rank and this module's loader."""
    if tp_size < 1:
        raise InvalidArgumentError(f"WB_E_INVAL: tp_size {tp_size}", -1)
    payload = _serialize(message(topic, version, socket, load, timeout), as_text)
    return {"serialized_named_tensors": [payload] * tp_size, "load_format": LOADER, "flush_cache": flush_cache}


def request_update(url: str, topic: str, version: int, tp_size: int = 1, socket: Optional[str] = None,
                   load: str = "auto", timeout: float = 60.0, flush_cache: bool = True) -> None:
    """POSTs the update to an SGLang server's /update_weights_from_tensor and returns once it loaded it."""
    post_json(url.rstrip("/") + "/update_weights_from_tensor",
              update_request(topic, version, tp_size, socket, load, timeout, flush_cache, as_text=True), timeout)


def _serialize(named: List[Tuple[str, torch.Tensor]], as_text: bool) -> Any:
    """As SGLang's MultiprocessingSerializer.serialize does (its own where SGLang is installed)."""
    try:
        from sglang.srt.utils import MultiprocessingSerializer
    except ImportError:
        from multiprocessing.reduction import ForkingPickler

        import torch.multiprocessing  # noqa: F401  (registers torch's reductions with ForkingPickler)

        buffer = io.BytesIO()
        ForkingPickler(buffer).dump(named)
        data = buffer.getvalue()
        return base64.b64encode(data).decode() if as_text else data
    return MultiprocessingSerializer.serialize(named, output_str=as_text)


def parse(named_tensors: Sequence[Tuple[str, Any]]) -> Dict[str, Any]:
    """The topic, version and options a message carries (ValueError if `named_tensors` is not one)."""
    items = list(named_tensors)
    if len(items) != 1 or not isinstance(items[0][0], str) or not items[0][0].startswith(_PREFIX):
        names = [name for name, _ in items[:3]]
        raise ValueError(f"weightbus: load_format {LOADER} takes the message of weightbus.sglang.update_request, "
                         f"not tensors {names}{'...' if len(items) > 3 else ''}")
    try:
        body = json.loads(items[0][0][len(_PREFIX):])
    except ValueError as e:
        raise ValueError(f"weightbus: a malformed message: {e}") from None
    if not isinstance(body, dict) or not isinstance(body.get("topic"), str) or not body["topic"] or \
            not isinstance(body.get("version"), int) or body["version"] < 0:
        raise ValueError(f"weightbus: a message needs a topic and a version: {body!r}")
    check_load_mode(body.get("load", "auto"))
    return body


# Per process (one per tensor-parallel rank in SGLang): the clients by socket, the receivers by socket, topic
# and model.
_CLIENTS: Dict[Optional[str], Client] = {}
_RECEIVERS: Dict[Tuple[Optional[str], str, int], ModelReceiver] = {}
_LOCK = threading.Lock()


def load_weights(model: torch.nn.Module, named_tensors: Sequence[Tuple[str, Any]]) -> None:
    """SGLang's custom weight loader: loads the version the message names into `model` (this rank's slice),
    its copies finished when it returns."""
    body = parse(named_tensors)
    receiver = _receiver(model, body)
    receiver.receive(body["version"], model)


def _receiver(model: torch.nn.Module, body: Dict[str, Any]) -> ModelReceiver:
    socket, topic = body.get("socket"), body["topic"]
    key = (socket, topic, id(model))
    with _LOCK:
        if key not in _RECEIVERS:
            if socket not in _CLIENTS:
                _CLIENTS[socket] = connect(socket, client_name="sglang-worker")
            rank, size = _tp()
            _RECEIVERS[key] = ModelReceiver(_CLIENTS[socket].open_topic(topic), body.get("load", "auto"), rank, size,
                                            getattr(model, "config", None), timeout=body.get("timeout", 60.0))
        return _RECEIVERS[key]


def _tp() -> Tuple[int, int]:
    try:
        from sglang.srt.distributed import get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size

        return get_tensor_model_parallel_rank(), get_tensor_model_parallel_world_size()
    except Exception:  # no SGLang, or its groups not set up (tests)
        return 0, 1


def close() -> None:
    """Closes this process's receivers, topics and clients (the loader opens them again when called)."""
    with _LOCK:
        for receiver in _RECEIVERS.values():
            receiver.close()
            receiver.topic.close()
        _RECEIVERS.clear()
        for client in _CLIENTS.values():
            client.close()
        _CLIENTS.clear()


__all__ = ["LOADER", "close", "close_publishers", "load_weights", "message", "parse", "publish", "request_update",
           "update_request"]
