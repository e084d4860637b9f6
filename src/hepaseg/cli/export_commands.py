"""Commands that hand hepaseg's data to other tools: ``export nnunet``."""

from __future__ import annotations

from pathlib import Path

from .common import manifest_argument, preset_option, subparser

NNUNET_EXAMPLE = "hepaseg export nnunet cohort/dataset.json -o nnUNet_raw/Dataset501_Liver --id 501"


def add_export(sub) -> None:
    p = subparser(sub, "export", "Write a dataset in another tool's layout, to train and evaluate it beside "
                  "hepaseg (nnU-Net v2).", NNUNET_EXAMPLE)
    formats = p.add_subparsers(dest="format", required=True, metavar="FORMAT")
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
