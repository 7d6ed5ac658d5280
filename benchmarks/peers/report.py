#!/usr/bin/python3
"""Turns the peer comparison's reports (run.sh: torch-<variant>-<P>.json from gpt.py,
dtfm-cocktail-<P>.json from dtfm-train, each with a .wire file: bytes through the namespace's
100 Mbit/s loopback during the run) into a table, a chart, and the "Peer comparison (PyTorch DDP)"
section of docs/benchmarks.md: only what lies between its report:peers markers is replaced (the
heading, markers and all are appended when missing)."""
import argparse
import datetime
import glob
import json
import os
import re
import statistics

HEADING = "## Peer comparison (PyTorch DDP)"
BEGIN, END = "<!-- report:peers:begin -->", "<!-- report:peers:end -->"
LABELS = {"none": "PyTorch DDP, no hook", "fp16": "PyTorch DDP, fp16_compress_hook",
          "powersgd": "PyTorch DDP, PowerSGD rank 4", "cocktail": "dtfm-train, cocktail (MPI TCP)"}
ORDER = ["none", "fp16", "powersgd", "cocktail"]
LOSS_TOLERANCE = 0.01  # "equal" eval loss: within 1 %


def step_times(r):
    """Seconds per step; dtfm-train's history stamps each step's end, gpt.py stores them."""
    if "step_times" in r:
        return r["step_times"]
    ends = [h["seconds"] for h in r["history"]]
    return [ends[0]] + [b - a for a, b in zip(ends, ends[1:])]


def load(folder):
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        m = re.match(r"(torch|dtfm)-(\w+)-(\d+)\.json$", os.path.basename(path))
        if not m:
            continue
        r = json.load(open(path))
        times = step_times(r)
        wire = path[:-5] + ".wire"
        runs.append({
            "framework": m.group(1), "variant": m.group(2), "processes": int(m.group(3)),
            "steps": r["steps"], "median_step_s": statistics.median(times[1:] if len(times) > 1 else times),
            "final_loss": r["final_loss"], "final_eval_loss": r["final_eval_loss"],
            "entropy_floor": r.get("entropy_floor"),
            "wire_mb": int(open(wire).read()) / 1e6 if os.path.exists(wire) else None,
            "history": [(h["seconds"], h["loss"]) for h in r["history"] if h.get("loss") is not None],
            "micro_batches": r.get("micro_batches", r.get("config", {}).get("micro_batches")),
            "micro_batch": r.get("micro_batch", r.get("config", {}).get("micro_batch")),
        })
    runs.sort(key=lambda x: (x["processes"], ORDER.index(x["variant"])))
    return runs


def verdicts(runs):
    """Per process count: dtfm's median step ÷ the fastest PyTorch variant's, and the losses."""
    out = {}
    for p in sorted({r["processes"] for r in runs}):
        torch_runs = [r for r in runs if r["processes"] == p and r["framework"] == "torch"]
        ours = [r for r in runs if r["processes"] == p and r["framework"] == "dtfm"]
        if not torch_runs or not ours:
            continue
        best = min(torch_runs, key=lambda r: r["median_step_s"])
        d = ours[0]
        ratio = d["median_step_s"] / best["median_step_s"]
        loss_ok = d["final_eval_loss"] <= best["final_eval_loss"] * (1 + LOSS_TOLERANCE)
        out[p] = {"best": best, "dtfm": d, "ratio": ratio, "loss_ok": loss_ok, "met": ratio <= 0.5 and loss_ok}
    return out


