"""Sharded topics from Python: the split formulas and vLLM's tensor-parallel layouts checked against torch
slicing (no broker), then FSDP ranks publishing and tensor-parallel readers copying their slices (live), and
trainer ranks of a DTensor job (torch >= 2.4: the GPU host's torch; Debian's 1.13 skips it) publishing what
shards_from_dtensors describes."""
import importlib
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import weightbus  # noqa: E402
from weightbus.torch import (UnsupportedError, load_slices, publish_shards, replicated_shard,  # noqa: E402
                             shards_from_dtensors, split_shard, vllm_tp_layout)


# The split formulas ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,ranks", [(10, 4), (8, 4), (3, 4), (1, 3), (0, 2), (4096, 8)])
def test_chunk_split_matches_torch_chunk(size, ranks):
    chunks = torch.arange(size).chunk(ranks) if size else ()
    for rank in range(ranks):
        offset, extent = weightbus.split(size, rank, ranks, "chunk")
        want = chunks[rank].tolist() if rank < len(chunks) else []
        assert list(range(offset, offset + extent)) == want


def test_even_split_refuses_sizes_that_do_not_divide():
    assert weightbus.split(4096, 3, 4) == (3072, 1024)
    with pytest.raises(weightbus.InvalidArgumentError, match="WB_E_SHAPE|divid|10"):
        weightbus.split(10, 0, 4)
    with pytest.raises(weightbus.InvalidArgumentError):
        weightbus.split(10, 4, 4)
    with pytest.raises(ValueError, match="even"):
        weightbus.split(10, 0, 4, "uneven")


def test_vocab_split_pads_to_64_and_splits_evenly():
    # 1000 -> 1024 padded rows, 512 per rank: rank 1 holds real rows [512, 1000) and 24 rows of zeros.
    assert weightbus.split_vocab(1000, 0, 2) == (0, 512, 512)
    assert weightbus.split_vocab(1000, 1, 2) == (512, 488, 512)
    with pytest.raises(weightbus.InvalidArgumentError):
        weightbus.split_vocab(0, 0, 2)


# vLLM's layouts against torch slicing ------------------------------------------------------------------------------

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB = 16, 8, 2, 2, 24, 100
CONFIG = {"hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
          "head_dim": HEAD_DIM, "intermediate_size": INTER, "vocab_size": VOCAB, "tie_word_embeddings": False}
P = "model.layers.0"


def trainer_model():
    """A one-layer Llama-style model under the trainer's (Hugging Face) names."""
    torch.manual_seed(0)
    shapes = {"model.embed_tokens.weight": (VOCAB, HIDDEN), f"{P}.self_attn.q_proj.weight": (HEADS * HEAD_DIM, HIDDEN),
              f"{P}.self_attn.k_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
              f"{P}.self_attn.v_proj.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
              f"{P}.self_attn.q_proj.bias": (HEADS * HEAD_DIM,), f"{P}.self_attn.k_proj.bias": (KV_HEADS * HEAD_DIM,),
              f"{P}.self_attn.v_proj.bias": (KV_HEADS * HEAD_DIM,),
              f"{P}.self_attn.o_proj.weight": (HIDDEN, HEADS * HEAD_DIM), f"{P}.mlp.gate_proj.weight": (INTER, HIDDEN),
              f"{P}.mlp.up_proj.weight": (INTER, HIDDEN), f"{P}.mlp.down_proj.weight": (HIDDEN, INTER),
              f"{P}.input_layernorm.weight": (HIDDEN,), "model.norm.weight": (HIDDEN,), "lm_head.weight": (VOCAB, HIDDEN)}
    return {name: torch.randn(shape) for name, shape in shapes.items()}


