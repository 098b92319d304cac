"""A toy inference server that always generates from one whole version of the trainer's weights.

Each request leases the latest version (a snapshot) and runs the model with that version's tensors, wrapped
zero-copy with torch.from_dlpack: the trainer can publish meanwhile (R = 2 lets it write the next version
into the other replica), and no request ever mixes two versions. See trainer.py.
"""
import argparse
import time

import torch

import weightbus
from trainer import build_model

try:
    from torch.func import functional_call
except ImportError:  # PyTorch < 2.0
    from torch.nn.utils.stateless import functional_call


def generate(model: torch.nn.Module, weights: dict, prompt: int, length: int) -> list:
    tokens = [prompt]
    device = next(iter(weights.values())).device
    with torch.no_grad():
        for _ in range(length):
            logits = functional_call(model, weights, (torch.tensor([tokens[-1]], device=device),))
            tokens.append(int(logits.argmax()))
    return tokens


def open_when_created(client: weightbus.Client, name: str, timeout: float) -> weightbus.Topic:
    """Opens the topic, waiting for the trainer to create it if it has not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.open_topic(name)
        except weightbus.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topic", default="policy")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between requests")
    parser.add_argument("--socket", help="the broker's socket (default: $WEIGHTBUS_SOCKET or the default path)")
    args = parser.parse_args()

    model = build_model().to("meta")  # the structure only: the weights come from weightbus
    with weightbus.connect(args.socket, client_name="server") as client:
        topic = open_when_created(client, args.topic, timeout=30.0)
        topic.wait(after=0, timeout=30.0)  # the trainer's first version
        for request in range(args.requests):
            time.sleep(args.interval)
            with topic.snapshot() as snapshot:  # the latest version, whole
                weights = {name: torch.from_dlpack(snapshot[name]) for name in snapshot.names()}
                tokens = generate(model, weights, prompt=request % 64, length=8)
                if any(w.is_cuda for w in weights.values()):
                    torch.cuda.synchronize()  # the kernels read the snapshot: finish before releasing it
                print(f"server: request {request} from version {snapshot.version} "
                      f"({snapshot.metadata.decode()}): {tokens}", flush=True)
                del weights


if __name__ == "__main__":
    main()
