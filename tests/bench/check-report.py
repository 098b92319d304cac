#!/usr/bin/env python3
"""bench/report.py reads the CSV files bench/run.sh wrote, this tree's and older trees' alike, and prints the
ratios the targets are stated in: a case per kind of results folder, the summary lines it must print and the
words it must not (a row that an older CSV cannot give is left out, not printed wrong or failed on).

    check-report.py bench/report.py
"""
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

LATENCY = "gpu_visible_p50_us,publisher_delay_us,event_gpu_visible_p50_us,event_publisher_delay_us"
MODEL = "set,path,iteration,ms\n" + "".join(
    f"many,{path},{i},{ms}\n" for path, ms in (("peers", 100.0), ("flip", 4.0), ("flip-borrow", 0.35), ("copy", 2.0),
                                               ("raw", 2.0), ("raw-contiguous", 1.4), ("load", 1.62))
    for i in (1, 2, 3))

# (what the folder is, its files, lines that must be printed, words that must not)
CASES = [
    ("gpu-latency with the floor: the GPU word's ratio to it",
     {"gpu-latency.csv": LATENCY + ",armed_gpu_visible_p50_us,floor_gpu_visible_p50_us\n"
                                   "25.9,-2.4,286.4,134.1,293.8,26.6\n"},
     ["publish -> GPU-visible p50 25.9 us (target <= 30), the publisher's stream delayed -2.4 us",
      "GPU word / floor = 0.97", "publish -> the armed copies done p50 293.8 us"], []),
    ("an older gpu-latency under this run.sh: the floor's column empty",
     {"gpu-latency.csv": LATENCY + ",armed_gpu_visible_p50_us,floor_gpu_visible_p50_us\n25.9,-2.4,286.4,134.1,293.8,\n"},
     ["publish -> GPU-visible p50 25.9 us", "the armed copies done p50 293.8 us"], ["floor"]),
    ("an older CSV: no armed or floor column",
     {"gpu-latency.csv": LATENCY + "\n25.9,-2.4,286.4,134.1\n"},
     ["publish -> GPU-visible p50 25.9 us"], ["floor", "GPU arms"]),
    ("gpu-latency failed: its CSV is the header alone",
     {"gpu-latency.csv": LATENCY + ",armed_gpu_visible_p50_us,floor_gpu_visible_p50_us\n"},
     [], ["GPU-visible"]),
    ("a full-model update: medians, load_module against one contiguous copy",
     {"model-update.csv": MODEL},
     ["full-model update, many (median ms): peers 100.0, weightbus flip 4.00, copy-into 2.00, raw D2D 2.00",
      "load_module 1.62 ms = 1.157x one contiguous copy of the same bytes (target <= 1.2)",
      "flip-borrow (snapshot_tensors(borrow=True): the same tensors, made once) 0.35 ms (target <= 0.5 ms"],
     ["peers-packed", "flip-each"]),
    ("an empty folder: the heading and the plots' line alone", {}, ["== weightbus benchmarks"], ["Traceback"]),
]


def main():
    report = Path(sys.argv[1])
    plotting = importlib.util.find_spec("matplotlib") is not None
    failed = 0
    for what, files, want, unwanted in CASES:
        with tempfile.TemporaryDirectory() as folder:
            for name, text in files.items():
                (Path(folder) / name).write_text(text)
            run = subprocess.run([sys.executable, str(report), folder], capture_output=True, text=True, timeout=120)
            out = run.stdout
            problems = [f"exit status {run.returncode}: {run.stderr.strip()}"] if run.returncode != 0 else []
            problems += [f"missing: {line!r}" for line in want if line not in out]
            problems += [f"printed {word!r}" for word in unwanted if word in out]
            if plotting and "model-update.csv" in files and not (Path(folder) / "model-update.png").exists():
                problems.append("matplotlib is installed but model-update.png was not drawn")
        print(f"{'ok' if not problems else 'FAIL'}: {what}")
        for problem in problems:
            print(f"    {problem}")
        if problems:
            print("    its output:\n" + "".join(f"      {line}\n" for line in out.splitlines()))
        failed += bool(problems)
    print(f"{len(CASES) - failed} of {len(CASES)} cases passed" + ("" if plotting else " (no matplotlib: no plot drawn)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
