"""PyTorch helpers on the CPU (the GPU cases run in tests/gpu/run.sh): torch.from_dlpack is zero-copy,
ModulePublisher publishes a module's parameters and persistent buffers (its state_dict's tensors) and load_module
loads them into another module."""
import time

import pytest

torch = pytest.importorskip("torch")

import weightbus  # noqa: E402
from weightbus.torch import ModulePublisher, load_module  # noqa: E402


def model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def test_from_dlpack_is_zero_copy_with_bf16(client):
    topic = client.create_topic("model")
    topic.alloc({"w": ((3, 4), torch.bfloat16), "x": ((2,), "f32")})
    with topic.update() as u:
        torch.from_dlpack(u["w"]).copy_(torch.arange(12, dtype=torch.bfloat16).reshape(3, 4))
    with client.open_topic("model").snapshot() as s:
        w = torch.from_dlpack(s["w"])
        assert w.dtype == torch.bfloat16 and w.data_ptr() == s["w"].data_ptr
        assert w[2, 3].item() == 11.0


def test_publish_then_load_into_another_module(broker, client):
    trainer, server = model(1), model(2)
    publisher = ModulePublisher(client.create_topic("policy"), trainer)
    assert publisher.publish(metadata=b"step 1") == 1
    with torch.no_grad():
        for p in trainer.parameters():
            p.add_(1.0)
    assert publisher.publish(metadata=b"step 2") == 2
    with broker.connect("server") as other:
        reader = other.open_topic("policy")
        assert load_module(reader, server) == 2
        for a, b in zip(trainer.parameters(), server.parameters()):
            assert torch.equal(a, b)
        assert load_module(reader, server, version=1) == 1
        assert not torch.equal(next(trainer.parameters()), next(server.parameters()))


def test_load_module_maps_names_and_checks_shapes(client):
    trainer = model(1)
    ModulePublisher(client.create_topic("policy"), trainer).publish()
    reader = client.open_topic("policy")
    renamed = torch.nn.Module()
    renamed.fc_in = torch.nn.Linear(8, 16)
    with pytest.raises(weightbus.NotFoundError, match="fc_in.weight"):
        load_module(reader, renamed)
    assert load_module(reader, renamed, name_map=lambda n: n.replace("fc_in", "0")) == 1
    assert torch.equal(renamed.fc_in.weight, trainer[0].weight)
    wrong = torch.nn.Sequential(torch.nn.Linear(8, 15))
    with pytest.raises(weightbus.InvalidArgumentError, match="'0.weight' is f32\\[16, 8\\]"):
        load_module(reader, wrong)
    assert load_module(reader, torch.nn.Sequential(torch.nn.Linear(8, 16)), strict=False) == 1


def test_register_mode_needs_cuda_and_one_replica(client):
    with pytest.raises(weightbus.InvalidArgumentError, match="replicas=1"):
        ModulePublisher(client.create_topic("r2", replicas=2), model(1), mode="register")
    with pytest.raises(weightbus.InvalidArgumentError, match="needs CUDA tensors"):
        ModulePublisher(client.create_topic("r1", replicas=1), model(1), mode="register")
    with pytest.raises(ValueError, match="mode must be"):
        ModulePublisher(client.create_topic("m"), model(1), mode="move")
    copy = ModulePublisher(client.create_topic("c"), model(1))
    with pytest.raises(weightbus.StateError, match="writing"):
        with copy.writing():
            pass


def test_load_module_keeps_its_plan_until_the_module_or_the_topic_changes(broker, client):
    import weightbus.torch as wbt

    trainer, server = model(1), model(2)
    publisher = ModulePublisher(client.create_topic("policy"), trainer)
    publisher.publish()
    with broker.connect("server") as other:
        reader = other.open_topic("policy")
        assert load_module(reader, server) == 1
        plan = wbt._LOADERS[reader][server].plan
        with torch.no_grad():
            for p in trainer.parameters():
                p.mul_(2.0)
        publisher.publish()
        assert load_module(reader, server) == 2
        assert wbt._LOADERS[reader][server].plan is plan  # nothing resolved again
        assert all(torch.equal(a, b) for a, b in zip(trainer.parameters(), server.parameters()))

        # A replaced parameter and one whose .data was swapped: both filled, through a new plan.
        server[0].weight = torch.nn.Parameter(torch.zeros(16, 8))
        server[2].bias.data = torch.zeros(4)
        assert load_module(reader, server) == 2
        assert wbt._LOADERS[reader][server].plan is not plan
        assert all(torch.equal(a, b) for a, b in zip(trainer.parameters(), server.parameters()))

        # A view added to the topic (views may come after the first publish) makes another plan, which takes it.
        plan = wbt._LOADERS[reader][server].plan
        client.open_topic("policy").view("0.weight.top", "0.weight", "f32", (8, 8))
        assert load_module(reader, server) == 2
        assert wbt._LOADERS[reader][server].plan is not plan

        # Other options make another plan; an equal name_map dict keeps it.
        plan = wbt._LOADERS[reader][server].plan
        assert load_module(reader, server, name_map={"x": "y"}) == 2
        assert wbt._LOADERS[reader][server].plan is not plan
        plan = wbt._LOADERS[reader][server].plan
        assert load_module(reader, server, name_map={"x": "y"}) == 2
        assert wbt._LOADERS[reader][server].plan is plan


