"""The loop of a resident program (kernel exec with "resident": true; docs/protocol.md, Kernels).

The worker starts the program once and writes it one line of JSON per batch:
{"job_id": "7", "seed": 42, "batch": 3, "first_sample": 300000, "samples": 100000}
(a seed above 2^63-1 comes as a decimal string). The program answers each with one line, the
JSON object of that batch's counts.
"""
import json
import random
import sys
import traceback

FIELDS = ("job_id", "seed", "batch", "first_sample", "samples")


class Batch:
    """One batch: .job_id (str), .seed, .batch, .first_sample and .samples (ints)."""

    __slots__ = FIELDS

    def __init__(self, job_id, seed, batch, first_sample, samples):
        self.job_id = str(job_id)
        self.seed = int(seed)
        self.batch = int(batch)
        self.first_sample = int(first_sample)
        self.samples = int(samples)

    @classmethod
    def from_line(cls, line):
        msg = json.loads(line)
        if not isinstance(msg, dict):
            raise ValueError(f"a batch line is a JSON object, not {line[:200]!r}")
        missing = [k for k in FIELDS if k not in msg]
        if missing:
            raise ValueError(f"batch line without {', '.join(missing)}: {line[:200]!r}")
        return cls(*(msg[k] for k in FIELDS))

    def random(self):
        """A random.Random of this batch's own: seeded with the string f"{seed}/{batch}", as
        examples/sample.py seeds from TALLY_SEED and TALLY_BATCH, so that a batch's numbers
        are the same wherever and however often it runs (docs/algorithm.md, section 10)."""
        return random.Random(f"{self.seed}/{self.batch}")

    def __repr__(self):
        return "Batch(%s)" % ", ".join(f"{k}={getattr(self, k)!r}" for k in FIELDS)


def _check(counts):
    if not isinstance(counts, dict):
        raise TypeError(f"fn returned {type(counts).__name__}, not a dict of counts")
    for k, v in counts.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"counts: {k!r}: {v!r} is not a name and an integer")
    return counts


def serve(fn, stdin=None, stdout=None):
    """Reads batch lines from stdin, calls fn(batch) for each and writes the dict it returns as
    one compact JSON line to stdout, flushed. Returns at the end of stdin (exit 0 follows).
    An exception (in fn, or a line that is not a batch) prints its traceback to stderr and
    exits with status 1: the worker restarts the program and fails the batch. While fn runs,
    sys.stdout is stderr, so that a stray print() cannot garble the answers."""
    stdin = stdin or sys.stdin.buffer
    out = stdout or sys.stdout
    if getattr(stdin, "isatty", lambda: False)():
        print("tally.serve: reading batch lines on stdin (a tally worker writes them; "
              "docs/python.md)", file=sys.stderr)
    saved, sys.stdout = sys.stdout, sys.stderr
    try:
        for line in stdin:
            if not line.strip():
                continue
            counts = _check(fn(Batch.from_line(line)))
            out.write(json.dumps(counts, separators=(",", ":")) + "\n")
            out.flush()
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)
    finally:
        sys.stdout = saved