def table(runs, v):
    lines = ["| run | processes | median step (s) | final train loss | final eval loss | MB on the wire | dtfm step ÷ this |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        ours = v.get(r["processes"], {}).get("dtfm")
        ratio = f"{ours['median_step_s'] / r['median_step_s']:.2f}" if ours and r["framework"] == "torch" else "—"
        name = LABELS[r["variant"]]
        if v.get(r["processes"], {}).get("best") is r:
            name += " (fastest PyTorch)"
        wire = f"{r['wire_mb']:.1f}" if r["wire_mb"] is not None else "—"
        lines.append(f"| {name} | {r['processes']} | {r['median_step_s']:.2f} | {r['final_loss']:.4f} | "
                     f"{r['final_eval_loss']:.4f} | {wire} | {ratio} |")
    return lines


def chart(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    procs = sorted({r["processes"] for r in runs})
    fig, axes = plt.subplots(1, 1 + len(procs), figsize=(5 + 4.5 * len(procs), 4))
    ax = axes[0]
    width = 0.8 / len(ORDER)
    colors = {"none": "tab:gray", "fp16": "tab:orange", "powersgd": "tab:blue", "cocktail": "tab:green"}
    for i, variant in enumerate(ORDER):
        xs, ys = [], []
        for j, p in enumerate(procs):
            for r in runs:
                if r["processes"] == p and r["variant"] == variant:
                    xs.append(j + (i - (len(ORDER) - 1) / 2) * width)
                    ys.append(r["median_step_s"])
        if ys:
            bars = ax.bar(xs, ys, width, label=LABELS[variant], color=colors[variant])
            ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(procs)), [f"{p} processes" for p in procs])
    ax.set_ylabel("median step time (s)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.4)  # room for the legend above the bars
    ax.set_title("step time, 100 Mbit/s shared loopback")
    ax.legend(fontsize=7, loc="upper left")
    for ax, p in zip(axes[1:], procs):
        for r in runs:
            if r["processes"] == p:
                t, loss = zip(*r["history"])
                ax.plot(t, loss, marker=".", label=LABELS[r["variant"]], color=colors[r["variant"]])
        ax.set_xlabel("wall-clock (s)")
        ax.set_ylabel("train loss (nats/token)")
        ax.set_title(f"train loss, {p} processes")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def compute_alone(folder):
    """The equivalence check's runs (1 process, no communication): median step of each side."""
    found = {}
    for side in ("dtfm", "torch"):
        for where in (folder, os.path.dirname(os.path.abspath(folder))):
            path = os.path.join(where, f"check-{side}.json")
            if os.path.exists(path):
                r = json.load(open(path))
                times = step_times(r)
                found[side] = (statistics.median(times[1:] if len(times) > 1 else times), r)
                break
    return found if len(found) == 2 else None


def section(runs, v, command, image_rel, alone=None):
    r0 = runs[0]
    steps = r0["steps"]
    if any(r["steps"] != steps for r in runs):
        raise SystemExit("report.py: the runs did not all train for the same number of steps")
    floor = next((r["entropy_floor"] for r in runs if r["entropy_floor"]), float("nan"))
    met = v and all(x["met"] for x in v.values())
    lines = [f"Run of {datetime.date.today().isoformat()} on this machine ({os.cpu_count()} cores, shared), "
             f"`{command}`. Issue 8's target: dtfm's step time ≤ 0.5× the fastest PyTorch variant at equal "
             f"(within {LOSS_TOLERANCE:.0%}) or better final eval loss. "
             f"**{'Met' if met else 'Not met'}** in this run.", "",
             f"The tiny GPT (5.59M parameters, vocabulary 32 of the Markov corpus), data-parallel on P "
             f"processes, {steps} steps of {r0['micro_batches']} micro-batches × {r0['micro_batch']} sequences × 64 "
             "tokens per process, AdamW with dtfm-train's warm-up + cosine schedule (peak 3e-3). Both sides start from "
             "dtfm's initial weights and train on the same samples in the same order (`dtfm-peers-export` writes them "
             "from dtfm's code; run.sh first checks that one process of each gives the same losses). Every run is inside "
             "one network namespace whose loopback is limited to 100 Mbit/s (`tc … tbf`): all processes share that one "
             "medium. PyTorch 1.13 (Debian) DDP over gloo communicates once per step (no_sync on the other "
             "micro-batches), one thread per process; PowerSGD starts after 2 plain steps. dtfm-train runs "
             "`--stages 1 --replicas P --compress dtfm --transport mpi` under mpirun with Open MPI's TCP BTL "
             "(cocktail: random-k ∘ top-k ∘ quantize with error feedback, on each step's model change, `local_sgd<1>`), "
             "its own link emulation made free. Median step time excludes the first step; MB on the wire is every "
             "byte through the loopback during the run (PyTorch's includes DDP's initial 22 MB broadcast).", ""]
    lines += table(runs, v)
    lines.append("")
    for p, x in sorted(v.items()):
        b, d = x["best"], x["dtfm"]
        lines.append(f"- {p} processes: dtfm {d['median_step_s']:.2f} s ÷ {LABELS[b['variant']]} {b['median_step_s']:.2f} s "
                     f"= **{x['ratio']:.2f}** (target ≤ 0.5); eval loss dtfm {d['final_eval_loss']:.4f} vs "
                     f"{b['final_eval_loss']:.4f} ({'equal or better' if x['loss_ok'] else 'worse'}).")
    if alone:
        (d, dr), (t, tr) = alone["dtfm"], alone["torch"]
        mb = tr.get("micro_batches", "?")
        lines += ["", f"Compute alone (run.sh's check: 1 process, no communication, {len(tr['history'])} steps of {mb} "
                      f"micro-batches, median without the first step): dtfm-train {d:.2f} s, PyTorch {t:.2f} s per step "
                      f"(dtfm ÷ PyTorch {d / t:.2f}); both use Debian's OpenBLAS with one thread. A step at P processes here "
                      "also shares the 2 cores P ways."]
    lines += ["", f"Entropy floor of the corpus: {floor:.4f} nats/token (uniform: 3.4657).", "",
              f"![step time and loss against time]({image_rel})", ""]
    return "\n".join(lines)


def splice(markdown, text):
    """Replaces what lies between the peers markers; appends the heading and the markers when
    missing. Text between the heading and the markers is written by hand and kept."""
    doc = open(markdown).read() if os.path.exists(markdown) else ""
    block = BEGIN + "\n" + text.rstrip("\n") + "\n" + END
    if BEGIN in doc:
        start = doc.index(BEGIN)
        stop = doc.find(END, start)
        if stop < 0:
            raise SystemExit(f"report.py: found {BEGIN} but no {END} after it in {markdown}; fix it by hand")
        doc = doc[:start] + block + doc[stop + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + HEADING + "\n\n" + block + "\n"
    open(markdown, "w").write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--markdown")
    ap.add_argument("--image")
    ap.add_argument("--command", default="benchmarks/peers/run.sh")
    a = ap.parse_args()
    runs = load(a.results)
    if not runs:
        raise SystemExit(f"report.py: no reports in {a.results}")
    v = verdicts(runs)
    print("\n".join(table(runs, v)))
    for p, x in sorted(v.items()):
        print(f"{p} processes: dtfm ÷ fastest PyTorch ({x['best']['variant']}) = {x['ratio']:.2f}, "
              f"loss {'ok' if x['loss_ok'] else 'worse'}: target {'met' if x['met'] else 'not met'}")
    with open(os.path.join(a.results, "summary.json"), "w") as f:
        json.dump({"runs": [{k: r[k] for k in r if k != "history"} for r in runs],
                   "verdicts": {p: {"fastest_pytorch": x["best"]["variant"], "ratio": x["ratio"], "loss_ok": x["loss_ok"],
                                    "met": x["met"]} for p, x in v.items()}}, f, indent=1)
    if a.image:
        chart(runs, a.image)
    if a.markdown:
        rel = os.path.relpath(a.image, os.path.dirname(os.path.abspath(a.markdown))) if a.image else ""
        splice(a.markdown, section(runs, v, a.command, rel, compute_alone(a.results)))


if __name__ == "__main__":
    main()
