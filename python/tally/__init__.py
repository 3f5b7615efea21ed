"""tally from Python: a client of the coordinator's jobs API, and the loop of a resident program.

    import tally
    job = tally.run("pi", 1e9, seed=42)            # submit, wait (a bar on a terminal), the job
    client = tally.Client()                        # TALLY_SERVER, TALLY_TOKEN, TALLY_CACERT
    j = client.submit("pi", 1e10); j.wait(timeout=60)

    tally.serve(lambda batch: {"inside": ..., "samples": batch.samples})   # a resident program

Standard library only, Python 3.9 or later. docs/python.md has the whole of it.
"""
from .client import Client, Job, run
from .errors import ApiError, JobFailed, TallyError, TlsError, Unreachable, WaitTimeout
from .serve import Batch, serve

__all__ = ["Client", "Job", "run", "serve", "Batch", "TallyError", "ApiError", "JobFailed",
           "Unreachable", "TlsError", "WaitTimeout"]
__version__ = "0.1.0"