def test_load_module_after_waits_for_a_newer_version_with_its_plan_made_and_checked_before(broker, client):
    """A server's loop, `seen = load_module(topic, model, after=seen)`: the plan is kept and the module checked
    before the wait, so that a module changed between two calls is still loaded right."""
    import threading

    import weightbus.torch as wbt

    trainer, server = model(1), model(2)
    with broker.connect("server") as other:
        publisher = ModulePublisher(client.create_topic("policy"), trainer)
        reader = other.open_topic("policy")

        def publish_later(delay):
            def run():
                time.sleep(delay)
                with torch.no_grad():
                    for p in trainer.parameters():
                        p.add_(1.0)
                publisher.publish()
            thread = threading.Thread(target=run)
            thread.start()
            return thread

        # Before the first version nothing can be prepared: the plan is made once the version is there.
        thread = publish_later(0.05)
        assert load_module(reader, server, after=0, timeout=10) == 1
        thread.join()
        assert all(torch.equal(a, b) for a, b in zip(trainer.parameters(), server.parameters()))
        plan = wbt._LOADERS[reader][server].plan

        thread = publish_later(0.05)
        assert load_module(reader, server, after=1, timeout=10) == 2  # asleep in the wait, then loaded
        thread.join()
        assert wbt._LOADERS[reader][server].plan is plan
        assert all(torch.equal(a, b) for a, b in zip(trainer.parameters(), server.parameters()))

        # A version already newer than `after`: no wait. A parameter replaced before the call: a new plan.
        server[0].weight = torch.nn.Parameter(torch.zeros(16, 8))
        assert load_module(reader, server, after=0) == 2
        assert wbt._LOADERS[reader][server].plan is not plan
        assert torch.equal(server[0].weight, trainer[0].weight)

        # Nothing newer within the timeout: WaitTimeoutError, the module untouched.
        with torch.no_grad():
            server[2].bias.fill_(-3.0)
        with pytest.raises(weightbus.WaitTimeoutError):
            load_module(reader, server, after=2, timeout=0.05)
        assert torch.equal(server[2].bias, torch.full((4,), -3.0))
        with pytest.raises(ValueError, match="version=1 and after=0"):
            load_module(reader, server, version=1, after=0)
        # The module's errors against the topic come before the wait (no version 3 ever comes here).
        with pytest.raises(weightbus.InvalidArgumentError, match="'0.weight' is f32\\[16, 8\\]"):
            load_module(reader, torch.nn.Sequential(torch.nn.Linear(8, 15)), after=2, timeout=10)


def test_load_module_copies_buffers_scalars_and_strided_rows_and_refuses_columns(broker, client):
    def net():
        return torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.BatchNorm1d(6))

    trainer, server = net(), net()
    with torch.no_grad():
        trainer[0].weight.normal_()
        trainer[1].running_mean.fill_(0.5)
        trainer[1].num_batches_tracked.fill_(7)
    ModulePublisher(client.create_topic("bn"), trainer, include_buffers=True).publish()
    with broker.connect("server") as other:
        reader = other.open_topic("bn")
        assert reader.tensor_count() == len(reader.layout()) == 7
        server[0].weight = torch.nn.Parameter(torch.zeros(6, 8).t().contiguous().t())  # [6, 8], column-major
        with pytest.raises(weightbus.InvalidArgumentError, match="'0.weight'.*strides \\[1, 6\\]"):
            load_module(reader, server, include_buffers=True)
        server[0].weight = torch.nn.Parameter(torch.zeros(12, 8)[::2])  # rows apart: the plan copies strided
        assert load_module(reader, server, include_buffers=True) == 1
    assert torch.equal(server[0].weight, trainer[0].weight)
    assert torch.equal(server[1].running_mean, trainer[1].running_mean)
    assert server[1].num_batches_tracked.item() == 7


def test_load_module_sees_changes_that_no_registration_hook_reports(broker, client, monkeypatch):
    """Where torch counts registrations (torch >= 2.0) load_module does not walk the module each version; what
    no hook reports is still seen: a parameter written into _parameters or a submodule into _modules directly,
    a deleted parameter, `.data` swapped."""
    import weightbus.torch as wbt

    monkeypatch.setattr(wbt, "_registrations", lambda: 1)  # as if torch had the hooks and nothing registered
    trainer, server = model(1), model(2)
    ModulePublisher(client.create_topic("policy"), trainer).publish()
    with broker.connect("server") as other:
        reader = other.open_topic("policy")

        def loads_right():
            plan = wbt._LOADERS[reader][server].plan if server in wbt._LOADERS.get(reader, {}) else None
            assert load_module(reader, server) == 1
            assert all(torch.equal(a, b) for a, b in zip(trainer.parameters(), server.parameters()))
            return wbt._LOADERS[reader][server].plan is not plan

        assert loads_right()
        assert not loads_right()  # nothing changed: the same plan
        server[0]._parameters["weight"] = torch.nn.Parameter(torch.zeros(16, 8))
        assert loads_right()
        server._modules["2"] = torch.nn.Linear(16, 4)
        assert loads_right()
        server[2].weight.data = torch.zeros(4, 16)
        assert loads_right()
        plan = wbt._LOADERS[reader][server].plan
        del server[2].bias  # one target fewer: a new plan
        assert load_module(reader, server) == 1
        assert wbt._LOADERS[reader][server].plan is not plan
        server[2].bias = torch.nn.Parameter(torch.zeros(4))  # back, through a registration the hook would count
        monkeypatch.setattr(wbt, "_registrations", lambda: 2)
        assert loads_right()


