#!/usr/bin/env python3
"""Reads the CSV files bench/run.sh wrote and prints the summary table with the ratios the targets are stated
in; draws PNG plots next to them when matplotlib is installed (Debian: python3-matplotlib).

    python3 bench/report.py bench/results
"""
import csv
import statistics
import sys
from pathlib import Path


def rows(path):
    return list(csv.DictReader(open(path))) if path.exists() else []


def notify_table(out, lines):
    data = {r["path"]: r for r in rows(out / "notify.csv")}
    if not data:
        return
    floor, wait = float(data["futex"]["p50_us"]), float(data["wait"]["p50_us"])
    lines.append("notify latency (publish -> wake), us:   p50      p99    p99.9")
    for path, r in data.items():
        lines.append(f"  {path:<14} {float(r['p50_us']):>22.1f} {float(r['p99_us']):>8.1f} {float(r['p999_us']):>8.1f}")
    lines.append(f"  wait p50 / futex floor p50 = {wait / floor:.2f} (target <= 2)")
    http = [r for p, r in data.items() if p.startswith("http")]
    if http:
        lines.append(f"  {http[0]['path']} p50 / wait p50 = {float(http[0]['p50_us']) / wait:.0f}x (target >= 50x)")


def attach_table(out, lines):
    for name, title in (("attach.csv", "attach + resolve, host tensors"), ("attach-gpu.csv", "attach + resolve, CUDA")):
        data = rows(out / name)
        if data:
            lines.append(f"{title}: " + "; ".join(
                ", ".join(f"{k}={v}" for k, v in r.items()) for r in data))


def scale_table(out, lines):
    data = rows(out / "scale.csv")
    if data:
        lines.append("publishes per second: " + "; ".join(
            f"{r['readers']} readers: {float(r['publishes_per_s']):.0f}/s (each reads "
            f"{float(r['reads_per_s_per_reader']):.0f}/s, torn {r['torn']})" for r in data))


def gpu_latency_table(out, lines):
    data = rows(out / "gpu-latency.csv")
    if data:
        r = {k: float(v) for k, v in data[0].items() if v}
        lines.append(f"publish -> GPU-visible p50 {r['gpu_visible_p50_us']:.1f} us (target <= 30), the publisher's "
                     f"stream delayed {r['publisher_delay_us']:.1f} us (target <= 10); with interprocess events "
                     f"{r['event_gpu_visible_p50_us']:.1f} us and {r['event_publisher_delay_us']:.1f} us")
        if r.get("floor_gpu_visible_p50_us"):  # older CSVs lack it
            lines.append(f"  the floor (a bare futex wake after the publisher's stream synchronized, the same read-back): "
                         f"{r['floor_gpu_visible_p50_us']:.1f} us; GPU word / floor = "
                         f"{r['gpu_visible_p50_us'] / r['floor_gpu_visible_p50_us']:.2f}")
        if "armed_gpu_visible_p50_us" in r:  # older CSVs lack it
            lines.append(f"  a server's GPU arms (WEIGHTBUS_GPU_ARMS=on): publish -> the armed copies done p50 "
                         f"{r['armed_gpu_visible_p50_us']:.1f} us")


def model_medians(out):
    data = rows(out / "model-update.csv")
    medians = {}
    for r in data:
        medians.setdefault(r["set"], {}).setdefault(r["path"], []).append(float(r["ms"]))
    return {s: {p: statistics.median(v) for p, v in paths.items()} for s, paths in medians.items()}


