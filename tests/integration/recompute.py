#!/usr/bin/env python3
"""Independent reference implementation of tally's kernels, from docs/algorithm.md.

Standard library only; nothing runs at import time. Integration tests import it to check a job's
counts against a recomputation that shares no code with the C kernels:

    from recompute import pi_counts, job_counts
    inside, n = pi_counts(seed, batch, first, n)

CLI:
    python3 recompute.py pi SEED BATCH_SIZE SAMPLES BATCH...
    python3 recompute.py count SEED BATCH_SIZE SAMPLES BATCH...
prints the counts summed over the given batches as one JSON object, e.g.
{"inside": 785, "samples": 1000}. SEED is decimal (0..2^64-1) or 0x-prefixed hex. Batches at or
past the end of the job (first sample >= SAMPLES) contribute nothing.
"""

import json
import sys

MASK = (1 << 64) - 1

GAMMA = 0x9E3779B97F4A7C15
MUL1 = 0xBF58476D1CE4E5B9
MUL2 = 0x94D049BB133111EB

PI_TAG = 0x5049000000000001  # "PI" in the top 16 bits, kernel version 1 in the low bits
PI_LANES = 8
PI_R2 = 1 << 62  # (2^31)^2


def splitmix64(x):
    """One splitmix64 step: returns (next state, output)."""
    x = (x + GAMMA) & MASK
    z = x
    z = ((z ^ (z >> 30)) * MUL1) & MASK
    z = ((z ^ (z >> 27)) * MUL2) & MASK
    return x, z ^ (z >> 31)


def mix(v):
    """splitmix64's output for state v (a bijection on 64-bit words)."""
    return splitmix64(v & MASK)[1]


def stream_key(tag, seed, batch, lane):
    """key = mix(mix(mix(seed ^ tag) ^ batch) ^ lane)."""
    return mix(mix(mix(seed ^ tag) ^ batch) ^ lane)


def xoshiro_seed(key):
    """xoshiro256 state [s0, s1, s2, s3]: four consecutive splitmix64 outputs from key."""
    s = []
    x = key & MASK
    for _ in range(4):
        x, out = splitmix64(x)
        s.append(out)
    if not (s[0] | s[1] | s[2] | s[3]):
        s[0] = 1
    return s


def xoshiro_outputs(s, count):
    """The first `count` xoshiro256+ outputs of state s (s is not modified)."""
    s0, s1, s2, s3 = s
    out = []
    for _ in range(count):
        out.append((s0 + s3) & MASK)
        t = (s1 << 17) & MASK
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & MASK
    return out


def _check_u64(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MASK:
        raise ValueError("%s: must be an integer 0..2^64-1, got %r" % (name, v))


def pi_counts(seed, batch, first, n):
    """Counts of kernel pi (version 1) for one batch: (inside, n).

    Sample i (0 <= i < n) of the batch is output i // 8 of lane i % 8. `first` (the global index of
    the batch's first sample) does not enter the computation; it is accepted to match the kernel
    signature."""
    for name, v in (("seed", seed), ("batch", batch), ("first", first), ("n", n)):
        _check_u64(name, v)
    inside = 0
    for lane in range(PI_LANES):
        if n <= lane:
            break
        draws = (n - lane + PI_LANES - 1) // PI_LANES  # samples lane, lane+8, lane+16, ... < n
        s = xoshiro_seed(stream_key(PI_TAG, seed, batch, lane))
        for r in xoshiro_outputs(s, draws):
            x = r >> 33
            y = (r >> 2) & 0x7FFFFFFF
            if x * x + y * y < PI_R2:
                inside += 1
    return inside, n


def count_counts(seed, batch, first, n):
    """Counts of kernel count (version 1) for one batch: (n,)."""
    for name, v in (("seed", seed), ("batch", batch), ("first", first), ("n", n)):
        _check_u64(name, v)
    return (n,)


KERNELS = {
    # name: (count keys in order, batch function)
    "pi": (("inside", "samples"), pi_counts),
    "count": (("samples",), count_counts),
}


def batch_range(samples, batch_size, batch):
    """(first, n) of batch `batch`: samples [b*bs, min((b+1)*bs, samples)); n = 0 past the end."""
    first = batch * batch_size
    if first >= samples:
        return first, 0
    return first, min(batch_size, samples - first)


def job_counts(kernel, seed, batch_size, samples, batches):
    """Counts of `kernel` summed over `batches` of the job (seed, batch_size, samples), as a dict."""
    keys, run = KERNELS[kernel]
    if batch_size < 1:
        raise ValueError("batch_size: must be >= 1")
    total = [0] * len(keys)
    for b in batches:
        first, n = batch_range(samples, batch_size, b)
        if n == 0:
            continue
        for i, c in enumerate(run(seed, b, first, n)):
            total[i] += c
    return dict(zip(keys, total))


def _parse_int(s):
    return int(s, 16) if s.lower().startswith("0x") else int(s, 10)


def main(argv):
    if len(argv) < 6 or argv[1] not in KERNELS:
        sys.stderr.write("usage: %s {pi|count} SEED BATCH_SIZE SAMPLES BATCH...\n" % argv[0])
        return 2
    try:
        seed, batch_size, samples = (_parse_int(a) for a in argv[2:5])
        batches = [_parse_int(a) for a in argv[5:]]
        _check_u64("seed", seed)
        _check_u64("samples", samples)
        for b in batches:
            _check_u64("batch", b)
        counts = job_counts(argv[1], seed, batch_size, samples, batches)
    except ValueError as e:
        sys.stderr.write("%s: %s\n" % (argv[0], e))
        return 2
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
