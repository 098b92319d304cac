"""The inference engines' adapters without the engines: weightbus.vllm driven the way vLLM's factory and workers
drive a weight-transfer engine (both constructor signatures, parse_*_info, start/receive/finish, the trainer's
trainer_send_weights with vLLM's argument shapes, the trainer engine, plugin registration), and weightbus.sglang
driven the way SGLang's update_weights_from_tensor calls a custom loader. Each against a live broker, with the
model's parameters compared element by element to what vLLM's loaders would hold. The same engines inside a real
vLLM: test_vllm_backend_registers_with_vllm (skipped where vLLM is not installed)."""
import base64
import http.server
import json
import pickle
import sys
import threading
import types
import urllib.error
from dataclasses import asdict
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

import weightbus  # noqa: E402
from weightbus import serving, sglang, vllm  # noqa: E402
from test_sharded import CONFIG, fsdp_shards, trainer_model, vllm_expected  # noqa: E402


class ServedModel(torch.nn.Module):
    """A model holding parameters under the given names (nested as an engine's modules are), with an engine-style
    load_weights that records what it was given and copies the tensors of the same names and shapes (an engine's
    loaders would also slice the others)."""

    def __init__(self, tensors):
        super().__init__()
        for name, tensor in tensors.items():
            *path, leaf = name.split(".")
            owner = self
            for part in path:
                if part not in owner._modules:
                    owner.add_module(part, torch.nn.Module())
                owner = owner._modules[part]
            owner.register_parameter(leaf, torch.nn.Parameter(torch.zeros_like(tensor), requires_grad=False))
        self.config = None
        self.loaded = []

    def load_weights(self, weights):
        params = dict(self.named_parameters())
        self.loaded.append([name for name, _ in weights])
        with torch.no_grad():
            for name, tensor in weights:
                if name in params and params[name].shape == tensor.shape:
                    params[name].copy_(tensor)


@pytest.fixture
def publishers():
    yield
    serving.close_publishers()
    sglang.close()


def send(broker, tensors, topic="policy", **args):
    return vllm.WeightbusWeightTransferEngine.trainer_send_weights(
        iter(tensors.items()), {"topic": topic, "socket": broker.socket, **args})


def tp_config(rank, size):
    return SimpleNamespace(rank=rank, tensor_parallel_size=size)


def new_engine(model=None, rank=0, size=1, config=CONFIG):
    """An engine as vLLM >= 0.25 makes it: (config, vllm_config, device, model)."""
    vllm_config = SimpleNamespace(parallel_config=tp_config(rank, size), model_config=SimpleNamespace(hf_config=config))
    return vllm.WeightbusWeightTransferEngine(SimpleNamespace(backend="weightbus"), vllm_config,
                                              torch.device("cpu"), model)


# vLLM: construction and messages ----------------------------------------------------------------------------

def test_vllm_engine_takes_both_constructor_signatures():
    old = vllm.WeightbusWeightTransferEngine(SimpleNamespace(backend="weightbus"), tp_config(1, 2))
    assert old.model is None and old.parallel_config.tensor_parallel_size == 2 and old._tp() == (1, 2)
    model = torch.nn.Linear(2, 2)
    new = new_engine(model, 3, 4)
    assert new.model is model and new._tp() == (3, 4) and new._hf_config() is CONFIG
    keywords = vllm.WeightbusWeightTransferEngine(SimpleNamespace(), vllm_config=SimpleNamespace(), device=None,
                                                  model=model)
    assert keywords.model is model
    with pytest.raises(TypeError, match="missing"):
        vllm.WeightbusWeightTransferEngine(SimpleNamespace(), SimpleNamespace(), None)


