"""The bar Job.wait(progress=True) redraws on stderr: the CLI's progress line (cli/progress.c)."""
import math

WIDTH = 24


def sci(v):
    """A count the way it was likely typed: 950, 2.88e9, 1e10."""
    if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 1e5:
        return "%.0f" % (v if isinstance(v, (int, float)) and math.isfinite(v) else 0)
    e = math.floor(math.log10(v))
    return "%.3ge%d" % (v / 10 ** e, e)


def duration(s):
    t = int(s + 0.5)
    if t < 60:
        return f"{t}s"
    if t < 3600:
        return f"{t // 60}m{t % 60:02d}s"
    return f"{t // 3600}h{t // 60 % 60:02d}m"


def estimate(job):
    """"pi = 3.1415669 +- 1.6e-05", or the result's first number, or ""."""
    result = job.get("result")
    if not isinstance(result, dict):
        return ""
    for key, v in result.items():
        if key == "stderr" or not isinstance(v, (int, float)):
            continue
        if isinstance(result.get("stderr"), (int, float)):
            return "%s = %.8g +- %.2g" % (key, v, result["stderr"])
        return "%s = %.10g" % (key, v)
    return ""


def line(job):
    batches = job.get("batches") or {}
    total, done = batches.get("total") or 0, batches.get("done") or 0
    samples, rate = job.get("samples") or 0, job.get("rate") or 0
    done_samples = samples * (job.get("progress") or 0)
    filled = WIDTH * done // total if total else 0
    out = "[%s%s] %5.1f%%  %s/%s samples  %s/s" % ("#" * filled, " " * (WIDTH - filled),
                                                   100.0 * done / total if total else 0.0,
                                                   sci(done_samples), sci(samples), sci(rate))
    if rate > 0 and job.get("state") not in ("succeeded", "failed", "cancelled"):
        out += "  ETA " + duration((samples - done_samples) / rate)
    est = estimate(job)
    return out + ("  " + est if est else "")


class Bar:
    """A line redrawn in place on stream (a terminal's stderr)."""

    def __init__(self, stream):
        self.stream = stream
        self.drawn = False

    def draw(self, job):
        self.stream.write("\r" + line(job) + "\033[K")
        self.stream.flush()
        self.drawn = True

    def close(self):
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