def vllm_expected(full, rank, ranks):
    """What vLLM's weight loaders put in rank `rank`'s parameters, written with torch slicing."""
    def rows(t, n, r):
        return t.chunk(n)[r]
    kv_ranks = min(ranks, KV_HEADS)  # ranks >= kv heads: KV head rank // (ranks // kv heads), replicated
    kv_rank = rank if ranks <= KV_HEADS else rank // (ranks // KV_HEADS)
    attn = f"{P}.self_attn"
    qkv = {s: torch.cat([rows(full[f"{attn}.q_proj.{s}"], ranks, rank), rows(full[f"{attn}.k_proj.{s}"], kv_ranks, kv_rank),
                         rows(full[f"{attn}.v_proj.{s}"], kv_ranks, kv_rank)]) for s in ("weight", "bias")}
    padded = (VOCAB + 63) // 64 * 64
    per = padded // ranks
    embed = torch.zeros(per, HIDDEN)
    real = full["model.embed_tokens.weight"][rank * per:min((rank + 1) * per, VOCAB)]
    embed[:len(real)] = real
    head = torch.zeros(per, HIDDEN)
    head[:len(real)] = full["lm_head.weight"][rank * per:min((rank + 1) * per, VOCAB)]
    return {"model.embed_tokens.weight": embed, f"{attn}.qkv_proj.weight": qkv["weight"],
            f"{attn}.qkv_proj.bias": qkv["bias"],
            f"{attn}.o_proj.weight": full[f"{attn}.o_proj.weight"].chunk(ranks, dim=1)[rank],
            f"{P}.mlp.gate_up_proj.weight": torch.cat([rows(full[f"{P}.mlp.gate_proj.weight"], ranks, rank),
                                                       rows(full[f"{P}.mlp.up_proj.weight"], ranks, rank)]),
            f"{P}.mlp.down_proj.weight": full[f"{P}.mlp.down_proj.weight"].chunk(ranks, dim=1)[rank],
            f"{P}.input_layernorm.weight": full[f"{P}.input_layernorm.weight"],
            "model.norm.weight": full["model.norm.weight"], "lm_head.weight": head}


def apply_with_slicing(dest, full):
    """A destination's parts cut from the full tensors with torch slicing, padded, concatenated."""
    pieces = []
    for part in dest["parts"]:
        box = tuple(slice(o, o + e) for o, e in zip(part["offset"], part["extent"]))
        piece = full[part["name"]][box]
        if part.get("pad"):
            pad_shape = list(piece.shape)
            pad_shape[dest["concat_dim"]] = part["pad"]
            piece = torch.cat([piece, torch.zeros(pad_shape)], dim=dest["concat_dim"])
        pieces.append(piece)
    return torch.cat(pieces, dim=dest["concat_dim"])


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_vllm_tp_layout_cuts_what_vllm_loads(ranks):
    full = trainer_model()
    for rank in range(ranks):
        want = vllm_expected(full, rank, ranks)
        params = {name: torch.empty_like(t) for name, t in want.items()}
        dests = vllm_tp_layout(CONFIG, rank, ranks, params)
        assert len(dests) == len(params)
        for name, dest in zip(params, dests):
            assert dest["dst"] is params[name]
            assert torch.equal(apply_with_slicing(dest, full), want[name]), (name, rank, ranks)


def test_vllm_tp_layout_refuses_heads_that_do_not_divide():
    params = {f"{P}.self_attn.qkv_proj.weight": torch.empty(1, HIDDEN)}
    with pytest.raises(weightbus.InvalidArgumentError):
        vllm_tp_layout(CONFIG, 0, 3, params)


def test_split_shard_describes_fsdp_and_megatron_parts():
    full = torch.arange(30.0).reshape(10, 3)
    shard = split_shard("w", full.chunk(4)[3], (10, 3), 3, 4)
    assert (shard["offset"], shard["extent"]) == ((9, 0), (1, 3))
    shard = split_shard("w", full.chunk(2, dim=1)[1][:, :1], (10, 2), 1, 2, dim=1, mode="even")
    assert (shard["offset"], shard["extent"]) == ((0, 1), (10, 1))
    with pytest.raises(ValueError, match="rank 0 of 4"):
        split_shard("w", full, (10, 3), 0, 4)


def test_shards_from_dtensors_needs_dtensor():
    try:
        importlib.import_module("torch.distributed.tensor")  # torch >= 2.4
    except ImportError:
        with pytest.raises(UnsupportedError, match="DTensor"):
            shards_from_dtensors({"w": torch.zeros(2)})
    else:
        assert shards_from_dtensors({"w": torch.zeros(2)})[0]["replicated"]