def test_vllm_update_info_round_trips_and_bad_payloads_are_value_errors():
    engine = new_engine()
    info = engine.parse_update_info({"topic": "policy", "version": 7})
    assert (info.topic, info.version) == ("policy", 7)
    assert engine.parse_update_info(asdict(info)) == info
    assert json.loads(json.dumps(asdict(info))) == {"topic": "policy", "version": 7}
    init = engine.parse_init_info({"topic": "policy", "load": "plan", "timeout": 5, "fp8_block": [64, 32]})
    assert engine.parse_init_info(asdict(init)) == init
    for bad in ({"topic": "p", "version": -1}, {"topic": "p", "version": "3"}, {"topic": "p", "version": True},
                {"topic": 3}, {"topic": "p", "handles": []}):
        with pytest.raises(ValueError):
            engine.parse_update_info(bad)
    for bad in ({}, {"topic": ""}, {"topic": "p", "load": "fast"}, {"topic": "p", "timeout": 0},
                {"topic": "p", "pad_to": 0}, {"topic": "p", "url": "x"}, {"topic": "p", "fp8_block": [128]},
                {"topic": "p", "fp8_block": [128, 0]}, {"topic": "p", "fp8_block": "128x128"}):
        with pytest.raises(ValueError):
            engine.parse_init_info(bad)


def test_vllm_trainer_args_in_vllms_shapes(broker, publishers):
    with pytest.raises(ValueError, match="url"):
        vllm.WeightbusTrainerSendWeightsArgs(topic="p", send_mode="http")
    with pytest.raises(ValueError, match="llm_handle"):
        vllm.WeightbusTrainerSendWeightsArgs(topic="p", send_mode="ray")
    with pytest.raises(ValueError, match="send_mode"):
        vllm.WeightbusTrainerSendWeightsArgs(topic="p", send_mode="carrier-pigeon")
    with pytest.raises(ValueError, match="unknown trainer_args"):
        vllm.WeightbusTrainerSendWeightsArgs.from_dict({"topic": "p", "group": None})
    with pytest.raises(ValueError, match="topic"):
        vllm.WeightbusTrainerSendWeightsArgs.from_dict({"send_mode": None})
    args = vllm.WeightbusTrainerSendWeightsArgs.from_dict({"topic": "p", "mode": "http", "url": "http://h",
                                                          "packed": True, "packed_buffer_size_bytes": 1 << 20})
    assert (args.send_mode, args.url) == ("http", "http://h")
    delivered = []
    info = send(broker, {"w": torch.ones(3)}, send_mode=delivered.append)
    assert delivered == [info] and info.version == 1 and info.topic == "policy"


def test_vllm_trainer_send_weights_refuses_another_layout(broker, publishers):
    send(broker, {"w": torch.ones(3), "b": torch.zeros(2)})
    with pytest.raises(weightbus.LayoutError, match="missing \\['b'\\]"):
        send(broker, {"w": torch.ones(3)})
    with pytest.raises(weightbus.LayoutError, match="'w' is f32\\[3\\]"):
        send(broker, {"w": torch.ones(4), "b": torch.zeros(2)})
    assert send(broker, {"w": torch.ones(3), "b": torch.zeros(2)}).version == 2


# vLLM: the worker's side -----------------------------------------------------------------------------------

def test_vllm_receive_weights_feeds_load_weights_with_the_version_named(broker, publishers):
    """vLLM before the engine owned the update: the worker passes load_weights (here, a callback)."""
    engine = vllm.WeightbusWeightTransferEngine(SimpleNamespace(backend="weightbus"), tp_config(0, 1))
    with pytest.raises(RuntimeError, match="init_transfer_engine"):
        engine.receive_weights(vllm.WeightbusUpdateInfo(1, "policy"), lambda w: None)
    first = send(broker, {"w": torch.full((4,), 1.0), "b": torch.zeros(2)})
    engine.init_transfer_engine(engine.parse_init_info({"topic": "policy", "socket": broker.socket}))
    send(broker, {"w": torch.full((4,), 2.0), "b": torch.ones(2)})
    got = {}

    def load_weights(weights):
        got.update({name: tensor.clone() for name, tensor in weights})

    engine.receive_weights(first, load_weights)  # version 1 is still readable (R = 2)
    assert engine.last_version == 1 and torch.equal(got["w"], torch.full((4,), 1.0))
    engine.receive_weights(engine.parse_update_info({"topic": "policy", "version": 0}), load_weights)
    assert engine.last_version == 2 and torch.equal(got["b"], torch.ones(2))
    with pytest.raises(weightbus.NotFoundError):
        engine.receive_weights(vllm.WeightbusUpdateInfo(1, "no-such-topic"), load_weights)
    with pytest.raises(weightbus.InvalidArgumentError, match="neither"):
        engine.receive_weights(vllm.WeightbusUpdateInfo(2))
    engine.shutdown()
    engine.shutdown()  # twice: nothing left to close


