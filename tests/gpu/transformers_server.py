#!/usr/bin/env python3
"""A Hugging Face transformers model served from weightbus while a trainer fine-tunes a copy of it: no sequence
is ever generated from mixed weights.

A small Llama-architecture model (transformers.LlamaConfig: hidden 256, 4 layers, 8 heads, 2 KV heads,
vocabulary 1,000, float32, eager attention; built from the config, no download, fixed seeds) on one GPU, three
processes through a private broker:

  trainer  fine-tunes its copy with Adam on random token batches and publishes every step with
           weightbus.torch.ModulePublisher (mode "copy", R = 2; the initial weights are version 1), saving each
           published version's state_dict (CPU copies taken right after the publish, on the same stream) to a
           temporary folder as VERSION.pt.
  server   loops: takes the latest whole version, then generates greedily (no KV cache: each new token runs the
           whole sequence) for a batch of 4 prompts of 16 tokens, and records (version, prompts, tokens,
           first-token logits). Mode "load": load_module into its own model, then model(...). Mode "snapshot":
           zero-copy, torch.from_dlpack of every tensor of a snapshot, swapped into the model for the
           generation (as functional_call does), the snapshot held until the generation is done.
  parent   starts both, lets the server serve --steps requests while the trainer publishes, stops the trainer.

Then the server rebuilds each recorded version from its saved state_dict (mode load: load_state_dict into the
same model; mode snapshot: the saved tensors, copied to the GPU, swapped in the same way) and regenerates every
recorded batch with the same function: the first-token logits must be torch.equal to the recorded ones and the
tokens the same. Also required: at least 3 distinct versions served, versions non-decreasing, and the check
able to tell versions apart (each served version's logits differ from those of a neighbouring version).
Determinism: eval mode, no autocast, float32 matmuls at "highest" precision (no TF32),
torch.use_deterministic_algorithms, cudnn.deterministic, CUBLAS_WORKSPACE_CONFIG=:4096:8, identical shapes.

    python3 tests/gpu/transformers_server.py BUILD_DIR [--mode load|snapshot|both] [--steps N]
                                              [--device cuda:0|cpu] [--toy]

--toy replaces the Llama model with a two-layer stand-in built from torch.nn, for running the harness where
transformers is missing (with --device cpu: no GPU either); it is not the test. Prints "RESULT
transformers-<mode> PASS|FAIL ..."; "SKIP: ..." without torch, transformers or a GPU; exit status 1 on a failure.
"""
import contextlib
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "bindings" / "python"

VOCAB, PROMPTS, BATCH, PROMPT_LEN, NEW_TOKENS = 1000, 8, 4, 16, 6
TOPIC = "llama"


def build_model(torch, toy, seed):
    torch.manual_seed(seed)
    if toy:
        return ToyLM(torch)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                         num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=128,
                         tie_word_embeddings=False, attn_implementation="eager")
    return LlamaForCausalLM(config)


def ToyLM(torch):
    """An embedding, two linear layers and a head, answering model(input_ids=...).logits like the Llama model."""
    class Output:
        def __init__(self, logits):
            self.logits = logits

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, 64)
            self.mix = torch.nn.Linear(64, 64)
            self.lm_head = torch.nn.Linear(64, VOCAB)

        def forward(self, input_ids, use_cache=False):
            h = self.embed(input_ids).cumsum(dim=1)  # each position sees the ones before it
            return Output(self.lm_head(torch.tanh(self.mix(h))))

    return Toy()


@contextlib.contextmanager
def swapped(model, weights):
    """The model's parameters and buffers replaced by `weights` ({name: tensor}) inside the block, put back at
    its end: what torch.func.functional_call does, without its reference cycle (torch 1.13's kept the
    from_dlpack tensors, and so the snapshot's lease, until the next garbage collection: an R = 2 trainer
    soon found no replica to write and timed out)."""
    saved = []
    try:
        for name, tensor in weights.items():
            owner, _, leaf = name.rpartition(".")
            module = model.get_submodule(owner)
            table = module._parameters if leaf in module._parameters else module._buffers
            saved.append((table, leaf, table[leaf]))
            table[leaf] = tensor
        yield
    finally:
        for table, leaf, original in reversed(saved):
            table[leaf] = original


def generate(torch, model, weights, prompts):
    """Greedy decoding without a cache; weights None: the model's own parameters, else {name: tensor} swapped
    in. Returns (new tokens [B, NEW_TOKENS], first-token logits [B, VOCAB]), both on the CPU. Everything the
    server records and everything the check recomputes goes through here."""
    ids, first = prompts, None
    with swapped(model, weights or {}):
        for _ in range(NEW_TOKENS):
            last = model(input_ids=ids, use_cache=False).logits[:, -1, :]
            if first is None:
                first = last.to("cpu", copy=True)
            ids = torch.cat([ids, last.argmax(dim=-1, keepdim=True)], dim=1)
    return ids[:, prompts.shape[1]:].cpu(), first


