#!/usr/bin/env python3
"""The seed post's Monte Carlo pi on tally, its sample() kept resident in the workers.

The seed maps sample() over batches of 100,000 with multiprocessing.Pool. Here the same function
runs in tally's workers: each worker thread starts this program once (`pi_resident.py serve`,
params "resident": true) and feeds it batches, one JSON line each; tally sums the counts, exactly
once per batch. sample() is the seed's, unchanged but for where its random numbers come from:
batch.random(), seeded from (job seed, batch index) alone, so that a batch's counts are the same
wherever and however often it runs (docs/algorithm.md).

On one machine (a coordinator and a worker allowed to run this program):

    build/bin/tally-server & build/bin/tally-worker --allow-exec "$PWD/examples" &
    python3 examples/pi_resident.py 1e7

On the compose cluster, whose worker image holds this file in /usr/local/share/tally/examples:

    export TALLY_SERVER=http://127.0.0.1:8080 TALLY_PROGRAM=/usr/local/share/tally/examples/pi_resident.py
    python3 examples/pi_resident.py 1e8

TALLY_SERVER, TALLY_TOKEN and TALLY_CACERT are the client's (tally.Client); TALLY_PROGRAM is
where the workers find this program (default: this file's own path, right when the workers run on
the machine that submits).
"""
import math
import os
import sys

# A checkout: the package next door (an installed one is found without this). The workers run
# this program with a cleared environment, so PYTHONPATH would not reach them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "python"))
import tally  # noqa: E402


def sample(num_samples, random):
    num_inside = 0
    for _ in range(num_samples):
        x, y = random.uniform(-1, 1), random.uniform(-1, 1)
        if math.hypot(x, y) <= 1:
            num_inside += 1
    return num_inside


def batch_counts(batch):
    return {"inside": sample(batch.samples, batch.random()), "samples": batch.samples}


def approximate_pi(num_samples, seed=None):
    program = os.environ.get("TALLY_PROGRAM") or os.path.realpath(__file__)
    job = tally.run("exec", num_samples, batch_size=100_000, seed=seed,
                    params={"argv": [program, "serve"], "resident": True})
    print("pi ~= {}".format(4 * job["counts"]["inside"] / job["counts"]["samples"]))
    return job


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        tally.serve(batch_counts)
    else:
        approximate_pi(int(float(sys.argv[1])) if len(sys.argv) > 1 else 10**7)
