"""Reading ROOT files over XRootD (`root://` URLs, as CMS open data serves them) with retries.

uproot reads `root://` URLs through fsspec-xrootd; this module adds what a job on a real site
needs: the XRootD client's own connection retries bounded (its default waits up to ~10 min on a
dead server), transient server errors retried with exponential backoff, permanent ones (no such
file, not authorised) raised at once, and a truncated file told apart from a flaky server. Every
error names the URL.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from hhfm.errors import InputError

log = logging.getLogger("hhfm.remote")
T = TypeVar("T")

#: XRootD status codes that no retry can fix (XProtocol.hh kXR_*: bad argument, not found, not
#: authorised, unsupported, is a directory, TLS required, ...); the same list as Snakemake's plugin
PERMANENT_CODES = frozenset({3000, 3001, 3002, 3006, 3008, 3009, 3010, 3011, 3013, 3015, 3016, 3017, 3021,
                             3025, 3026, 3028, 3030, 3031, 3032})
_CODE = re.compile(r"\[(\d{4})\]")


@dataclass(frozen=True)
class RetryPolicy:
    """Tries after the first (`retries`) and the wait before try k (`backoff_s * 2**(k-1)`)."""

    retries: int = 3
    backoff_s: float = 2.0
    connect_timeout_s: float = 15.0


def is_url(source: str) -> bool:
    """Whether `source` is read over the network (any scheme://), not from local disk."""
    return "://" in str(source)


def is_xrootd(source: str) -> bool:
    return str(source).startswith(("root://", "roots://"))


def configure_client(policy: RetryPolicy) -> None:
    """Bound the XRootD client's own connection retries: one attempt of `connect_timeout_s` per try.

    Our retry loop (and Snakemake's plugin) does the retrying; the client's default waits ~8 minutes
    for a server that is down. Set as XRD_* environment (read when the client library loads, and
    inherited by jobs) and through the client's EnvPutInt (it may be loaded already). A user's own
    XRD_* settings win.
    """
    window = max(1, int(policy.connect_timeout_s))
    for env, name, value in (("XRD_CONNECTIONRETRY", "ConnectionRetry", 1), ("XRD_CONNECTIONWINDOW", "ConnectionWindow", window),
                             ("XRD_REQUESTTIMEOUT", "RequestTimeout", max(10, 4 * window))):
        if env in os.environ:
            continue
        os.environ[env] = str(value)
        try:
            from XRootD import client
        except ImportError:  # no client installed: root:// reads fail later with uproot's own message
            continue
        client.EnvPutInt(name, value)


def xrootd_code(err: BaseException) -> int | None:
    """The XRootD status code in an error message ('[3011] ...'), if any."""
    m = _CODE.search(str(err))
    return int(m.group(1)) if m else None


def is_transient(err: BaseException) -> bool:
    """A network or server error another try may cure (connection lost, timeout, server I/O error)."""
    if isinstance(err, InputError) or not isinstance(err, OSError):
        return False
    text = str(err)
    code = xrootd_code(err)
    if code is not None:
        return code not in PERMANENT_CODES
    return "[FATAL]" in text or "[ERROR]" in text or "timed out" in text.lower()


def truncated(source: str) -> str | None:
    """'N bytes, its ROOT header says M' when a file (local or root://) is shorter than its header's fEND."""
    try:
        if is_xrootd(source):
            size, head = _xrootd_size_and_head(source)
        elif is_url(source):
            return None
        else:
            size = os.path.getsize(source)
            with open(source, "rb") as f:
                head = f.read(64)
        if head is None or head[:4] != b"root":
            return None
        # header: "root", fVersion, fBEGIN (4 bytes each), fEND (8 bytes in large files, version >= 1000000)
        version = int.from_bytes(head[4:8], "big")
        end = int.from_bytes(head[12:20] if version >= 1000000 else head[12:16], "big")
        return f"{size} bytes, its ROOT header says {end}" if size < end else None
    except Exception:  # diagnosis only: never hide the original error
        return None


def _xrootd_size_and_head(url: str) -> tuple[int, bytes | None]:
    from XRootD import client

    f = client.File()
    status, _ = f.open(url)
    if not status.ok:
        return 0, None
    try:
        status, stat = f.stat()
        status2, head = f.read(0, 64)
    finally:
        f.close()
    return (stat.size, head) if status.ok and status2.ok else (0, None)


def call_with_retries(fn: Callable[[], T], url: str, what: str, policy: RetryPolicy) -> T:
    """`fn()`, retried on transient errors of a remote `url`; InputError naming `url` when it gives up.

    Local paths are not retried (a local error does not go away). `what` says what was being done.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as err:
            if not is_url(url) or not is_transient(err):
                raise
            short = truncated(url) if xrootd_code(err) is not None else None
            if short:
                raise InputError(f"{url}: truncated file ({short}) while trying to {what}") from err
            if attempt >= policy.retries:
                raise InputError(f"{url}: cannot {what} after {attempt + 1} tries "
                                 f"({type(err).__name__}: {str(err).strip()})") from err
            wait = policy.backoff_s * 2**attempt
            attempt += 1
            log.warning("%s: %s failed (%s); retry %d of %d in %.1f s", url, what, str(err).strip(), attempt,
                        policy.retries, wait)
            time.sleep(wait)
