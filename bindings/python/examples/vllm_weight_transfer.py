"""weightbus as vLLM's weight-transfer backend, both sides in one process without vLLM.

In production vLLM runs the worker's side: start it with the backend chosen by configuration
(`vllm serve MODEL --weight-transfer-config '{"backend": "weightbus"}'`; the package's plugin entry point
registers it), POST /init_weight_transfer_engine {"init_info": {"topic": "policy"}} once, and the trainer calls

    WeightbusWeightTransferEngine.trainer_send_weights(model.named_parameters(),
                                                       {"send_mode": "http", "url": VLLM_URL, "topic": "policy"})

which publishes the next version and POSTs {"update_info": {"topic": "policy", "version": N}} to /update_weights:
no pickle, no handle. Here a loopback HTTP server stands in for vLLM's routes and drives the engine as a vLLM
worker does (start_weight_update, update_weights, finish_weight_update). Run it against a broker at
$WEIGHTBUS_SOCKET.
"""
from __future__ import annotations

import http.server
import json
import threading
from types import SimpleNamespace

import torch

from weightbus.serving import close_publishers, post_json
from weightbus.vllm import WeightbusWeightTransferEngine


def serve_vllm_routes(engine: WeightbusWeightTransferEngine) -> http.server.HTTPServer:
    """The two routes of vLLM's server this example needs, calling the engine as vLLM's worker does."""

    class Routes(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/init_weight_transfer_engine":
                engine.init_transfer_engine(engine.parse_init_info(body["init_info"]))
            elif self.path == "/update_weights":
                engine.start_weight_update()
                engine.update_weights(body["update_info"])
                engine.finish_weight_update()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Routes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    torch.manual_seed(0)
    trainer_model = torch.nn.Linear(4, 3)
    worker_model = torch.nn.Linear(4, 3)
    # What vLLM gives a worker's engine: its configs, its device and its model.
    vllm_config = SimpleNamespace(parallel_config=SimpleNamespace(rank=0, tensor_parallel_size=1),
                                  model_config=SimpleNamespace(hf_config=None))
    engine = WeightbusWeightTransferEngine(SimpleNamespace(backend="weightbus"), vllm_config,
                                           torch.device("cpu"), worker_model)
    worker_model.load_weights = lambda weights: worker_model.load_state_dict(dict(weights))  # vLLM models have it
    server = serve_vllm_routes(engine)
    url = f"http://127.0.0.1:{server.server_port}"
    send_args = {"send_mode": "http", "url": url, "topic": "policy"}
    try:
        for step in range(3):
            with torch.no_grad():
                trainer_model.weight.add_(1.0)
            if step == 0:  # the worker opens the topic once it exists: publish, init, then tell it
                version = WeightbusWeightTransferEngine.trainer_send_weights(
                    trainer_model.named_parameters(), dict(send_args, send_mode=None)).version
                post_json(url + "/init_weight_transfer_engine", {"init_info": {"topic": "policy"}}, 30.0)
                post_json(url + "/update_weights", {"update_info": {"topic": "policy", "version": version}}, 30.0)
            else:
                version = WeightbusWeightTransferEngine.trainer_send_weights(trainer_model.named_parameters(),
                                                                             send_args).version
            same = torch.equal(worker_model.weight, trainer_model.weight)
            print(f"version {version}: worker weights equal the trainer's: {same}")
            assert same and engine.last_version == version
    finally:
        server.shutdown()
        engine.shutdown()
        close_publishers()


if __name__ == "__main__":
    main()
