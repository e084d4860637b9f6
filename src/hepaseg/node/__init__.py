"""hepaseg as a DICOM node (``hepaseg node``): series in from a scanner or a PACS, results back to the PACS.

``config`` (the node folder, ``node.json``), ``rules`` (which series are segmented), ``store`` (the
jobs, SQLite), ``scp`` (the Storage SCP), ``worker`` (segment, send), ``sender`` (C-STORE, STOW-RS),
``service`` (``node run``). docs/node.md.
"""
