"""Sending a series' results: DIMSE C-STORE (pynetdicom) or DICOMweb STOW-RS (dicomweb-client).

``send_files`` stores every file in one association (one request, for STOW-RS) and returns only when
the destination acknowledged each; otherwise it raises ``SendError`` with a one-line reason, and the
caller tries again after ``backoff`` seconds. Storing the same objects again is harmless: their UIDs
are derived from the source series (``io.dicom_results``), so a PACS keeps one copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .config import Destination

TIMEOUT_S = 60.0  # association, DIMSE and network timeouts; the HTTP timeout of STOW-RS
OK_STATUS = {0x0000, 0x0001, 0xB000, 0xB006, 0xB007}  # success, and the warnings of a C-STORE


class SendError(Exception):
    """The destination was unreachable or refused; the message is one line."""


def backoff(attempts: int, first: float, longest: float) -> float:
    """Seconds to wait after ``attempts`` failed tries (1, 2, ...): ``first``, doubling, at most ``longest``."""
    return min(longest, first * 2 ** max(0, attempts - 1))


def send_files(destination: Destination, files: Sequence[Path], calling_ae: str) -> list[str]:
    """Store ``files`` (DICOM files) at ``destination``; their SOP Instance UIDs, once all were acknowledged.

    Raises:
        SendError: unreachable, association rejected, or an instance refused (its status).
    """
    import pydicom

    datasets = [pydicom.dcmread(f) for f in files]
    if destination.dicomweb:
        _stow(destination, datasets)
    else:
        _c_store(destination, datasets, calling_ae)
    return [str(ds.SOPInstanceUID) for ds in datasets]


def _c_store(destination: Destination, datasets: list, calling_ae: str) -> None:
    from pynetdicom import AE
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae)
    if not assoc.is_established:
        why = "association rejected" if assoc.is_rejected else "no association (down or unreachable?)"
        raise SendError(f"{destination.describe()}: {why}")
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            code = int(status.Status) if status and "Status" in status else None
            if code not in OK_STATUS:
                shown = "no answer" if code is None else f"status 0x{code:04X}"
                raise SendError(f"{destination.describe()}: refused {ds.SOPClassUID.name} ({shown})")
    finally:
        if assoc.is_established:
            assoc.release()


def _stow(destination: Destination, datasets: list) -> None:
    import requests
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=destination.url)
    # no retries inside the client (five tries over a minute on a 503, then an uncaught RetryError):
    # the node's job queue retries with its own backoff
    client.set_http_retry_params(retry=False)
    try:
        answer = client.store_instances(datasets)
    except (requests.RequestException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SendError(f"{destination.describe()}: {first[:200]}") from exc
    failed = answer.get("FailedSOPSequence") if answer is not None else None
    if failed:
        raise SendError(f"{destination.describe()}: refused {len(failed)} of {len(datasets)} instances")
