"""Commands that hand hepaseg's data to other tools: ``export nnunet``, ``export dicom``."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import manifest_argument, preset_option, subparser

NNUNET_EXAMPLE = "hepaseg export nnunet cohort/dataset.json -o nnUNet_raw/Dataset501_Liver --id 501"
DICOM_EXAMPLE = "hepaseg export dicom --image dicom/ --tumor tumor_corrected.nii.gz --liver liver.nii.gz -o out/"


def add_export(sub) -> None:
    p = subparser(sub, "export", "Write a dataset in another tool's layout, to train and evaluate it beside "
                  "hepaseg (nnU-Net v2), or masks as DICOM objects for a PACS.", f"{NNUNET_EXAMPLE}\n  {DICOM_EXAMPLE}")
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
    _add_export_dicom(formats)
    n = subparser(formats, "nnunet",
                  "nnU-Net v2's raw dataset: imagesTr / labelsTr (0 background, 1 liver, 2 tumour of the "
                  "training rater) / imagesTs, dataset.json, and splits_final.json whose fold 0 is "
                  "hepaseg's own train / val split; prints the nnU-Net commands to run next.",
                  f"{NNUNET_EXAMPLE}\n  {NNUNET_EXAMPLE} --copy --rater R2")
    manifest_argument(n, " with train, val and test cases")
    n.add_argument("-o", "--out", type=Path, required=True,
                   help="the new dataset folder, named Dataset<ID>_<name> (inside nnUNet_raw)")
    n.add_argument("--id", type=int, required=True, help="nnU-Net dataset id, 1 to 999 (nnUNetv2_* -d)")
    n.add_argument("--rater", default=None,
                   help="whose tumour masks are the labels (default: the preset's training rater)")
    n.add_argument("--copy", action="store_true", help="copy NIfTI images instead of symlinking them")
    preset_option(n)
    n.set_defaults(func=_run_export_nnunet)


def _add_export_dicom(formats) -> None:
    from ..io.dicom_results import OBJECTS

    d = subparser(formats, "dicom",
                  "The DICOM results of any tumour mask on a DICOM series (a rater's contour, a prediction "
                  "corrected in 3D Slicer), as hepaseg predict writes them: a SEG with the liver and one segment "
                  "per lesion, a TID 1500 measurement report, an RTSTRUCT and a Secondary Capture of the overview, "
                  "with lesions.csv (lesions numbered by volume, largest first). docs/dicom.md",
                  f"{DICOM_EXAMPLE}\n  hepaseg export dicom --image dicom/ --tumor R1.nii.gz -o out/ --objects seg,sr")
    d.add_argument("--image", type=Path, required=True, help="the DICOM series folder the masks lie on")
    d.add_argument("--series", metavar="UID", help="its Series Instance UID, where the folder holds several")
    d.add_argument("--tumor", type=Path, required=True, help="binary tumour mask (0 / 1) on the image's grid, in "
                                                             "any axis order hepaseg check accepts")
    d.add_argument("--liver", type=Path, help="binary liver mask on the same grid (default: none; the SEG's "
                                              "liver segment is then empty)")
    d.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    d.add_argument("--objects", default=",".join(OBJECTS), metavar="KINDS",
                   help=f"any of {','.join(OBJECTS)} (default: all); one the series cannot give is left out with "
                        "a line saying why, and the exit code is 1")
    d.set_defaults(func=_run_export_dicom)


def _run_export_dicom(args) -> int:
    from ..inference.dicom_outputs import parse_objects
    from ..pipeline.dicom_export import export_dicom

    left_out: list[str] = []
    written = export_dicom(args.image, args.tumor, args.out, args.liver, parse_objects(args.objects), args.series,
                           left_out=left_out.append)
    for line in left_out:
        print(f"warning: {line}", file=sys.stderr)
    print(f"wrote {', '.join(p.name for p in written)} into {args.out}")
    return 1 if left_out else 0


def _run_export_nnunet(args) -> None:
    from ..presets import resolve_config
    from ..data.nnunet import TUMOUR_LABEL, export_nnunet

    rater = args.rater or resolve_config(args.preset).train.rater
    export = export_nnunet(args.manifest, args.out, args.id, rater, copy=args.copy)
    folder = export.folder.resolve()
    raw = folder.parent
    print(f"wrote {folder}: {len(export.train) + len(export.val)} training cases ({len(export.train)} train, "
          f"{len(export.val)} val as fold 0), {len(export.test)} test cases, labels of {export.rater}, images "
          f"{'linked' if export.linked else 'copied'} or converted")
    print("next, as nnU-Net documents (fold 0 = hepaseg's train / val split):")
    print(f"  export nnUNet_raw={raw} nnUNet_preprocessed={raw.parent / 'nnUNet_preprocessed'} "
          f"nnUNet_results={raw.parent / 'nnUNet_results'}")
    print(f"  nnUNetv2_plan_and_preprocess -d {export.dataset_id} --verify_dataset_integrity")
    print(f"  cp {folder / 'splits_final.json'} \"$nnUNet_preprocessed/{folder.name}/\"")
    print(f"  nnUNetv2_train {export.dataset_id} 3d_fullres 0")
    print(f"  nnUNetv2_predict -i {folder / 'imagesTs'} -o nnunet_out -d {export.dataset_id} -c 3d_fullres -f 0")
    print(f"  hepaseg evaluate {args.manifest} --pred nnUNet=nnunet_out --label nnUNet={TUMOUR_LABEL} -o eval/")