def lines_of(stream):
    """A queue of a child's stdout lines, read by a thread (so that waiting for one can time out)."""
    lines = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def commands():
    """A queue of the lines this process reads on stdin (the parent's commands)."""
    return lines_of(sys.stdin)


# The trainer --------------------------------------------------------------------------------------------------

def trainer(socket, folder, device, toy, max_versions):
    import torch
    import weightbus
    from weightbus.torch import ModulePublisher, module_tensors

    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    model = build_model(torch, toy, seed=0).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = torch.Generator().manual_seed(1)
    folder = Path(folder)
    with weightbus.connect(socket, client_name="transformers-trainer", timeout=30) as client:
        publisher = ModulePublisher(client.create_topic(TOPIC, replicas=2), model)

        def publish(step):
            version = publisher.publish(metadata=f"step={step}".encode(), timeout=30)
            # Read on the stream the publish copied on, before the next optimizer step: the version's bytes.
            state = {name: t.to("cpu", copy=True) for name, t in module_tensors(model).items()}
            torch.save(state, folder / f"{version}.pt")
            return version

        publish(0)
        print("ready", flush=True)
        orders = commands()
        if orders.get(timeout=300) != "go":
            raise RuntimeError("the parent did not say go")
        step, loss = 0, float("nan")
        while step + 1 < max_versions:
            try:
                if orders.get_nowait() in ("stop", None):
                    break
            except queue.Empty:
                pass
            step += 1
            batch = torch.randint(0, VOCAB, (8, 32), generator=batches).to(device)
            logits = model(input_ids=batch, use_cache=False).logits
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            publish(step)
            loss = float(loss)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        print(f"published {step + 1} versions, last loss {loss:.3f}", flush=True)


# The server ---------------------------------------------------------------------------------------------------

def deterministic(torch):
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.use_deterministic_algorithms(True, warn_only=True)


def server(socket, folder, device, toy, mode, steps):
    import torch
    import weightbus
    from weightbus.torch import load_module

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(device)
    deterministic(torch)
    model = build_model(torch, toy, seed=123).to(device).eval().requires_grad_(False)
    prompts = torch.randint(0, VOCAB, (PROMPTS, PROMPT_LEN), generator=torch.Generator().manual_seed(2))

    def batch_of(step):
        return [(step * BATCH + j) % PROMPTS for j in range(BATCH)]

    folder = Path(folder)
    records = []  # (version, prompt rows, tokens, first-token logits)
    with weightbus.connect(socket, client_name="transformers-server", timeout=30) as client:
        topic = client.open_topic(TOPIC)
        topic.wait(after=0, timeout=60)
        names = topic.names()
        print("ready", flush=True)
        orders = commands()
        if orders.get(timeout=300) != "go":
            raise RuntimeError("the parent did not say go")
        started = time.perf_counter()
        with torch.no_grad():
            for step in range(steps):
                rows = batch_of(step)
                batch = prompts[rows].to(device)
                if mode == "load":
                    version = load_module(topic, model, timeout=30)
                    tokens, first = generate(torch, model, None, batch)
                else:
                    with topic.snapshot(timeout=30) as s:
                        version = s.version
                        weights = {name: torch.from_dlpack(s[name]) for name in names}
                        tokens, first = generate(torch, model, weights, batch)
                        del weights  # generate's last read was a copy to the host: nothing reads them any more
                records.append((version, rows, tokens, first))
                time.sleep(0.01)  # a request every ~10 ms beside the generation
        served = time.perf_counter() - started
        print(f"served {steps} requests in {served:.1f} s", flush=True)
        if orders.get(timeout=300) != "verify":
            raise RuntimeError("the parent did not say verify")
        print(verify(torch, model, mode, device, prompts, folder, records), flush=True)


