"""A toy trainer that publishes its model to weightbus after every optimizer step.

    weightbusd --foreground &                       # a broker (or: weightbus demo)
    python3 trainer.py --steps 100 &                # publishes versions 1..100 of topic "policy"
    python3 server.py --requests 20                 # generates, each time from one whole version

The weights live in weightbus-owned replicas (on the GPU when there is one); each publish copies the
parameters on the current CUDA stream and returns without waiting for the GPU. No HTTP, no pickles.
"""
import argparse
import time

import torch

import weightbus
from weightbus.torch import ModulePublisher


def build_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Embedding(64, 32), torch.nn.Linear(32, 64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topic", default="policy")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between steps")
    parser.add_argument("--socket", help="the broker's socket (default: $WEIGHTBUS_SOCKET or the default path)")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with weightbus.connect(args.socket, client_name="trainer") as client:
        publisher = ModulePublisher(client.create_topic(args.topic, replicas=2), model)
        for step in range(1, args.steps + 1):
            tokens = torch.randint(0, 64, (16,), device=device)
            loss = torch.nn.functional.cross_entropy(model(tokens), (tokens + 1) % 64)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            version = publisher.publish(metadata=f"step={step} loss={loss.item():.4f}".encode())
            print(f"trainer: step {step} published as version {version}", flush=True)
            time.sleep(args.interval)


if __name__ == "__main__":
    main()