# Live: FSDP ranks publish, tensor-parallel readers copy -----------------------------------------------------------

def fsdp_shards(full, rank, ranks):
    """FSDP's dim-0 chunks of every tensor, norms replicated."""
    return [replicated_shard(name, t) if t.dim() == 1 else
            split_shard(name, t.chunk(ranks)[rank] if rank < len(t.chunk(ranks)) else t[:0], t.shape, rank, ranks)
            for name, t in full.items()]


def test_fsdp_ranks_publish_and_tp_ranks_read_their_slices(broker):
    full = trainer_model()
    with broker.connect("rank0") as c0, broker.connect("rank1") as c1, broker.connect("server") as server:
        ranks = [c0.create_rank("llama", 0, 2), c1.create_rank("llama", 1, 2)]
        shards = [fsdp_shards(full, r, 2) for r in range(2)]
        for topic, mine in zip(ranks, shards):
            topic.alloc_shards(mine)
        for topic in ranks:
            topic.seal_rank(timeout=5)
        reader = server.open_topic("llama")
        info = reader.info()
        assert (info.ranks, info.layout_complete, info.tensor_count) == (2, True, len(full))
        assert sorted(reader.names()) == sorted(full)

        assert publish_shards(ranks[0], shards[0]) == 1
        assert reader.latest == 0  # rank 1 has not published version 1 yet
        assert ranks[0].rank_info(0).published == 1
        assert publish_shards(ranks[1], shards[1]) == 1
        assert reader.wait(after=0, timeout=5) == 1
        assert reader.shard_box("model.embed_tokens.weight", 1) == {
            "name": "model.embed_tokens.weight", "dtype": "f32", "logical_shape": (VOCAB, HIDDEN),
            "offset": (50, 0), "extent": (50, HIDDEN), "replicated": False}
        assert reader.shard_box(f"{P}.input_layernorm.weight", 0)["replicated"]
        with pytest.raises(weightbus.NotFoundError):
            reader.shard_box("model.embed_tokens.weight", 1, 1)
        rank1 = reader.rank_info(1)
        assert (rank1.rank, rank1.sealed, rank1.published, rank1.writing) == (1, True, 1, 0)
        assert len(reader.ranks()) == 2

        with reader.snapshot() as snapshot:
            shard = snapshot.shard("model.embed_tokens.weight", 1)
            assert shard.shape == (50, HIDDEN) and shard.shard == (1, 0)
            assert torch.equal(torch.from_dlpack(shard), full["model.embed_tokens.weight"][50:])
            with pytest.raises(weightbus.StateError):
                snapshot.tensor("model.embed_tokens.weight")
            del shard  # it holds the snapshot's lease
        for tp_rank in range(2):
            want = vllm_expected(full, tp_rank, 2)
            params = {name: torch.empty_like(t) for name, t in want.items()}
            with reader.slice_plan(vllm_tp_layout(CONFIG, tp_rank, 2, params)) as plan:
                real = min(64, VOCAB - 64 * tp_rank)  # 128 padded rows, 64 per rank
                assert plan.info.dests == len(params) and plan.info.pad_bytes == (64 - real) * HIDDEN * 4 * 2
                assert load_slices(reader, plan) == 1
            for name in params:
                assert torch.equal(params[name], want[name]), (name, tp_rank)


