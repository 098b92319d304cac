"""A weight-transfer engine with the shape of vLLM's IPC engine, carried by weightbus.

vLLM's IPCWeightTransferEngine sends, for every update, one pickled CUDA IPC handle per tensor (reduce_tensor,
pickle, base64, HTTP POST) and rebuilds each tensor on the receiver. With weightbus the trainer publishes a
version into a topic once, and the update message is a topic name and a version number:

    trainer:   WeightbusWeightTransferEngine.trainer_send_weights(model.named_parameters(),
                                                                  {"topic": "policy", "url": SERVER_URL})
    worker:    engine.receive_weights(update_info, load_weights=model.load_weights)

receive_weights hands load_weights zero-copy views of exactly the version named, leased until load_weights
returns (vLLM's load_weights copies them into the model's own parameters). Run this file to see both sides
in one process against a broker at $WEIGHTBUS_SOCKET (no vLLM needed).
"""
from __future__ import annotations

import json
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch

import weightbus


@dataclass
class WeightbusInitInfo:
    topic: str
    socket: Optional[str] = None  # None: $WEIGHTBUS_SOCKET or the default path


@dataclass
class WeightbusUpdateInfo:
    """What travels per update: a few bytes of JSON instead of a pickled handle per tensor."""
    topic: str
    version: int


class WeightbusWeightTransferEngine:
    """The worker's side: init_transfer_engine once, receive_weights per update, shutdown at the end."""

    init_info_cls = WeightbusInitInfo
    update_info_cls = WeightbusUpdateInfo

    def __init__(self) -> None:
        self._client: Optional[weightbus.Client] = None
        self._topics: Dict[str, weightbus.Topic] = {}

    def init_transfer_engine(self, init_info: WeightbusInitInfo) -> None:
        self._client = weightbus.connect(init_info.socket, client_name="vllm-worker")
        self._topics[init_info.topic] = self._client.open_topic(init_info.topic)

    def receive_weights(self, update_info: WeightbusUpdateInfo,
                        load_weights: Callable[[List[Tuple[str, torch.Tensor]]], None]) -> None:
        topic = self._topics[update_info.topic]
        with topic.snapshot(update_info.version, timeout=30.0) as snapshot:
            weights = [(name, torch.from_dlpack(snapshot[name])) for name in snapshot.names()]
            load_weights(weights)
            if any(w.is_cuda for _, w in weights):
                torch.cuda.current_stream().synchronize()  # load_weights' copies read the snapshot
            del weights

    def shutdown(self) -> None:
        for topic in self._topics.values():
            topic.close()
        if self._client is not None:
            self._client.close()

    @staticmethod
    def trainer_send_weights(iterator: Iterator[Tuple[str, torch.Tensor]], trainer_args: Dict[str, Any]) -> int:
        """Publishes the weights as the next version of trainer_args["topic"] and tells the server about it: a
        POST of the update info to trainer_args["url"] + "/update_weights" when a url is given. The first call
        creates the topic's tensors; the trainer's client must stay attached (trainer_args["client"])."""
        client: weightbus.Client = trainer_args["client"]
        topic = _publisher_topic(client, trainer_args["topic"])
        tensors = dict(iterator)
        if not topic.layout():
            topic.alloc({name: (tuple(t.shape), t.dtype) for name, t in tensors.items()},
                        device=next(iter(tensors.values())).device if tensors else None)
        with topic.update(timeout=30.0) as update:
            for name, tensor in tensors.items():
                torch.from_dlpack(update[name]).copy_(tensor.detach(), non_blocking=True)
            if any(t.is_cuda for t in tensors.values()):
                update.stream = torch.cuda.current_stream()
        info = WeightbusUpdateInfo(trainer_args["topic"], update.published_version or 0)
        if trainer_args.get("url"):
            body = json.dumps({"update_info": asdict(info)}).encode()
            request = urllib.request.Request(trainer_args["url"] + "/update_weights", data=body,
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=30).close()
        return info.version


_PUBLISHERS: Dict[Tuple[int, str], weightbus.Topic] = {}


def _publisher_topic(client: weightbus.Client, name: str) -> weightbus.Topic:
    key = (id(client), name)
    if key not in _PUBLISHERS:
        _PUBLISHERS[key] = client.create_topic(name, replicas=2)
    return _PUBLISHERS[key]


def main() -> None:
    trainer_model = torch.nn.Linear(4, 3)
    worker_model = torch.nn.Linear(4, 3)

    def load_weights(weights: List[Tuple[str, torch.Tensor]]) -> None:
        params = dict(worker_model.named_parameters())
        with torch.no_grad():
            for name, tensor in weights:
                params[name].copy_(tensor)

    with weightbus.connect(client_name="trainer") as trainer_client:
        engine = WeightbusWeightTransferEngine()
        for step in range(3):
            with torch.no_grad():
                trainer_model.weight.add_(1.0)
            version = WeightbusWeightTransferEngine.trainer_send_weights(
                trainer_model.named_parameters(), {"client": trainer_client, "topic": "policy"})
            if step == 0:
                engine.init_transfer_engine(WeightbusInitInfo(topic="policy"))
            engine.receive_weights(WeightbusUpdateInfo("policy", version), load_weights)
            same = torch.equal(worker_model.weight, trainer_model.weight)
            print(f"version {version}: worker weights equal the trainer's: {same}")
            assert same
        engine.shutdown()
        _PUBLISHERS.clear()


if __name__ == "__main__":
    main()
