"""Files in and out: volumes (NIfTI, NRRD / MHA, DICOM), their geometry, DICOM-SEG, atomic writes."""