def test_layout_errors_name_the_tensor(broker):
    with broker.connect("rank0") as c0, broker.connect("rank1") as c1:
        rank0, rank1 = c0.create_rank("m", 0, 2), c1.create_rank("m", 1, 2)
        rank0.alloc_shards([{"name": "w", "dtype": "f32", "logical_shape": (8, 4), "offset": (0, 0),
                             "extent": (6, 4)}])
        with pytest.raises(weightbus.LayoutError, match="'w'"):
            rank1.alloc_shards([{"name": "w", "dtype": "f32", "logical_shape": (8, 4), "offset": (4, 0),
                                 "extent": (4, 4)}])
        with pytest.raises(weightbus.BusyError):
            c1.create_rank("m", 0, 2)
        with pytest.raises(weightbus.InvalidArgumentError):
            c1.create_rank("m", 1, 3)
        rank1.alloc_shards([{"name": "w", "dtype": "f32", "logical_shape": (8, 4), "offset": (6, 0),
                             "extent": (1, 4)}])
        rank0.seal_rank(timeout=5)
        with pytest.raises(weightbus.LayoutError, match="'w'"):
            rank1.seal_rank(timeout=5)  # row 7 is nobody's


# DTensor: four trainer processes of a 2 x 2 device mesh (gloo, CPU) ---------------------------------------------

def has_dtensor():
    try:
        importlib.import_module("torch.distributed.tensor")
        return True
    except ImportError:
        return False


def dtensor_model():
    torch.manual_seed(1)
    return {"blocks": torch.randn(10, 7), "rows": torch.randn(9, 4), "cols": torch.randn(3, 9),
            "few_rows": torch.randn(3, 5), "everywhere": torch.randn(6), "plain": torch.randn(2, 2)}


def dtensor_rank(socket, store, rank, ranks):
    """A trainer rank: the model distributed over a 2 x (ranks / 2) mesh, uneven in every sharded dimension
    (few_rows leaves a rank an empty shard), described by shards_from_dtensors, checked against the whole
    tensors, published as rank `rank`; then it waits for a line on stdin before it exits."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=ranks)
    mesh = init_device_mesh("cpu", (2, ranks // 2))
    placements = {"blocks": [Shard(0), Shard(1)], "rows": [Shard(0), Replicate()], "cols": [Shard(1), Shard(1)],
                  "few_rows": [Shard(0), Shard(0)], "everywhere": [Replicate(), Replicate()]}
    full = dtensor_model()
    state = {n: distribute_tensor(t, mesh, placements[n]) if n in placements else t for n, t in full.items()}
    shards = shards_from_dtensors(state)
    for s in shards:
        box = tuple(slice(o, o + e) for o, e in zip(s.get("offset", [0] * s["tensor"].dim()), s["tensor"].shape))
        assert torch.equal(full[s["name"]][box], s["tensor"]), s["name"]
        want_replicated = s["name"] in ("rows", "everywhere", "plain")
        assert s["replicated"] == want_replicated, (s["name"], s["replicated"])
    with weightbus.connect(socket, client_name=f"rank{rank}", timeout=10) as client:
        topic = client.create_rank("dtensor", rank, ranks)
        topic.alloc_shards(shards)
        topic.seal_rank(timeout=30)
        assert publish_shards(topic, shards, timeout=30) == 1
        print("published", flush=True)
        sys.stdin.readline()
    dist.destroy_process_group()


@pytest.mark.skipif(not has_dtensor(), reason=f"torch {torch.__version__} has no DTensor (torch.distributed.tensor, "
                    "torch >= 2.4)")
def test_dtensor_ranks_publish_a_model_a_reader_gets_whole(broker, tmp_path):
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo")  # loopback only
    ranks = [subprocess.Popen([sys.executable, __file__, "dtensor-rank", broker.socket, str(tmp_path / "store"),
                               str(r), "4"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for r in range(4)]
    try:
        for p in ranks:
            assert p.stdout.readline().strip() == "published"
        full = dtensor_model()
        with broker.connect("reader") as client:
            reader = client.open_topic("dtensor")
            assert reader.info().ranks == 4
            buffers = {n: torch.empty_like(t) for n, t in full.items()}
            dests = [{"dst": b, "parts": [{"name": n, "extent": list(b.shape)}]} for n, b in buffers.items()]
            assert load_slices(reader, dests) == 1
            for name, t in full.items():
                assert torch.equal(buffers[name], t), name
    finally:
        for p in ranks:
            p.stdin.close()
        for p in ranks:
            assert p.wait(timeout=60) == 0


if __name__ == "__main__" and sys.argv[1:2] == ["dtensor-rank"]:
    dtensor_rank(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