def batchnorm_net(seed):
    """A model with buffers: BatchNorm's running statistics and its count of batches (a 0-d int64)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2))


def train_a_step(net):
    """A forward pass in training mode, which moves the running statistics (in place) as training does."""
    net.train()
    with torch.no_grad():
        net(torch.randn(16, 8))


def test_a_module_published_and_loaded_round_trips_with_its_batchnorm_buffers(broker, client):
    trainer, server = batchnorm_net(1), batchnorm_net(2)
    train_a_step(trainer)
    ModulePublisher(client.create_topic("bn"), trainer).publish()
    with broker.connect("server") as other:
        reader = other.open_topic("bn")
        assert sorted(reader.names()) == sorted(trainer.state_dict())
        assert load_module(reader, server) == 1
    for name, tensor in trainer.state_dict().items():
        assert torch.equal(server.state_dict()[name], tensor), name
    assert server[1].num_batches_tracked.item() == 1


def test_load_module_keeps_its_plan_through_in_place_buffer_updates_and_remakes_it_for_new_buffers(broker, client):
    import weightbus.torch as wbt

    trainer, server = batchnorm_net(1), batchnorm_net(2)
    publisher = ModulePublisher(client.create_topic("bn"), trainer)
    publisher.publish()
    with broker.connect("server") as other:
        reader = other.open_topic("bn")
        assert load_module(reader, server) == 1
        plan = wbt._LOADERS[reader][server].plan
        train_a_step(trainer)
        train_a_step(server)  # in place, at the same addresses: the plan still fits
        assert publisher.publish() == 2 and load_module(reader, server) == 2
        assert wbt._LOADERS[reader][server].plan is plan
        assert torch.equal(server[1].running_mean, trainer[1].running_mean)

        server[1].running_var = torch.zeros(6)  # a new buffer object: the plan copies into it
        server[1].num_batches_tracked = torch.tensor(0)
        assert load_module(reader, server) == 2
        assert wbt._LOADERS[reader][server].plan is not plan
        assert torch.equal(server[1].running_var, trainer[1].running_var)
        assert server[1].num_batches_tracked.item() == 1


def test_non_persistent_buffers_are_neither_published_nor_loaded(broker, client):
    def net():
        model = torch.nn.Linear(4, 4)
        model.register_buffer("scale", torch.full((4,), 2.0))
        model.register_buffer("cache", torch.zeros(4), persistent=False)  # state_dict() leaves it out
        return model

    trainer, server = net(), net()
    trainer.scale.fill_(3.0)
    trainer.cache.fill_(5.0)
    ModulePublisher(client.create_topic("cached"), trainer).publish()
    assert client.open_topic("cached").names() == list(trainer.state_dict()) == ["weight", "bias", "scale"]
    with broker.connect("server") as other:
        assert load_module(other.open_topic("cached"), server) == 1
    assert torch.equal(server.scale, trainer.scale) and torch.equal(server.cache, torch.zeros(4))
    assert set(weightbus.torch.module_tensors(trainer)) == {"weight", "bias", "scale"}


def test_include_buffers_false_publishes_and_loads_the_parameters_alone(broker, client):
    trainer, server = batchnorm_net(1), batchnorm_net(2)
    train_a_step(trainer)
    ModulePublisher(client.create_topic("params"), trainer, include_buffers=False).publish()
    assert client.open_topic("params").names() == [name for name, _ in trainer.named_parameters()]
    with broker.connect("server") as other:
        assert load_module(other.open_topic("params"), server, include_buffers=False) == 1
    assert all(torch.equal(a, b) for a, b in zip(trainer.parameters(), server.parameters()))
    assert torch.equal(server[1].running_mean, torch.zeros(6)) and server[1].num_batches_tracked.item() == 0


def test_loading_buffers_from_a_topic_of_parameters_names_the_missing_buffers(broker, client):
    trainer, server = batchnorm_net(1), batchnorm_net(2)
    ModulePublisher(client.create_topic("params"), trainer, include_buffers=False).publish()
    with broker.connect("server") as other:
        reader = other.open_topic("params")
        with pytest.raises(weightbus.NotFoundError, match=r"topic 'params' has no tensor \['1.running_mean', "
                                                          r"'1.running_var', '1.num_batches_tracked'\]"):
            load_module(reader, server)
        assert load_module(reader, server, strict=False) == 1  # the parameters, the buffers left as they are
    assert torch.equal(server[0].weight, trainer[0].weight)
