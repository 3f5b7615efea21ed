#!/usr/bin/env python3
"""The seed post's sample() function as a tally exec kernel, unchanged but for its seeding.

tally runs this program once per batch, without a shell, with a cleared environment holding the
batch's identity: TALLY_JOB_ID, TALLY_SEED, TALLY_BATCH, TALLY_FIRST_SAMPLE, TALLY_SAMPLES. It
prints one JSON object of counts; tally sums them over the batches, exactly once each.

Seeding Python's random from (TALLY_SEED, TALLY_BATCH) alone makes a batch's counts the same
wherever and however often it runs: so the job's totals are too.

    tally-worker --allow-exec "$PWD/examples/sample.py" ...
    curl -X POST localhost:8080/v1/jobs -d '{"kernel": "exec", "samples": 1e7,
        "batch_size": 1e5, "params": {"argv": ["'"$PWD"'/examples/sample.py"]}}'
"""
import json
import math
import os
import random


def sample(num_samples):
    num_inside = 0
    for _ in range(num_samples):
        x, y = random.uniform(-1, 1), random.uniform(-1, 1)
        if math.hypot(x, y) <= 1:
            num_inside += 1
    return num_inside


if __name__ == "__main__":
    n = int(os.environ["TALLY_SAMPLES"])
    random.seed(f"{os.environ['TALLY_SEED']}/{os.environ['TALLY_BATCH']}")
    print(json.dumps({"inside": sample(n), "samples": n}))
