"""The node's Storage SCP (pynetdicom): MR images in, each written to the spool before it is acknowledged.

Accepted: C-ECHO, and C-STORE of MR Image Storage, Enhanced MR Image Storage and Legacy Converted
Enhanced MR Image Storage in every transfer syntax pydicom can decode here. An association is
rejected (A-ASSOCIATE-RJ, "calling AE title not recognised") unless its calling AE title and host
match an allowed peer (``config.is_allowed``). A C-STORE is answered:

- ``0x0000`` success: the instance is in ``spool/<series UID>/<SOP instance UID>.dcm`` (written
  atomically) and recorded in the store, or was already there (the same SOP instance sent again);
- ``0xA700`` out of resources: the spool's disk has less free space than ``min_free_mb``, the
  instance is over ``max_instance_mb``, or the association sent more than
  ``max_instances_per_association`` instances; nothing is written;
- ``0xC000`` cannot understand: a Series or SOP Instance UID that is not a valid UID (no file name
  is ever built from an unchecked attribute).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ..io.atomic import write_bytes
from .config import SPOOL, NodeConfig, is_allowed
from .store import Store

SUCCESS, OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC000
MB = 1_000_000
MR_STORAGE = ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.4.4")


def decodable_syntaxes() -> list[str]:
    """The transfer syntaxes whose pixel data pydicom can decode on this installation."""
    from pydicom.pixels import get_decoder
    from pydicom.pixels.decoders.base import _PIXEL_DATA_DECODERS

    return [str(uid) for uid in _PIXEL_DATA_DECODERS if get_decoder(uid).is_available]


def is_uid(text: object) -> bool:
    """Whether ``text`` is a valid DICOM UID (digits and dots, at most 64 characters)."""
    from pydicom.uid import UID

    return isinstance(text, str) and bool(text) and UID(text).is_valid


class StorageSCP:
    """The listening side of a node: ``start`` binds ``config.host:config.port``, ``stop`` closes it.

    Args:
        log: ``log(event, **fields)``: one line per event.
    """

    def __init__(self, folder: str | Path, config: NodeConfig, store: Store, log: Callable[..., None]) -> None:
        self.spool = Path(folder) / SPOOL
        self.config, self.store, self.log = config, store, log
        self.server = None
        self._counts: dict[int, int] = {}

    def start(self) -> None:
        """Listen (not blocking); OSError where the port cannot be bound."""
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.config.ae)
        ae.maximum_pdu_size = 0  # no limit on the PDUs a sender may send
        syntaxes = decodable_syntaxes()
        for sop_class in MR_STORAGE:
            ae.add_supported_context(sop_class, syntaxes)
        ae.add_supported_context(Verification)
        handlers = [(evt.EVT_REQUESTED, self._on_request), (evt.EVT_C_STORE, self._on_store),
                    (evt.EVT_C_ECHO, self._on_echo), (evt.EVT_RELEASED, self._on_end), (evt.EVT_ABORTED, self._on_end)]
        self.server = ae.start_server((self.config.host, self.config.port), block=False, evt_handlers=handlers)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def _on_request(self, event) -> None:
        """Reject an association from a calling AE title and host that no allowed peer names."""
        assoc = event.assoc
        calling = str(assoc.requestor.primitive.calling_ae_title).strip()
        address = assoc.requestor.address
        if not is_allowed(self.config.allow, calling, address):
            self.log("association rejected", calling_ae=calling, host=address, why="not an allowed peer")
            assoc.acse.send_reject(0x01, 0x01, 0x03)  # rejected permanent, service user, calling AE not recognised
            assoc.is_rejected = True
            assoc.kill()

    def _on_echo(self, event) -> int:
        self.log("echo", calling_ae=event.assoc.requestor.ae_title.strip(), host=event.assoc.requestor.address)
        return SUCCESS

    def _on_end(self, event) -> None:
        self._counts.pop(id(event.assoc), None)

    def _on_store(self, event) -> int:
        """Write one instance to the spool and record it; the C-STORE status (see the module docstring)."""
        calling = event.assoc.requestor.ae_title.strip()
        count = self._counts[id(event.assoc)] = self._counts.get(id(event.assoc), 0) + 1
        if count > self.config.max_instances_per_association:
            self.log("store refused", calling_ae=calling, why=f"over {self.config.max_instances_per_association} "
                                                               "instances in one association")
            return OUT_OF_RESOURCES
        data = event.encoded_dataset()
        if len(data) > self.config.max_instance_mb * MB:
            self.log("store refused", calling_ae=calling, why=f"instance of {len(data) / MB:.0f} MB over the limit")
            return OUT_OF_RESOURCES
        self.spool.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.spool).free
        if free - len(data) < self.config.min_free_mb * MB:
            self.log("store refused", calling_ae=calling, why=f"spool disk has {free / MB:.0f} MB free, "
                                                               f"under the floor of {self.config.min_free_mb:g} MB")
            return OUT_OF_RESOURCES
        ds = event.dataset
        series, sop = ds.get("SeriesInstanceUID"), ds.get("SOPInstanceUID")
        if not is_uid(str(series or "")) or not is_uid(str(sop or "")):
            self.log("store refused", calling_ae=calling, why="SeriesInstanceUID or SOPInstanceUID is not a valid UID")
            return CANNOT_UNDERSTAND
        series, sop = str(series), str(sop)
        try:
            write_bytes(self.spool / series / f"{sop}.dcm", data)
        except OSError as exc:
            self.log("store refused", calling_ae=calling, why=f"{exc.filename}: {exc.strerror or exc}")
            return OUT_OF_RESOURCES
        if self.store.add_instance(sop, series, ds, calling) == "new":
            self.log("receiving", series=series, description=str(ds.get("SeriesDescription", "")), calling_ae=calling)
        return SUCCESS
