#!/usr/bin/python3
"""The peer of dtfm-train: the same tiny GPT, data and optimizer in PyTorch 1.13, trained with
DistributedDataParallel over gloo on N processes, with (a) no communication hook, (b)
fp16_compress_hook, or (c) PowerSGD of rank 4.

The model mirrors dtfm::nn::gpt_stage (GPT-2, pre-LN blocks, causal multi-head attention, GELU in
its tanh form, final LayerNorm, untied head without bias); its initial parameters, the Markov
corpus's samples and the sharding order are read from files dtfm-peers-export wrote from dtfm's
own code, so both sides start from the same weights and see the same tokens in the same order.
Optimizer: AdamW (β = 0.9, 0.999, ε = 1e-8, weight decay 0.01 on every parameter) with dtfm-train's
warm-up + cosine learning rate; a step averages M micro-batches (DDP communicates once per step,
no_sync on the others), as dtfm's trainer does.

    gpt.py --data DIR --procs N --variant none|fp16|powersgd --steps S --out FILE.json
"""
import argparse
import json
import math
import os
import statistics
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd
from torch.nn.parallel import DistributedDataParallel as DDP

HELD_OUT_MICROBATCHES = 2  # per replica, as dtfm's trainer_options::eval_microbatches in dtfm-train


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(c, eps=1e-5)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.ln2 = nn.LayerNorm(c, eps=1e-5)
        self.fc = nn.Linear(c, 4 * c)
        self.out = nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        hd = c // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        p = s.masked_fill(mask, float("-inf")).softmax(dim=-1)
        a = (p @ v).transpose(1, 2).reshape(b, t, c)
        h = x + self.proj(a)
        return h + self.out(F.gelu(self.fc(self.ln2(h)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, context, c, heads, layers):
        super().__init__()
        self.wte = nn.Embedding(vocab, c)
        self.wpe = nn.Embedding(context, c)
        self.blocks = nn.ModuleList(Block(c, heads) for _ in range(layers))
        self.lnf = nn.LayerNorm(c, eps=1e-5)
        self.head = nn.Linear(c, vocab, bias=False)

    def forward(self, tokens, targets):
        t = tokens.shape[1]
        x = self.wte(tokens) + self.wpe(torch.arange(t, device=tokens.device))
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.lnf(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))

    @torch.no_grad()
    def load_dtfm(self, flat, vocab, context, c, layers):
        """Copies gpt_stage's flat buffer (wte, wpe | blocks | γ_f, β_f, W_head); dtfm stores
        weights [in × out], torch.nn.Linear [out × in]."""
        at = 0

        def take(*shape):
            nonlocal at
            n = int(np.prod(shape))
            v = torch.from_numpy(flat[at:at + n].copy()).view(*shape)
            at += n
            return v

        self.wte.weight.copy_(take(vocab, c))
        self.wpe.weight.copy_(take(context, c))
        for blk in self.blocks:
            blk.ln1.weight.copy_(take(c))
            blk.ln1.bias.copy_(take(c))
            blk.qkv.weight.copy_(take(c, 3 * c).t())
            blk.qkv.bias.copy_(take(3 * c))
            blk.proj.weight.copy_(take(c, c).t())
            blk.proj.bias.copy_(take(c))
            blk.ln2.weight.copy_(take(c))
            blk.ln2.bias.copy_(take(c))
            blk.fc.weight.copy_(take(c, 4 * c).t())
            blk.fc.bias.copy_(take(4 * c))
            blk.out.weight.copy_(take(4 * c, c).t())
            blk.out.bias.copy_(take(c))
        self.lnf.weight.copy_(take(c))
        self.lnf.bias.copy_(take(c))
        self.head.weight.copy_(take(c, vocab).t())
        if at != flat.size:
            raise ValueError(f"init.f32 holds {flat.size} floats, the model {at}")


def learning_rate(step, steps, peak):
    """dtfm::optim::warmup_cosine as dtfm-train sets it: W = min(20, steps), min = peak / 10."""
    warmup, low = min(20, steps), peak / 10
    if step < warmup:
        return peak * (step + 1) / warmup
    if step >= steps:
        return low
    progress = (step - warmup) / (steps - warmup)
    return low + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - low)


class Data:
    def __init__(self, path):
        with open(os.path.join(path, "meta.json")) as f:
            self.meta = json.load(f)
        length = self.meta["context"] + 1
        self.train = np.fromfile(os.path.join(path, "train.i32"), dtype=np.int32).reshape(-1, length)
        self.held_out = np.fromfile(os.path.join(path, "held_out.i32"), dtype=np.int32).reshape(-1, length)
        self.order = np.fromfile(os.path.join(path, "order.u64"), dtype=np.uint64).astype(np.int64)
        self.init = np.fromfile(os.path.join(path, "init.f32"), dtype=np.float32)

    def batch(self, rows):
        x = torch.from_numpy(rows.astype(np.int64))
        return x[:, :-1].contiguous(), x[:, 1:].contiguous()

    def train_batch(self, step, replica, m, replicas, microbatches, micro_batch):
        """data::sharding::ids(step, replica, m): the same samples dtfm's replica trains on."""
        first = step * replicas * microbatches * micro_batch + (replica * microbatches + m) * micro_batch
        ids = self.order[(first + np.arange(micro_batch)) % len(self.order)]
        return self.batch(self.train[ids])

    def held_out_batch(self, replica, m, micro_batch):
        first = (replica * HELD_OUT_MICROBATCHES + m) * micro_batch
        if first + micro_batch > len(self.held_out):
            raise ValueError("not enough held-out samples exported for this many processes")
        return self.batch(self.held_out[first:first + micro_batch])


