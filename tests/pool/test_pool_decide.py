#!/usr/bin/env python3
"""test_pool_decide.py — runs test_pool_decide (the pool's placement
decision against the rule written out plainly, on random cases) on a model
written here: 8 layers, so that splits over several GPUs have many shapes."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import inference  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    model = os.path.join(tmp, "m.gguf")
    inference.write_tiny_model(model, seed=7, n_layer=8, n_embd=128, n_head=4, n_head_kv=4,
                               n_ff=256)
    r = subprocess.run([sys.argv[1], "--ledger-dir", tmp, model])
    sys.exit(r.returncode)