def model_table(out, lines):
    for set_name, m in model_medians(out).items():
        packed = f"peers-packed {m['peers-packed']:.1f}, " if "peers-packed" in m else ""  # older CSVs lack it
        lines.append(f"full-model update, {set_name} (median ms): peers {m['peers']:.1f}, {packed}weightbus flip "
                     f"{m['flip']:.2f}, copy-into {m['copy']:.2f}, raw D2D {m['raw']:.2f} (one contiguous "
                     f"copy of the same bytes: {m['raw-contiguous']:.2f})")
        lines.append(f"  copy-into / raw = {m['copy'] / m['raw']:.3f} (target <= 1.1); peers / copy-into = "
                     f"{m['peers'] / m['copy']:.1f}x (target >= 10x); peers / flip = {m['peers'] / m['flip']:.0f}x")
        if "flip-each" in m:  # older CSVs lack it
            lines.append(f"  flip (snapshot_tensors: every tensor as a torch tensor) {m['flip']:.2f} ms; "
                         f"flip-each (a weightbus.Tensor per tensor) {m['flip-each']:.2f} ms")
        if "flip-borrow" in m:  # older CSVs lack it
            target = " (target <= 0.5 ms for 1,000 tensors)" if set_name == "many" else ""
            lines.append(f"  flip-borrow (snapshot_tensors(borrow=True): the same tensors, made once) "
                         f"{m['flip-borrow']:.2f} ms{target}")
        if "load" in m:  # older CSVs lack it
            target = {"qwen8b": " (target <= 1.05)", "many": " (target <= 1.2)"}.get(set_name, "")
            lines.append(f"  load_module {m['load']:.2f} ms = {m['load'] / m['raw-contiguous']:.3f}x one contiguous "
                         f"copy of the same bytes{target}")
        if packed:
            lines.append(f"  peers-packed / copy-into = {m['peers-packed'] / m['copy']:.1f}x; "
                         f"peers-packed / flip = {m['peers-packed'] / m['flip']:.0f}x; peers-packed / peers = "
                         f"{m['peers-packed'] / m['peers']:.2f}")


def reshard_table(out, lines):
    path = out / "reshard.csv"
    if not path.exists():
        return
    medians = {}
    for r in rows(path):
        medians.setdefault(r["set"], {}).setdefault(r["path"], []).append(float(r["ms"]))
    for set_name, paths in medians.items():
        m = {p: statistics.median(v) for p, v in paths.items()}
        lines.append(f"resharding, {set_name} (median ms): plan {m['plan']:.2f}, one contiguous copy of the bytes "
                     f"received {m['floor']:.2f}, peers' gather + slice {m['peers']:.2f}")
        lines.append(f"  plan / contiguous copy = {m['plan'] / m['floor']:.3f} (target <= 1.15); peers / plan = "
                     f"{m['peers'] / m['plan']:.2f}x")
        if "shared" in paths:  # the readers' own contiguous copies at once: one GPU shared by M processes
            shared = min(paths["shared"])
            lines.append(f"  readers' own contiguous copies at once {shared:.2f} = {shared / m['floor']:.3f}x the "
                         f"contiguous copy; plan / that = {m['plan'] / shared:.3f}")


def warm_start_table(out, lines):
    medians = {}
    for r in rows(out / "warm-start.csv"):
        medians.setdefault(r["set"], {}).setdefault(r["path"], []).append(float(r["ms"]))
    for set_name, paths in medians.items():
        m = {p: statistics.median(v) for p, v in paths.items()}
        disk = f"safetensors load_file {m['safetensors']:.0f}, " if "safetensors" in m else ""
        batched = f"snapshot_tensors {m['snapshot-tensors']:.2f}, " if "snapshot-tensors" in m else ""
        lines.append(f"warm start, {set_name} (median ms in a new server process, after its imports and CUDA "
                     f"context): {disk}weightbus zero-copy (from_dlpack each) {m['zero-copy']:.2f}, {batched}"
                     f"copy-into {m['copy-into']:.2f}, one contiguous copy of the same bytes {m['floor']:.2f}")
        if disk:
            ratios = ", ".join(f"safetensors / {p} = {m['safetensors'] / m[p]:.0f}x"
                               for p in ("zero-copy", "snapshot-tensors", "copy-into") if p in m)
            lines.append(f"  {ratios} (target >= 10x each); copy-into / contiguous copy = "
                         f"{m['copy-into'] / m['floor']:.3f}")