class SerialHook:
    """powerSGD_hook, one bucket at a time. Each bucket's hook is a chain (all-reduce P, then from
    its callback, on a gloo thread, all-reduce Q); with several buckets the second bucket's first
    all-reduce and the first bucket's second race, gloo pairs collectives by issue order, and the
    ranks then pair different ones (gloo aborts: "op.preamble.length <= op.nbytes", seen here with
    2 processes). Waiting for the previous bucket's chain keeps the order the same everywhere; it
    costs at most one bucket's small PowerSGD exchange of overlap with the backward pass."""

    def __init__(self, state):
        self.state = state
        self.pending = None

    @staticmethod
    def hook(self, bucket):
        if self.pending is not None:
            self.pending.wait()
        self.pending = powersgd.powerSGD_hook(self.state, bucket)
        return self.pending


def worker(rank, args):
    torch.set_num_threads(1)  # one BLAS thread per rank, as dtfm-train
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=args.procs)
    data = Data(args.data)
    m = data.meta
    torch.manual_seed(args.seed)
    model = GPT(m["vocab"], m["context"], m["d_model"], m["heads"], m["layers"])
    model.load_dtfm(data.init, m["vocab"], m["context"], m["d_model"], m["layers"])
    ddp = DDP(model)
    if args.variant == "fp16":
        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif args.variant == "powersgd":
        # start_powerSGD_iter = 2: the earliest PowerSGD allows with error feedback; the first
        # two steps are plain all-reduces.
        state = powersgd.PowerSGDState(process_group=None, matrix_approximation_rank=args.rank,
                                       start_powerSGD_iter=2, random_seed=args.seed)
        ddp.register_comm_hook(SerialHook(state), SerialHook.hook)
    elif args.variant != "none":
        raise ValueError(f"unknown variant {args.variant}")
    opt = torch.optim.AdamW(ddp.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

    M, B = args.micro_batches, args.micro_batch
    losses, ends = [], []
    dist.barrier()
    start = time.perf_counter()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, args.steps, args.lr)
        opt.zero_grad(set_to_none=False)
        total = 0.0
        for k in range(M):
            x, y = data.train_batch(step, rank, k, args.procs, M, B)
            if k < M - 1:
                with ddp.no_sync():
                    loss = ddp(x, y)
                    (loss / M).backward()
            else:
                loss = ddp(x, y)
                (loss / M).backward()  # the all-reduce (through the hook) runs in here
            total += loss.item()
        opt.step()
        losses.append(total / M)
        ends.append(time.perf_counter() - start)
        if rank == 0 and args.progress:
            print(f"  step {step + 1}/{args.steps}  loss {losses[-1]:.4f}  {ends[-1]:.1f} s", flush=True)

    # Held-out loss as dtfm's trainer computes it: each replica's mean over its two held-out
    # micro-batches, averaged over the replicas.
    model.eval()
    with torch.no_grad():
        ev = sum(model(*data.held_out_batch(rank, k, B)).item() for k in range(HELD_OUT_MICROBATCHES)) / HELD_OUT_MICROBATCHES
    seconds = time.perf_counter() - start
    gathered = [None] * args.procs
    dist.all_gather_object(gathered, {"losses": losses, "ends": ends, "eval": ev})
    if rank == 0:
        mean_losses = [statistics.fmean(g["losses"][i] for g in gathered) for i in range(args.steps)]
        step_times = [ends[0]] + [b - a for a, b in zip(ends, ends[1:])]
        report = {
            "framework": "pytorch", "torch": torch.__version__, "variant": args.variant, "processes": args.procs,
            "steps": args.steps, "micro_batches": M, "micro_batch": B, "context": m["context"],
            "powersgd_rank": args.rank if args.variant == "powersgd" else None,
            "median_step_s": statistics.median(step_times[1:] or step_times),  # without the first step "step_times": step_times, "seconds": seconds,
            "final_loss": mean_losses[-1], "final_eval_loss": statistics.fmean(g["eval"] for g in gathered),
            "entropy_floor": m["entropy_floor"], "parameters": sum(p.numel() for p in model.parameters()),
            "history": [{"step": i + 1, "seconds": ends[i], "loss": mean_losses[i]} for i in range(args.steps)],
        }
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
        print(f"pytorch {args.variant} x{args.procs}: median step {report['median_step_s']:.3f} s, "
              f"final loss {report['final_loss']:.4f}, eval loss {report['final_eval_loss']:.4f}", flush=True)
    # Leave without tearing gloo down: with the PowerSGD hook, one process of a finished run spun
    # for minutes in its exit (PyTorch 1.13); everything is written by now.
    dist.barrier()
    os._exit(0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder dtfm-peers-export wrote")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--variant", choices=["none", "fp16", "powersgd"], default="none")
    p.add_argument("--rank", type=int, default=4, help="PowerSGD's matrix approximation rank")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--micro-batches", type=int, default=4)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port", type=int, default=29500)
    p.add_argument("--out", required=True)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    mp.spawn(worker, args=(args,), nprocs=args.procs, join=True)


if __name__ == "__main__":
    main()