@pytest.mark.parametrize("ranks", [1, 2])
def test_vllm_engine_owning_the_model_copies_each_tp_ranks_slices_by_a_plan(broker, publishers, ranks):
    """vLLM since the engine owns the update: update_weights(dict) between start and finish; "auto" finds a plan
    for every parameter and fills them with what vLLM's loaders would."""
    full = trainer_model()
    send(broker, full)
    engines = []
    for rank in range(ranks):
        want = vllm_expected(full, rank, ranks)
        model = ServedModel(want)
        engine = new_engine(model, rank, ranks)
        engine.init_transfer_engine({"topic": "policy", "socket": broker.socket})
        engine.start_weight_update()
        engine.update_weights({"version": 1})
        engine.finish_weight_update()
        assert engine._receiver().mode == "plan" and model.loaded == []
        for name, param in model.named_parameters():
            assert torch.equal(param, want[name]), (name, rank)
        engines.append((engine, model, want))
    changed = {name: t + 1 for name, t in full.items()}
    send(broker, changed)
    for rank, (engine, model, _) in enumerate(engines):
        engine.update_weights({"version": 2, "topic": "policy"})
        want = vllm_expected(changed, rank, ranks)
        assert all(torch.equal(p, want[n]) for n, p in model.named_parameters())
        engine.shutdown()


def test_vllm_engine_falls_back_to_load_weights_where_no_plan_fits(broker, publishers, caplog):
    """A model whose parameters are not the checkpoint's (here an extra one of its own): "auto" loads through the
    model's load_weights with the trainer's names; "plan" refuses, naming the parameter."""
    full = trainer_model()
    send(broker, full)
    served = dict(vllm_expected(full, 0, 1), **{"model.rotary.scale": torch.zeros(3)})
    model = ServedModel(served)
    engine = new_engine(model)
    caplog.set_level("INFO", logger="weightbus")
    engine.init_transfer_engine({"topic": "policy", "socket": broker.socket})
    engine.start_weight_update()  # no vLLM: no layerwise reload to begin
    engine.update_weights({"version": 1})
    assert engine._receiver().mode == "load_weights" and "not a plan" in caplog.text
    assert sorted(model.loaded[0]) == sorted(full)
    strict = new_engine(ServedModel(served))
    strict.init_transfer_engine({"topic": "policy", "socket": broker.socket, "load": "plan"})
    with pytest.raises(weightbus.NotFoundError, match="model.rotary.scale"):
        strict.update_weights({"version": 1})
    for e in (engine, strict):
        e.shutdown()


def test_a_receiver_told_to_plan_needs_a_model(broker, publishers):
    send(broker, {"w": torch.ones(2)})
    with broker.connect("server") as client:
        receiver = serving.ModelReceiver(client.open_topic("policy"), load="plan")
        with pytest.raises(weightbus.InvalidArgumentError, match="needs the model"):
            receiver.receive(1)
        with pytest.raises(weightbus.InvalidArgumentError, match="load="):
            serving.ModelReceiver(receiver.topic, load="fast")
        with pytest.raises(weightbus.InvalidArgumentError, match="rank 2 of 2"):
            serving.ModelReceiver(receiver.topic, tp_rank=2, tp_size=2)


def test_vllm_plan_by_the_owner_of_load_weights(broker, publishers):
    """vLLM that passes model.load_weights: with load="plan" the engine plans into the method's model."""
    full = trainer_model()
    send(broker, full)
    want = vllm_expected(full, 0, 1)
    model = ServedModel(want)
    model.config = CONFIG
    engine = vllm.WeightbusWeightTransferEngine(SimpleNamespace(), tp_config(0, 1))
    engine.init_transfer(vllm.WeightbusInitInfo(topic="policy", socket=broker.socket, load="plan"))
    engine.receive_weights(vllm.WeightbusUpdateInfo(1), load_weights=model.load_weights)
    assert model.loaded == [] and all(torch.equal(p, want[n]) for n, p in model.named_parameters())
    with pytest.raises(weightbus.InvalidArgumentError, match="not a model's method"):
        engine.receive_weights(vllm.WeightbusUpdateInfo(1), load_weights=lambda w: None)
    engine.shutdown()


