"""The node's configuration: destinations and peers parsed or refused in one line, the default
allowed sender, and node.json written once and read back."""

from __future__ import annotations

import pytest

from hepaseg.errors import InputError
from hepaseg.node.config import Destination, Peer, is_allowed, new_config, parse_destination, read_node, init_node


def test_destinations_and_peers():
    assert parse_destination("ORTHANC@pacs.local:4242") == Destination("ORTHANC", "pacs.local", 4242)
    assert parse_destination("dicomweb:http://pacs:8042/dicom-web/") == Destination(url="http://pacs:8042/dicom-web")
    for bad in ("ORTHANC@pacs", "@pacs:4242", "A@h:0", "dicomweb:ftp://x", "TOO_LONG_AE_TITLE_X@h:1"):
        with pytest.raises(InputError):
            parse_destination(bad)
    peers = (Peer("SCANNER", "127.0.0.1"), Peer("*", "localhost"))
    assert is_allowed(peers, "SCANNER", "127.0.0.1") and is_allowed(peers, "ANY", "127.0.0.1")
    assert not is_allowed((Peer("SCANNER", "127.0.0.1"),), "OTHER", "127.0.0.1")
    assert not is_allowed(peers, "SCANNER", "10.1.2.3")


def test_init_writes_node_json_once_with_the_send_to_host_allowed(node_model, tmp_path):
    config = new_config(node_model, "HEPASEG", 11112, "ORTHANC@127.0.0.1:4242", quiet_seconds=2.0)
    assert config.allow == (Peer("*", "127.0.0.1"),) and config.host == "127.0.0.1"
    init_node(tmp_path / "node", config)
    assert read_node(tmp_path / "node") == config
    with pytest.raises(InputError, match="exists already"):
        init_node(tmp_path / "node", config)
    with pytest.raises(InputError, match="not a hepaseg model folder"):
        new_config(tmp_path, "HEPASEG", 11112, "ORTHANC@127.0.0.1:4242")