def fp8_table(out, lines):
    medians, moved = {}, {}
    for r in rows(out / "fp8-convert.csv"):
        medians.setdefault(r["set"], {}).setdefault(r["path"], []).append(float(r["ms"]))
        moved.setdefault(r["set"], {})[r["path"]] = float(r["bytes"])
    for set_name, paths in medians.items():
        m = {p: statistics.median(v) for p, v in paths.items()}
        if "floor" not in m:
            continue
        rate = moved[set_name]["floor"] / m["floor"]
        frac = {p: moved[set_name][p] / m[p] / rate for p in m}
        names = {"copy-block": "copy-into block", "plan-block": "plan block", "plan-fused-block": "plan fused block",
                 "copy-channel": "copy-into channel", "copy-tensor": "copy-into tensor", "torch-block": "torch"}
        lines.append(f"FP8 conversion, {set_name} (median ms, bandwidth fraction of one contiguous copy): one "
                     f"contiguous copy of the model's bytes {m['floor']:.2f}; " + ", ".join(
                         f"{names[p]} {m[p]:.2f} ({frac[p]:.2f})" for p in names if p in m))
        block = [f"{names[p]} {frac[p]:.3f}" for p in ("copy-block", "plan-block") if p in m]
        torch_ratio = (f"; torch / copy-into block = {m['torch-block'] / m['copy-block']:.1f}x"
                       if "torch-block" in m and "copy-block" in m else "")
        lines.append(f"  block bandwidth fraction: {', '.join(block)} (target >= 0.80){torch_ratio}")


def plots(out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plots: matplotlib is not installed here (python3 bench/report.py DIR where it is)"
    notify = rows(out / "notify.csv")
    if notify:
        fig, ax = plt.subplots(figsize=(7, 4))
        labels = [r["path"] for r in notify]
        for k, (col, name) in enumerate((("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))):
            ax.bar([i + k * 0.27 for i in range(len(labels))], [float(r[col]) for r in notify], 0.27, label=name)
        ax.set_xticks([i + 0.27 for i in range(len(labels))], labels)
        ax.set_yscale("log")
        ax.set_ylabel("publish -> wake (us)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "notify.png", dpi=120)
    attach = rows(out / "attach.csv")
    if attach:
        fig, ax = plt.subplots(figsize=(6, 4))
        n = [int(r["tensors"]) for r in attach]
        ax.loglog(n, [float(r["cold_ms"]) for r in attach], "o-", label="cold (new process)")
        ax.loglog(n, [float(r["warm_ms"]) for r in attach], "o-", label="warm")
        ax.set_xlabel("tensors")
        ax.set_ylabel("attach + resolve every tensor (ms)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "attach.png", dpi=120)
    model = model_medians(out)
    if model:
        fig, axes = plt.subplots(1, len(model), figsize=(5 * len(model), 4), squeeze=False)
        for ax, (set_name, m) in zip(axes[0], model.items()):
            colors = {"peers": "grey", "peers-packed": "darkgrey", "flip": "tab:green", "flip-borrow": "limegreen",
                      "flip-each": "yellowgreen", "copy": "tab:blue", "load": "tab:cyan", "raw": "black",
                      "raw-contiguous": "dimgrey"}
            paths = [p for p in colors if p in m]
            ax.bar(paths, [m[p] for p in paths], color=[colors[p] for p in paths])
            # Right-aligned under their bars: the long names would run into their neighbours.
            plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
            ax.set_yscale("log")
            ax.set_title(set_name)
            ax.set_ylabel("update (ms)")
        fig.tight_layout()
        fig.savefig(out / "model-update.png", dpi=120)
    return f"plots: {', '.join(p.name for p in sorted(out.glob('*.png')))}"


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    lines = []
    notify_table(out, lines)
    gpu_latency_table(out, lines)
    attach_table(out, lines)
    scale_table(out, lines)
    model_table(out, lines)
    reshard_table(out, lines)
    warm_start_table(out, lines)
    fp8_table(out, lines)
    lines.append(plots(out))
    machine = out / "machine.txt"
    print("\n== weightbus benchmarks" + (f" ({machine.read_text().strip()})" if machine.exists() else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