def test_vllm_load_weights_gets_a_sharded_topic_whole(broker, publishers):
    """FSDP ranks publish shards (no gather); the server's load_weights gets every logical tensor whole."""
    full = trainer_model()
    from weightbus.torch import publish_shards

    with broker.connect("rank0") as c0, broker.connect("rank1") as c1:
        ranks = [c0.create_rank("llama", 0, 2), c1.create_rank("llama", 1, 2)]
        shards = [fsdp_shards(full, r, 2) for r in range(2)]
        for topic, mine in zip(ranks, shards):
            topic.alloc_shards(mine)
        for topic, mine in zip(ranks, shards):
            topic.seal_rank(timeout=5)
        for topic, mine in zip(ranks, shards):
            publish_shards(topic, mine)
        engine = vllm.WeightbusWeightTransferEngine(SimpleNamespace(), tp_config(0, 1))
        engine.init_transfer_engine({"topic": "llama", "socket": broker.socket})
        got = {}
        engine.receive_weights(vllm.WeightbusUpdateInfo(1), lambda w: got.update((n, t.clone()) for n, t in w))
        assert sorted(got) == sorted(full) and all(torch.equal(got[n], full[n]) for n in full)
        engine.shutdown()


def test_vllm_update_before_its_version_waits_and_a_lost_version_is_expired(broker, publishers):
    """The message of a sharded model may come before the last rank published: the worker waits for the version
    (up to init_info timeout); a version the topic no longer keeps is refused, not replaced by another."""
    send(broker, {"w": torch.zeros(2)})
    engine = vllm.WeightbusWeightTransferEngine(SimpleNamespace(), tp_config(0, 1))
    engine.init_transfer_engine({"topic": "policy", "socket": broker.socket, "timeout": 0.2})
    got = []
    with pytest.raises(weightbus.WaitTimeoutError):
        engine.receive_weights(vllm.WeightbusUpdateInfo(2), lambda w: got.append(w))
    late = threading.Timer(0.05, lambda: send(broker, {"w": torch.ones(2)}))
    engine._receiver().timeout = 10.0
    late.start()
    engine.receive_weights(vllm.WeightbusUpdateInfo(2), lambda w: got.append([t.clone() for _, t in w]))
    late.join()
    assert engine.last_version == 2 and torch.equal(got[-1][0], torch.ones(2))
    for _ in range(2):
        send(broker, {"w": torch.ones(2)})
    with pytest.raises(weightbus.ExpiredError, match="version 2"):
        engine.receive_weights(vllm.WeightbusUpdateInfo(2), lambda w: None)
    engine.shutdown()


# vLLM: delivery and the trainer engine --------------------------------------------------------------------------

class Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP server that records each POST's path and JSON body, answering `status`."""
    status = 200
    requests: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append((self.path, json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    Recorder.requests, Recorder.status = [], 200
    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", Recorder
    server.shutdown()
    server.server_close()


def test_vllm_http_mode_posts_the_update_info_as_vllms_route_takes_it(broker, publishers, http_server):
    url, recorder = http_server
    info = send(broker, {"w": torch.ones(2)}, send_mode="http", url=url + "/")
    assert recorder.requests == [("/update_weights", {"update_info": {"version": info.version, "topic": "policy"}})]
    recorder.status = 500
    with pytest.raises(urllib.error.HTTPError):
        send(broker, {"w": torch.ones(2)}, send_mode="http", url=url)


def test_vllm_ray_mode_calls_the_handles_update_weights(broker, publishers, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(get=lambda ref: ref))
    handle = SimpleNamespace(update_weights=SimpleNamespace(remote=lambda request: calls.append(request)))
    info = send(broker, {"w": torch.ones(2)}, send_mode="ray", llm_handle=handle)
    assert calls == [{"update_info": {"version": info.version, "topic": "policy"}}]


class SyncClient:
    """vLLM's VLLMWeightSyncClient protocol: four calls, here recorded."""

    def __init__(self):
        self.calls = []

    def init_weight_transfer_engine(self, init_info):
        self.calls.append(("init", init_info))

    def start_weight_update(self):
        self.calls.append(("start",))

    def update_weights(self, update_info):
        self.calls.append(("update", update_info))

    def finish_weight_update(self, weight_version=None):
        self.calls.append(("finish",))


class Source:
    """vLLM's WeightSource shape: re-iterable (name, tensor) pairs."""

    def __init__(self, tensors):
        self.tensors, self.passes = tensors, 0

    def __iter__(self):
        self.passes += 1
        return iter(list(self.tensors.items()))


def test_vllm_trainer_engine_drives_the_four_calls(broker, publishers):
    client, other = SyncClient(), SyncClient()
    source = Source({"w": torch.ones(3)})
    info = vllm.WeightbusTrainerInitInfo(topic="policy", socket=broker.socket, rank=0)
    engine = vllm.WeightbusTrainerWeightTransferEngine.trainer_init(SimpleNamespace(), info, client=client,
                                                                      source=source)
    assert client.calls == [("init", {"topic": "policy", "socket": broker.socket, "load": "auto", "timeout": 60.0,
                                      "pad_to": 64, "fp8_block": None})]
    engine.send_weights()
    engine.send_weights()
    assert client.calls[1:] == [("start",), ("update", {"version": 1, "topic": "policy"}), ("finish",),
                                ("start",), ("update", {"version": 2, "topic": "policy"}), ("finish",)]
    follower = vllm.WeightbusTrainerWeightTransferEngine.trainer_init(
        init_info={"topic": "policy", "rank": 1}, client=other, source=source)
    follower.send_weights()
    assert other.calls == [] and source.passes == 3  # rank 1 iterated (the gathers are collectives), sent nothing
    with pytest.raises(ValueError, match="source"):
        vllm.WeightbusTrainerWeightTransferEngine.trainer_init(info, client=client)
    with pytest.raises(ValueError, match="WeightbusTrainerInitInfo"):
        vllm.WeightbusTrainerWeightTransferEngine.trainer_init(client=client, source=source)


def fake_vllm_factory(monkeypatch):
    """vllm.distributed.weight_transfer.factory with vLLM's register_engine (duplicates raise ValueError)."""
    class Factory:
        def __init__(self):
            self.registry = {}

        def register_engine(self, name, module, class_name=None):
            if name in self.registry:
                raise ValueError(f"Weight transfer engine '{name}' is already registered.")
            self.registry[name] = (module, class_name)

    engines, trainers = Factory(), Factory()
    module = types.ModuleType("vllm.distributed.weight_transfer.factory")
    module.WeightTransferEngineFactory, module.WeightTransferTrainerFactory = engines, trainers
    for name in ("vllm", "vllm.distributed", "vllm.distributed.weight_transfer"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return engines, trainers


def test_vllm_plugin_registers_the_backend_once(monkeypatch):
    if not vllm.HAVE_VLLM:
        vllm.register()  # no vLLM: nothing to register with, no error
    engines, trainers = fake_vllm_factory(monkeypatch)
    vllm.register()
    vllm.register()  # vLLM loads plugins in every process, maybe more than once
    assert engines.registry == {"weightbus": ("weightbus.vllm", "WeightbusWeightTransferEngine")}
    assert trainers.registry == {"weightbus": ("weightbus.vllm", "WeightbusTrainerWeightTransferEngine")}


def test_vllm_plugin_entry_point_is_declared():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["vllm.general_plugins"] == {"weightbus": "weightbus.vllm:register"}


def test_vllm_backend_runs_inside_vllm(broker, publishers):
    """Inside a real vLLM (skipped where it is not installed, as on our GPU host): the plugin registers the
    backend, vLLM's own WeightTransferConfig names it, vLLM's factory builds the engine by that name, and the
    engine loads a version vLLM's way (update_weights between start and finish, or receive_weights with a
    load_weights on vLLM versions before the engine owned the update)."""
    pytest.importorskip("vllm", reason="vLLM is not installed here (the GPU host lacks it too)")
    import inspect

    from vllm.config.weight_transfer import WeightTransferConfig
    from vllm.distributed.weight_transfer.base import WeightTransferEngine
    from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

    vllm.register()
    vllm.register()
    assert issubclass(vllm.WeightbusWeightTransferEngine, WeightTransferEngine)
    config = WeightTransferConfig(backend="weightbus")
    full = trainer_model()
    send(broker, full)
    want = vllm_expected(full, 0, 1)
    model = ServedModel(want)
    parameters = inspect.signature(WeightTransferEngineFactory.create_engine).parameters
    if "model" in parameters:
        vllm_config = SimpleNamespace(parallel_config=tp_config(0, 1), model_config=SimpleNamespace(hf_config=CONFIG))
        engine = WeightTransferEngineFactory.create_engine(config, vllm_config, torch.device("cpu"), model)
        engine.init_transfer_engine(engine.parse_init_info({"topic": "policy", "socket": broker.socket}))
        engine.start_weight_update()
        engine.update_weights({"version": 1})
        engine.finish_weight_update()
    else:
        engine = WeightTransferEngineFactory.create_engine(config, tp_config(0, 1))
        engine.init_transfer_engine(engine.parse_init_info({"topic": "policy", "socket": broker.socket,
                                                            "load": "plan"}))
        model.config = CONFIG
        engine.receive_weights(engine.parse_update_info({"version": 1}), load_weights=model.load_weights)
    assert isinstance(engine, vllm.WeightbusWeightTransferEngine) and engine.last_version == 1
    assert all(torch.equal(p, want[n]) for n, p in model.named_parameters())
    engine.shutdown()


# SGLang ----------------------------------------------------------------------------------------------------------

def deserialize(payload):
    """What SGLang's MultiprocessingSerializer.deserialize does with one rank's entry."""
    data = base64.b64decode(payload, validate=True) if isinstance(payload, str) else payload
    return ForkingPickler.loads(data)


def test_sglang_message_round_trips_through_sglangs_serializer():
    request = sglang.update_request("policy", 4, tp_size=2, as_text=True)
    assert request["load_format"] == "weightbus.sglang.load_weights" and request["flush_cache"] is True
    assert len(request["serialized_named_tensors"]) == 2
    named = deserialize(request["serialized_named_tensors"][1])
    assert len(named) == 1 and named[0][1].numel() == 0
    assert sglang.parse(named) == {"topic": "policy", "version": 4, "socket": None, "load": "auto", "timeout": 60.0}
    assert b"storage" not in pickle.dumps(named[0][0].encode())  # the name is plain text
    assert isinstance(sglang.update_request("p", 1)["serialized_named_tensors"][0], bytes)
    for bad in (lambda: sglang.message("", 1), lambda: sglang.message("p", -1),
                lambda: sglang.message("p", 1, load="fast"), lambda: sglang.update_request("p", 1, tp_size=0)):
        with pytest.raises(weightbus.InvalidArgumentError):
            bad()


def test_sglang_loader_refuses_what_is_not_a_message():
    for named in ([("model.w", torch.ones(2))], [], sglang.message("p", 1) * 2,
                  [("weightbus:{not json", torch.empty(0))], [("weightbus:" + json.dumps({"topic": "p"}), None)],
                  [("weightbus:" + json.dumps({"topic": "p", "version": 1, "load": "x"}), None)]):
        with pytest.raises(ValueError):
            sglang.load_weights(torch.nn.Linear(1, 1), named)


def test_sglang_loader_loads_the_version_named(broker, publishers):
    full = trainer_model()
    first = sglang.publish(full.items(), "policy", socket=broker.socket)
    sglang.publish({n: t * 2 for n, t in full.items()}.items(), "policy", socket=broker.socket)
    want = vllm_expected(full, 0, 1)
    model = ServedModel(want)  # no config: "auto" loads through load_weights
    sglang.load_weights(model, deserialize(sglang.update_request("policy", first, socket=broker.socket)
                                            ["serialized_named_tensors"][0]))
    assert sorted(model.loaded[0]) == sorted(full)
    planned = ServedModel(want)
    planned.config = CONFIG
    sglang.load_weights(planned, sglang.message("policy", first, socket=broker.socket))
    assert planned.loaded == [] and all(torch.equal(p, want[n]) for n, p in planned.named_parameters())


def test_sglang_request_update_posts_to_the_tensor_route(http_server):
    url, recorder = http_server
    sglang.request_update(url, "policy", 3, tp_size=2)
    (path, body), = recorder.requests
    assert path == "/update_weights_from_tensor" and body["load_format"] == sglang.LOADER
    assert sglang.parse(deserialize(body["serialized_named_tensors"][0]))["version"] == 3
