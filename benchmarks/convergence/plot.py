#!/usr/bin/env python3
"""Plots eval loss against step for an uncompressed and a compressed dtfm-train report, and writes
the numbers between the convergence markers of docs/benchmarks.md."""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BEGIN, END = "<!-- report:convergence:begin -->", "<!-- report:convergence:end -->"


def curve(report, key):
    points = [(h["step"], h[key]) for h in report["history"] if h.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("uncompressed")
    ap.add_argument("compressed")
    ap.add_argument("--image", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--command", required=True)
    a = ap.parse_args()
    plain = json.load(open(a.uncompressed))
    dtfm = json.load(open(a.compressed))

    fig, ax = plt.subplots(figsize=(7, 4))
    for report, label in ((plain, "uncompressed (fp32)"), (dtfm, "dtfm: AC-SGD 4/8-bit + cocktail")):
        x, y = curve(report, "eval_loss")
        ax.plot(x, y, marker="o", markersize=3, label=label + " eval")
        x, y = curve(report, "loss")
        ax.plot(x, y, alpha=0.35, label=label + " train")
    floor = plain.get("entropy_floor")
    if floor is not None:
        ax.axhline(floor, color="gray", linestyle="--", label="entropy floor")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("tiny GPT, 2 stages x 2 replicas")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.image, dpi=120)

    gap = (dtfm["final_eval_loss"] - plain["final_eval_loss"]) / plain["final_eval_loss"]
    lines = [
        BEGIN,
        f"Command: `{a.command}` (both runs: {plain['steps']} steps, the same data and seed).",
        "",
        "| run | final eval loss | final train loss | bytes sent | compression | tokens/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for report, label in ((plain, "uncompressed"), (dtfm, "dtfm compression")):
        lines.append(
            f"| {label} | {report['final_eval_loss']:.4f} | {report['final_loss']:.4f} | "
            f"{report['bytes_sent'] / 1e6:.1f} MB | {report['compression_ratio']:.1f}x | {report['tokens_per_s']:.0f} |"
        )
    lines += [
        "",
        f"Entropy floor of the corpus: {floor:.4f} nats/token. Compressed ÷ uncompressed final eval loss: "
        f"{1 + gap:.4f} ({100 * gap:+.2f} %; the target is within 2 %).",
        "",
        f"![eval loss against step]({a.image.split('docs/', 1)[-1]})",
        END,
    ]
    text = open(a.markdown).read()
    block = "\n".join(lines)
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Convergence with compression (issue 6)\n\n" + block + "\n"
    open(a.markdown, "w").write(text)
    print(f"final eval loss: uncompressed {plain['final_eval_loss']:.4f}, dtfm {dtfm['final_eval_loss']:.4f} ({100 * gap:+.2f} %)")


if __name__ == "__main__":
    main()
