"""The package's exceptions: every one a TallyError."""


class TallyError(Exception):
    """Base of every error this package raises (besides ValueError and TypeError for arguments
    it refuses before any request)."""


class ApiError(TallyError):
    """The coordinator answered with an error: .status (HTTP), .code and .message (from its
    {"error": {"code", "message"}} body; docs/protocol.md, Errors)."""

    def __init__(self, status, code, message):
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")


class Unreachable(TallyError, ConnectionError):
    """The coordinator could not be reached (connection refused, reset, timed out) for as long as
    the call was allowed to retry. .cause is the last error seen."""

    def __init__(self, url, cause, seconds):
        self.url = url
        self.cause = cause
        super().__init__(f"coordinator {url} unreachable for {seconds:.1f} s: {cause}")


class TlsError(TallyError):
    """The TLS handshake failed: most often a certificate that no trusted CA signed (give the
    coordinator's CA as cacert=, or TALLY_CACERT). Never retried."""


class WaitTimeout(TallyError, TimeoutError):
    """Job.wait's timeout passed with the job still unfinished; .job is its last state seen."""

    def __init__(self, job, timeout):
        self.job = job
        super().__init__(f"job {job.get('id')} still {job.get('state')} after {timeout} s")


class JobFailed(TallyError):
    """The job failed or was cancelled; .job is its final JSON (a dict)."""

    def __init__(self, job):
        self.job = job
        msg = f"job {job.get('id')} {job.get('state')}"
        if job.get("error"):
            msg += f": {job['error']}"
        super().__init__(msg)
