"""weightbus as a vLLM weight-transfer backend: choose it by configuration, and an update message is a topic and a
version (a few bytes of JSON) instead of a pickled CUDA IPC handle per tensor.

Server (every worker of a vLLM instance; the plugin entry point registers the backend when vLLM starts):

    vllm serve MODEL --weight-transfer-config '{"backend": "weightbus"}'
    POST /init_weight_transfer_engine {"init_info": {"topic": "policy"}}        # once

Trainer (one process; weightbus keeps the version in GPU memory that outlives it):

    info = WeightbusWeightTransferEngine.trainer_send_weights(
        model.named_parameters(), {"send_mode": "http", "url": "http://localhost:8000", "topic": "policy"})

or, on vLLM versions with trainer-side engines, WeightTransferTrainerFactory.trainer_init(
WeightbusTrainerInitInfo(rank=r, topic="policy"), client=..., source=ModuleSource(model)).send_weights().

How a worker loads a version (init_info "load", see weightbus.serving): "plan" copies this tensor-parallel
rank's slices straight into the model's parameters with one SlicePlan (Llama/Qwen-style models whose parameters
hold the checkpoint's values); "load_weights" hands zero-copy views of the version to the model's load_weights,
which slices and processes them as for a checkpoint; "auto" (default) takes "plan" where it fits every parameter.
Either way the worker reads exactly the version named, leased until its copies finished.

vLLM constructs engines in two ways, both accepted: (config, parallel_config) in the versions where the worker
hands receive_weights a load_weights function, and (config, vllm_config, device, model) since the engine owns
the update (start_weight_update, receive_weights(update_info), finish_weight_update). This module imports vLLM
only where it is installed (`import weightbus` never does); without vLLM its classes work on their own, which
is how the tests drive them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, ClassVar, Dict, Iterable, Optional, Tuple, Union

import torch

from .client import Client, connect
from .errors import InvalidArgumentError
from .serving import LOAD_MODES, LoadWeights, ModelReceiver, check_load_mode, close_publishers, post_json, publish

BACKEND = "weightbus"

try:  # vLLM's own bases where vLLM is installed, so that its factory and type checks see one of its engines
    from vllm.distributed.weight_transfer.base import WeightTransferEngine as _EngineBase
    from vllm.distributed.weight_transfer.base import WeightTransferInitInfo as _InitInfoBase
    from vllm.distributed.weight_transfer.base import WeightTransferUpdateInfo as _UpdateInfoBase
    HAVE_VLLM = True
except ImportError:
    _EngineBase, _InitInfoBase, _UpdateInfoBase = object, object, object  # type: ignore[assignment,misc]
    HAVE_VLLM = False

try:  # trainer-side engines (vLLM versions that have them)
    from vllm.distributed.weight_transfer.base import TrainerInitInfo as _TrainerInitInfoBase
    from vllm.distributed.weight_transfer.base import TrainerWeightTransferEngine as _TrainerEngineBase
    HAVE_TRAINER_ENGINES = True
except ImportError:
    _TrainerInitInfoBase, _TrainerEngineBase = object, object  # type: ignore[assignment,misc]
    HAVE_TRAINER_ENGINES = False


def _checked(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)  # what vLLM's parse_*_info raise for a bad payload


# Every field has a default: vLLM's base dataclasses may add fields with defaults of their own, after which a
# field without one could not follow.
@dataclass
class WeightbusInitInfo(_InitInfoBase):  # type: ignore[misc,valid-type]
    """What a worker needs once: the topic (`topic`), the broker's socket (None: $WEIGHTBUS_SOCKET or the default
    path), how to load (`load`: auto, plan or load_weights), how long to wait for a version not yet published
    (`timeout`, seconds), the vocabulary padding (`pad_to`, vLLM's 64) and the scale blocks of FP8 weights that a
    plan quantizes on the way (`fp8_block`, [rows, cols]; None: the model config's weight_block_size, else
    [128, 128]; see weightbus.serving)."""

    topic: str = ""
    socket: Optional[str] = None
    load: str = "auto"
    timeout: float = 60.0
    pad_to: int = 64
    fp8_block: Optional[Tuple[int, int]] = None

    def __post_init__(self) -> None:
        _checked(isinstance(self.topic, str) and bool(self.topic), f"weightbus: init_info needs a topic name, got "
                                                                   f"{self.topic!r}")
        _checked(self.load in LOAD_MODES, f"weightbus: init_info load={self.load!r}: one of {', '.join(LOAD_MODES)}")
        _checked(isinstance(self.timeout, (int, float)) and self.timeout > 0,
                 f"weightbus: init_info timeout={self.timeout!r}: seconds, above 0")
        _checked(isinstance(self.pad_to, int) and self.pad_to > 0, f"weightbus: init_info pad_to={self.pad_to!r}")
        block = self.fp8_block
        _checked(block is None or (isinstance(block, (list, tuple)) and len(block) == 2 and
                                   all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in block)),
                 f"weightbus: init_info fp8_block={block!r}: [rows, cols], two positive integers, or None")


@dataclass
class WeightbusUpdateInfo(_UpdateInfoBase):  # type: ignore[misc,valid-type]
    """What travels per update: the version to load (0: the latest) and its topic ("": the init_info's)."""

    version: int = 0
    topic: str = ""

    def __post_init__(self) -> None:
        _checked(isinstance(self.version, int) and not isinstance(self.version, bool) and self.version >= 0,
                 f"weightbus: update_info version={self.version!r}: a version number (0: the latest)")
        _checked(isinstance(self.topic, str), f"weightbus: update_info topic={self.topic!r}: a topic name")


class WeightbusWeightTransferEngine(_EngineBase):  # type: ignore[misc,valid-type]
    """The worker's side, as vLLM drives it: init_transfer_engine once, then per update start_weight_update,
    receive_weights (through update_weights), finish_weight_update; shutdown at the end."""

    init_info_cls = WeightbusInitInfo
    update_info_cls = WeightbusUpdateInfo
    supports_draft_weight_update = True

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) + len(kwargs) == 1:  # (config, parallel_config)
            parallel_config = args[0] if args else next(iter(kwargs.values()))
            vllm_config, device, model = None, None, None
        else:  # (config, vllm_config, device, model)
            names = ("vllm_config", "device", "model")
            given = dict(zip(names, args), **kwargs)
            missing = [n for n in names if n not in given]
            if missing:
                raise TypeError(f"WeightbusWeightTransferEngine(config, vllm_config, device, model): missing {missing}")
            vllm_config, device, model = (given[n] for n in names)
            parallel_config = getattr(vllm_config, "parallel_config", None)
        if HAVE_VLLM:
            super().__init__(config, *args, **kwargs)
        self.config = config
        self.vllm_config, self.parallel_config, self.device, self.model = vllm_config, parallel_config, device, model
        self.model_config = getattr(vllm_config, "model_config", None)
        self._client: Optional[Client] = None
        self._init: Optional[WeightbusInitInfo] = None
        self._receivers: Dict[str, ModelReceiver] = {}
        self._reloading = False
        self.last_version = 0

    # What vLLM's base class gives where vLLM is installed; here for running without it.
    if not HAVE_VLLM:
        def parse_init_info(self, init_dict: Dict[str, Any]) -> WeightbusInitInfo:
            return _parse(self.init_info_cls, init_dict, "init_info")

        def parse_update_info(self, update_dict: Dict[str, Any]) -> WeightbusUpdateInfo:
            return _parse(self.update_info_cls, update_dict, "update_info")

        def update_weights(self, update_info: Dict[str, Any]) -> None:
            self.receive_weights(self.parse_update_info(update_info))

        def set_weight_update_target(self, model: torch.nn.Module, model_config: Any) -> None:
            self.model, self.model_config = model, model_config

    def init_transfer_engine(self, init_info: WeightbusInitInfo) -> None:
        """Attaches to the broker and opens the topic (once per worker; again: the new init_info replaces it)."""
        if isinstance(init_info, dict):
            init_info = self.parse_init_info(init_info)
        self.shutdown()
        self._init = init_info
        self._client = connect(init_info.socket, client_name=f"vllm-worker-tp{self._tp()[0]}")
        self._receiver(init_info.topic)

    def start_weight_update(self, *args: Any, **kwargs: Any) -> None:
        """Where the engine owns the update and loads through the model's load_weights, vLLM's layerwise reload
        begins here (as its checkpoint-format engines do, unless the config's reload_mode is "direct"); a plan
        writes the parameters in place and needs nothing."""
        receiver = self._receiver()
        if self.model is None or receiver.decide(self.model) == "plan":
            return
        if getattr(self.config, "reload_mode", "layerwise") != "direct":
            try:
                from vllm.model_executor.model_loader.reload import initialize_layerwise_reload
            except ImportError:
                return
            initialize_layerwise_reload(self.model)
            self._reloading = True

    def finish_weight_update(self, *args: Any, **kwargs: Any) -> None:
        if self._reloading:
            from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

            self._reloading = False
            finalize_layerwise_reload(self.model, self.model_config)

    def receive_weights(self, update_info: WeightbusUpdateInfo, load_weights: Optional[LoadWeights] = None) -> None:
        """Loads the version named into the model. vLLM that gives the engine the model: by a plan or the model's
        load_weights (init_info "load"). vLLM that passes `load_weights` instead: through it (it may be the
        worker's layerwise reload or a direct copy by vLLM's names), or by a plan into the model that owns it
        where init_info asks for "plan"."""
        if isinstance(update_info, dict):
            update_info = self.parse_update_info(update_info)
        receiver = self._receiver(update_info.topic or None)
        if self.model is not None:
            self.last_version = receiver.receive(update_info.version, self.model)
        elif receiver.load == "plan":
            owner = getattr(load_weights, "__self__", None)
            if not isinstance(owner, torch.nn.Module):
                raise InvalidArgumentError("WB_E_INVAL: load='plan' needs the model; this vLLM passes a load_weights "
                                           "that is not a model's method: use load='load_weights'", -1)
            self.last_version = receiver.receive(update_info.version, owner)
        else:
            if load_weights is None:
                raise InvalidArgumentError("WB_E_INVAL: receive_weights has neither a model nor load_weights", -1)
            self.last_version = receiver.receive(update_info.version, None, load_weights)

    # vLLM's first engines named it so.
    def init_transfer(self, init_info: WeightbusInitInfo) -> None:
        self.init_transfer_engine(init_info)

    def shutdown(self) -> None:
        for receiver in self._receivers.values():
            receiver.close()
            receiver.topic.close()
        self._receivers = {}
        if self._client is not None:
            self._client.close()
            self._client = None

    def _receiver(self, topic: Optional[str] = None) -> ModelReceiver:
        if self._client is None or self._init is None:
            raise RuntimeError("weightbus: init_transfer_engine has not been called on this worker")
        name = topic or self._init.topic
        if name not in self._receivers:
            rank, size = self._tp()
            self._receivers[name] = ModelReceiver(self._client.open_topic(name), self._init.load, rank, size,
                                                  self._hf_config(), self._init.pad_to, self._init.timeout,
                                                  self._init.fp8_block)
        return self._receivers[name]

    def _tp(self) -> Tuple[int, int]:
        """This worker's tensor-parallel rank and size: vLLM's groups where they exist, else the parallel config."""
        try:
            from vllm.distributed import get_tensor_model_parallel_rank, get_tensor_model_parallel_world_size

            return get_tensor_model_parallel_rank(), get_tensor_model_parallel_world_size()
        except Exception:  # no vLLM, or its groups not set up (tests, tools)
            size = int(getattr(self.parallel_config, "tensor_parallel_size", 1) or 1)
            return int(getattr(self.parallel_config, "rank", 0) or 0) % size, size

    def _hf_config(self) -> Any:
        config = getattr(self.model_config, "hf_config", None)
        return config if config is not None else getattr(self.model, "config", None)

    # The trainer's side ------------------------------------------------------------------------------------

    @staticmethod
    def trainer_send_weights(iterator: Iterable[Tuple[str, torch.Tensor]],
                             trainer_args: Union[Dict[str, Any], "WeightbusTrainerSendWeightsArgs"]) -> WeightbusUpdateInfo:
        """Publishes the iterator's (name, tensor) pairs as the next version of the topic and delivers the update
        info as vLLM's IPC engine delivers its own: send_mode "http" (POST url/update_weights), "ray"
        (llm_handle.update_weights.remote), a callable given the update info, or None (publish only; deliver it
        yourself). Returns the update info. The first call allocates the topic's tensors on the tensors'
        device, in memory that outlives this process; later calls must send the same names, shapes and dtypes."""
        args = trainer_args if isinstance(trainer_args, WeightbusTrainerSendWeightsArgs) else \
            WeightbusTrainerSendWeightsArgs.from_dict(trainer_args)
        info = WeightbusUpdateInfo(publish(iterator, args.topic, args.socket, args.replicas, args.timeout,
                                           args.metadata), args.topic)
        _deliver(info, args)
        return info


@dataclass
class WeightbusTrainerSendWeightsArgs:
    """trainer_send_weights' arguments, in the shape of vLLM's IPCTrainerSendWeightsArgs (`mode` is the older
    spelling of `send_mode`; packed, packed_buffer_size_bytes and packed_num_buffers are accepted and unused: a
    version is sent whole through shared memory, never in chunks)."""

    topic: str = ""
    send_mode: Union[None, str, Callable[[WeightbusUpdateInfo], Any]] = None
    url: Optional[str] = None
    llm_handle: Any = None
    socket: Optional[str] = None
    replicas: int = 2
    timeout: float = 60.0
    metadata: bytes = b""
    packed: bool = False
    packed_buffer_size_bytes: int = 0
    packed_num_buffers: int = 0

    def __post_init__(self) -> None:
        _checked(isinstance(self.topic, str) and bool(self.topic), "weightbus: trainer_args needs a topic name")
        mode = self.send_mode
        _checked(mode in (None, "http", "ray") or callable(mode),
                 f"weightbus: send_mode must be 'http', 'ray', a callable or None, got {mode!r}")
        _checked(mode != "http" or bool(self.url), "weightbus: send_mode 'http' needs url")
        _checked(mode != "ray" or self.llm_handle is not None, "weightbus: send_mode 'ray' needs llm_handle")

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "WeightbusTrainerSendWeightsArgs":
        values = dict(values)
        if "mode" in values:  # vLLM's earlier name
            values.setdefault("send_mode", values.pop("mode"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        _checked(not unknown, f"weightbus: unknown trainer_args {unknown}; known: {sorted(known)}")
        return cls(**values)


def _deliver(info: WeightbusUpdateInfo, args: WeightbusTrainerSendWeightsArgs) -> None:
    update_info = asdict(info)
    if args.send_mode == "http":
        assert args.url is not None
        post_json(args.url.rstrip("/") + "/update_weights", {"update_info": update_info}, args.timeout)
    elif args.send_mode == "ray":
        import ray

        ray.get(args.llm_handle.update_weights.remote(dict(update_info=update_info)))
    elif callable(args.send_mode):
        args.send_mode(info)


def _parse(cls: Any, values: Any, what: str) -> Any:
    if not isinstance(values, dict):
        raise ValueError(f"weightbus: {what} must be a dict, got {type(values).__name__}")
    try:
        return cls(**values)
    except TypeError as e:
        raise ValueError(f"Invalid {what} for weightbus: {e}") from e


# Trainer-side engine (vLLM's VLLMWeightSyncClient protocol: four calls on any object) -------------------------

@dataclass
class WeightbusTrainerInitInfo(_TrainerInitInfoBase):  # type: ignore[misc,valid-type]
    """The trainer's init info: its rank (rank 0 publishes), the topic and where the broker is. The worker-side
    fields (load, timeout, pad_to, fp8_block) are sent to the workers by trainer_init."""

    backend: ClassVar[str] = BACKEND
    topic: str = ""
    socket: Optional[str] = None
    replicas: int = 2
    load: str = "auto"
    timeout: float = 60.0
    pad_to: int = 64
    fp8_block: Optional[Tuple[int, int]] = None
    rank: int = field(default=0)

    def __post_init__(self) -> None:
        _checked(isinstance(self.topic, str) and bool(self.topic), "weightbus: trainer init_info needs a topic name")
        check_load_mode(self.load)

    @property
    def is_sender(self) -> bool:
        return self.rank == 0


class WeightbusTrainerWeightTransferEngine(_TrainerEngineBase):  # type: ignore[misc,valid-type]
    """The trainer's side where vLLM has trainer engines: trainer_init on every rank, then send_weights() per
    round publishes the source's weights (rank 0; every rank iterates, as the source's gathers are collectives)
    and drives start_weight_update, update_weights({topic, version}), finish_weight_update through the client."""

    init_info_cls = WeightbusTrainerInitInfo

    def __init__(self, config: Any = None, *, client: Any, source: Any, is_sender: bool = True,
                 init_info: Optional[WeightbusTrainerInitInfo] = None) -> None:
        if HAVE_TRAINER_ENGINES:
            super().__init__(config, client=client, source=source, is_sender=is_sender)
        self.config, self.client, self.source, self.is_sender = config, client, source, is_sender
        self.init_info = init_info
        self.last_version = 0

    @classmethod
    def trainer_init(cls, *args: Any, client: Any, source: Any = None, **kwargs: Any) -> "WeightbusTrainerWeightTransferEngine":
        """trainer_init([config,] init_info, *, client, source): vLLM's factory passes config first, its
        documented form does not."""
        given = list(args)
        init_info = kwargs.pop("init_info", None) or (given.pop() if given else None)
        config = kwargs.pop("config", None) or (given.pop() if given else None)
        if kwargs:
            raise TypeError(f"trainer_init: unexpected {sorted(kwargs)}")
        if isinstance(init_info, dict):
            init_info = _parse(WeightbusTrainerInitInfo, init_info, "init_info")
        if not isinstance(init_info, WeightbusTrainerInitInfo):
            raise ValueError(f"weightbus: trainer_init needs a WeightbusTrainerInitInfo, got {init_info!r}")
        if source is None:
            raise ValueError("weightbus: trainer_init needs a source of weights (e.g. ModuleSource(model))")
        engine = cls(config, client=client, source=source, is_sender=init_info.is_sender, init_info=init_info)
        if engine.is_sender:  # the workers' init info: its fields, as the trainer's holds them
            engine.client.init_weight_transfer_engine({f.name: getattr(init_info, f.name)
                                                       for f in fields(WeightbusInitInfo)})
        return engine

    def send_weights(self) -> None:
        info = self.init_info
        assert info is not None
        if not self.is_sender:
            for _ in self.source:  # the source's gathers are collectives: every rank takes part
                pass
            return
        version = publish(iter(self.source), info.topic, info.socket, info.replicas, info.timeout)
        self.client.start_weight_update()
        self.client.update_weights(asdict(WeightbusUpdateInfo(version, info.topic)))
        self.client.finish_weight_update()
        self.last_version = version

    def shutdown(self) -> None:
        pass


def register() -> None:
    """vLLM's plugin entry point (vllm.general_plugins): registers the "weightbus" backend with vLLM's factories,
    once per process (vLLM loads plugins in every process it starts); without vLLM it does nothing."""
    try:
        from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory
    except ImportError:
        return
    _register(WeightTransferEngineFactory, "WeightbusWeightTransferEngine")
    try:
        from vllm.distributed.weight_transfer.factory import WeightTransferTrainerFactory
    except ImportError:
        return
    _register(WeightTransferTrainerFactory, "WeightbusTrainerWeightTransferEngine")


def _register(factory: Any, class_name: str) -> None:
    try:
        factory.register_engine(BACKEND, __name__, class_name)
    except ValueError as e:
        if "already registered" not in str(e):
            raise


__all__ = ["BACKEND", "HAVE_VLLM", "WeightbusInitInfo", "WeightbusTrainerInitInfo", "WeightbusTrainerSendWeightsArgs",
           "WeightbusTrainerWeightTransferEngine", "WeightbusUpdateInfo", "WeightbusWeightTransferEngine",
           "close_publishers", "publish", "register"]
