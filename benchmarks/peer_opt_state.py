#!/usr/bin/env python3
"""Optimizer-state bytes of the peer (PEFT) setups, which the peer benchmark does not report.

Builds the peer's model, prompt wrapper, optimizer and batch with the peer benchmark's own functions
(imported from its file, unchanged), runs one training step so the optimizer allocates its state,
and sums the bytes of every tensor in `optimizer.state`. One JSON line out.

  python benchmarks/peer_opt_state.py [--peer ../shared/bench/peft_prompt_bench.py] [peer shape flags]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys


def load_peer(path: str):
    spec = importlib.util.spec_from_file_location("peft_prompt_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def state_bytes(opt) -> int:
    import torch

    total = 0
    for per_param in opt.state.values():
        for v in per_param.values():
            if isinstance(v, torch.Tensor):
                total += v.numel() * v.element_size()
    return total


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--peer", default="../shared/bench/peft_prompt_bench.py")
    known, rest = p.parse_known_args()
    peer = load_peer(known.peer)
    import torch

    out = {}
    for optimizer in ("adafactor", "adamw"):
        args = peer.parse_args(rest + ["--optimizer", optimizer])
        torch.set_num_threads(args.threads)
        for mode in ("prompt_train", "full_train"):
            torch.manual_seed(args.seed)
            model = peer.build_t5(args)
            prompt = mode == "prompt_train"
            if prompt:
                model = peer.wrap_prompt(args, model)
            model.train()
            params = [q for q in model.parameters() if q.requires_grad]
            opt, _ = peer.make_optimizer(args, params, prompt=prompt)
            loss = model(**peer.make_batch(args)).loss
            loss.backward()
            opt.step()
            out[f"{mode}/{optimizer}"] = {"trainable_params": sum(q.numel() for q in params),
                                          "opt_state_bytes": state_bytes(opt)}
            del model, opt, params
    print(json.dumps({"bench": "peft_opt_state", "results": out}))


if __name__ == "__main__":
    sys.exit(main())