def verify(torch, model, mode, device, prompts, folder, records):
    """The RESULT line: every record regenerated from its version's saved weights, and the rest of the checks."""
    states = {}

    def regenerate(version, rows):
        if version not in states:
            states[version] = torch.load(folder / f"{version}.pt")
        state = states[version]
        batch = prompts[rows].to(device)
        if mode == "load":
            model.load_state_dict(state, strict=True)
            with torch.no_grad():
                return generate(torch, model, None, batch)
        weights = {name: t.to(device) for name, t in state.items()}
        with torch.no_grad():
            return generate(torch, model, weights, batch)

    versions = [r[0] for r in records]
    mismatched = []
    for version, rows, tokens, first in records:
        again_tokens, again_first = regenerate(version, rows)
        if not torch.equal(again_first, first) or not torch.equal(again_tokens, tokens):
            diff = (again_first - first).abs().max().item()
            mismatched.append(f"v{version} (max |logit diff| {diff:.3g}, tokens equal: "
                              f"{torch.equal(again_tokens, tokens)})")
    blind = []  # a served version whose logits a neighbouring version's weights reproduce: the check is blind
    for version in sorted(set(versions)):
        other = version + 1 if (folder / f"{version + 1}.pt").exists() else version - 1
        _, rows, _, first = next(r for r in records if r[0] == version)
        if other >= 1 and torch.equal(regenerate(other, rows)[1], first):
            blind.append(f"v{version}~v{other}")
        states.pop(other, None)
    published = len(list(folder.glob("*.pt")))
    ok = (not mismatched and not blind and len(set(versions)) >= 3 and versions == sorted(versions))
    details = (f"{len(records)} requests served from {len(set(versions))} distinct versions "
               f"({versions[0]}..{versions[-1]} of {published} published), non-decreasing: "
               f"{versions == sorted(versions)}; first-token logits and tokens recomputed from each version's "
               f"saved state_dict: {len(records) - len(mismatched)}/{len(records)} exactly equal")
    if mismatched:
        details += f"; MISMATCHED: {', '.join(mismatched[:5])}"
    if blind:
        details += f"; versions the check cannot tell apart: {', '.join(blind[:5])}"
    attention = getattr(getattr(model, "config", None), "_attn_implementation", "toy")
    details += f"; attention {attention}, torch {torch.__version__}"
    return f"RESULT transformers-{mode} {'PASS' if ok else 'FAIL'} {details}"


# The parent ---------------------------------------------------------------------------------------------------

class Child:
    def __init__(self, args, env):
        self.process = subprocess.Popen([sys.executable, __file__, "--role", *args], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lines = lines_of(self.process.stdout)

    def expect(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"no '{prefix}' within {timeout} s") from None
            if line is None:
                raise RuntimeError(f"exited (status {self.process.wait()}) before '{prefix}'")
            if line.startswith(prefix):
                return line

    def say(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def scenario(mode, socket, opts, env):
    with tempfile.TemporaryDirectory(prefix="wbhf-") as folder:
        trainer_args = ["trainer", socket, folder, opts["device"], opts["toy"], str(opts["max_versions"])]
        server_args = ["server", socket, folder, opts["device"], opts["toy"], mode, str(opts["steps"])]
        children = []
        try:
            trainer_child = Child(trainer_args, env)
            children.append(trainer_child)
            trainer_child.expect("ready", 180)
            server_child = Child(server_args, env)
            children.append(server_child)
            server_child.expect("ready", 180)
            trainer_child.say("go")
            server_child.say("go")
            served = server_child.expect("served", 300)
            trainer_child.say("stop")
            trained = trainer_child.expect("published", 120)
            if trainer_child.process.wait(timeout=60) != 0:
                raise RuntimeError("the trainer failed")
            server_child.say("verify")
            result = server_child.expect("RESULT", 300)
            if server_child.process.wait(timeout=60) != 0:
                raise RuntimeError(f"the server failed after: {result}")
            print(f"{mode}: {trained}; {served}", flush=True)
            return result
        except Exception as e:
            return f"RESULT transformers-{mode} FAIL {type(e).__name__}: {e}"
        finally:
            for child in children:
                child.stop()


def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        role, socket, folder, device, toy = args[1:6]
        if role == "trainer":
            trainer(socket, folder, device, toy == "toy", int(args[6]))
        else:
            server(socket, folder, device, toy == "toy", args[6], int(args[7]))
        return
    build = Path(args[0] if args and not args[0].startswith("--") else "build-gpu").resolve()

    def option(name, default):
        return args[args.index(name) + 1] if name in args else default

    mode = option("--mode", "both")
    opts = {"device": option("--device", "cuda:0"), "toy": "toy" if "--toy" in args else "llama",
            "steps": int(option("--steps", "40")), "max_versions": int(option("--max-versions", "200"))}
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import use_build

    use_build(build)
    try:
        import torch
    except ImportError:
        print("SKIP: no torch")
        return
    if opts["device"].startswith("cuda") and not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return
    if opts["toy"] != "toy":
        try:
            import transformers
        except ImportError:
            print("SKIP: no transformers (--toy runs the harness with a stand-in model)")
            return
        print(f"transformers {transformers.__version__}, torch {torch.__version__}", flush=True)
    from broker import Broker

    env = dict(os.environ, CUBLAS_WORKSPACE_CONFIG=":4096:8")
    ok = True
    for m in (["load", "snapshot"] if mode == "both" else [mode]):
        with tempfile.TemporaryDirectory(prefix="wbhf-broker-") as tmp:
            broker = Broker(Path(tmp))
            try:
                result = scenario(m, broker.socket, opts, env)
            finally:
                broker.stop()
        print(result, flush=True)
        ok &= " PASS " in result
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
