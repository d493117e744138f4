"""DICOM image data sets around a synthetic 512x512 phantom.

Storage class and modality modules for CT, MR, CR, DX, MG and US; Secondary Capture otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.carriers.dicom_header import (
    Identity,
    add_patient_study,
    derive_identity,
    make_code,
    new_dataset,
    set_text,
)
from sandbox.carriers.dicom_pixels import IMAGE_SIZE, burn_text, make_phantom
from sandbox.scenarios.models import Input, Scenario

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

_PLANE: dict[str, Any] = {
    "PatientPosition": "HFS",
    "PositionReferenceIndicator": "",
    "SliceThickness": "5",
    "SliceLocation": "0",
    "PixelSpacing": ["0.7", "0.7"],
    "ImagePositionPatient": ["-179.2", "-179.2", "0"],
    "ImageOrientationPatient": ["1", "0", "0", "0", "1", "0"],
}
_PROJECTION: dict[str, Any] = {
    "ImageType": ["ORIGINAL", "PRIMARY"],
    "PatientOrientation": ["L", "F"],
    "ViewPosition": "PA",
}
_DIGITAL_XRAY: dict[str, Any] = {
    **_PROJECTION,
    "PresentationIntentType": "FOR PRESENTATION",
    "PixelIntensityRelationship": "LIN",
    "PixelIntensityRelationshipSign": 1,
    "RescaleIntercept": "0",
    "RescaleSlope": "1",
    "RescaleType": "US",
    "PresentationLUTShape": "IDENTITY",
    "ImagerPixelSpacing": ["0.15", "0.15"],
    "DetectorType": "DIRECT",
    "ImageLaterality": "U",
    "PositionerType": "NONE",
    "AnatomicRegionSequence": [],
    "AcquisitionContextSequence": [],
}

# SNOMED CT codes (CID 4031) for the body parts a DX or MG image must code in AnatomicRegion.
ANATOMY: dict[str, tuple[str, str, str]] = {
    "CHEST": ("51185008", "SCT", "Chest"),
    "BREAST": ("76752008", "SCT", "Breast"),
    "HEAD": ("69536005", "SCT", "Head"),
    "ABDOMEN": ("818981001", "SCT", "Abdomen"),
    "PELVIS": ("816092008", "SCT", "Pelvis"),
    "SPINE": ("421060004", "SCT", "Spine"),
    "SHOULDER": ("16982005", "SCT", "Shoulder"),
    "HAND": ("85562004", "SCT", "Hand"),
    "KNEE": ("72696002", "SCT", "Knee"),
    "FOOT": ("56459004", "SCT", "Foot"),
}


@dataclass(frozen=True)
class ModalitySpec:
    """How one modality's images are stored: SOP class, series wording and modality modules."""

    sop_class: str
    series: str
    bits: int = 12
    intercept: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, tuple[str, str, str]] = field(default_factory=dict)


MODALITIES: dict[str, ModalitySpec] = {
    "CT": ModalitySpec(
        "1.2.840.10008.5.1.4.1.1.2",
        "AXIAL 5MM",
        intercept=-1024,
        attributes={
            **_PLANE,
            "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
            "KVP": "120",
            "AcquisitionNumber": 1,
            "RescaleIntercept": "-1024",
            "RescaleSlope": "1",
            "RescaleType": "HU",
        },
    ),
    "MR": ModalitySpec(
        "1.2.840.10008.5.1.4.1.1.4",
        "AX T2",
        attributes={
            **_PLANE,
            "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"],
            "ScanningSequence": "SE",
            "SequenceVariant": "NONE",
            "ScanOptions": "",
            "MRAcquisitionType": "2D",
            "RepetitionTime": "4000",
            "EchoTime": "90",
            "EchoTrainLength": "16",
            "MagneticFieldStrength": "1.5",
        },
    ),
    "CR": ModalitySpec("1.2.840.10008.5.1.4.1.1.1", "PA", attributes=dict(_PROJECTION)),
    "DX": ModalitySpec(
        "1.2.840.10008.5.1.4.1.1.1.1",
        "PA",
        attributes=dict(_DIGITAL_XRAY),
        codes={"ViewCodeSequence": ("399348003", "SCT", "postero-anterior")},
    ),
    "MG": ModalitySpec(
        "1.2.840.10008.5.1.4.1.1.1.2",
        "L CC",
        attributes={
            **_DIGITAL_XRAY,
            "ViewPosition": "CC",
            "ImageLaterality": "L",
            "PositionerType": "MAMMOGRAPHIC",
            "OrganExposed": "BREAST",
        },
        codes={"ViewCodeSequence": ("399162004", "SCT", "cranio-caudal")},
    ),
    "US": ModalitySpec(
        "1.2.840.10008.5.1.4.1.1.6.1",
        "B-MODE",
        bits=8,
        attributes={"ImageType": ["ORIGINAL", "PRIMARY"], "PatientOrientation": ""},
    ),
}
SECONDARY_CAPTURE = ModalitySpec(
    "1.2.840.10008.5.1.4.1.1.7",
    "SECONDARY CAPTURE",
    attributes={"ConversionType": "WSD", "PatientOrientation": ""},
)


def lookup_modality(modality: str) -> ModalitySpec:
    """The storage spec for a modality code; Secondary Capture when it has no own class here."""
    return MODALITIES.get(modality.upper(), SECONDARY_CAPTURE)


def build_image(scenario: Scenario, item: Input, body: str) -> Dataset:
    """A single-frame grey-scale image of the case's modality; `body` becomes ImageComments."""
    modality = scenario.case.study.modality.upper()
    spec = lookup_modality(modality)
    ident = derive_identity(scenario, item)
    ds = new_dataset(spec.sop_class, ident)
    add_patient_study(ds, scenario, ident)
    _add_series(ds, scenario, spec, ident)
    for keyword, value in spec.attributes.items():
        setattr(ds, keyword, value)
    _add_codes(ds, spec, scenario.case.study.body_part.upper())
    if "PatientPosition" in spec.attributes:
        ds.FrameOfReferenceUID = ident.frame_uid
    set_text(ds, "ImageComments", body, "input content")
    _add_pixels(ds, spec)
    return ds


def _add_codes(ds: Dataset, spec: ModalitySpec, body_part: str) -> None:
    for keyword, code in spec.codes.items():
        item = make_code(*code)
        if keyword == "ViewCodeSequence":
            item.ViewModifierCodeSequence = []
        setattr(ds, keyword, [item])
    if "AnatomicRegionSequence" in ds and body_part in ANATOMY:
        ds.AnatomicRegionSequence = [make_code(*ANATOMY[body_part])]


def _add_series(ds: Dataset, scenario: Scenario, spec: ModalitySpec, ident: Identity) -> None:
    body_part = scenario.case.study.body_part.upper()
    ds.Modality = scenario.case.study.modality.upper()
    ds.SeriesInstanceUID = ident.series_uid
    ds.SeriesNumber = 3
    ds.InstanceNumber = 1
    ds.AcquisitionDate, ds.AcquisitionTime = ident.study_date, ident.study_time
    set_text(ds, "BodyPartExamined", body_part, "case.study.body_part")
    set_text(ds, "SeriesDescription", spec.series, "series description")
    set_text(ds, "ProtocolName", f"{body_part} ROUTINE", "case.study.body_part")
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"


def _add_pixels(ds: Dataset, spec: ModalitySpec) -> None:
    import numpy as np

    max_value = 2**spec.bits - 1
    dtype = np.uint8 if spec.bits <= 8 else np.uint16
    pixels = np.rint(make_phantom(max_value)).astype(dtype)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = IMAGE_SIZE
    ds.BitsAllocated = 8 if spec.bits <= 8 else 16
    ds.BitsStored = spec.bits
    ds.HighBit = spec.bits - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = str(round(0.45 * max_value) + spec.intercept)
    ds.WindowWidth = str(round(0.9 * max_value))
    set_pixels(ds, pixels)


def set_pixels(ds: Dataset, pixels: Any) -> None:
    """Store a numpy array as the PixelData element (OB for 8-bit, OW for 16-bit)."""
    vr = "OB" if ds.BitsAllocated == 8 else "OW"
    ds.add_new(0x7FE00010, vr, pixels.astype(pixels.dtype.newbyteorder("<")).tobytes())


def burn_payload(ds: Dataset, text: str, technique: str) -> None:
    """Draw the payload into the image's pixels with the given technique."""
    import numpy as np

    dtype = np.uint8 if ds.BitsAllocated == 8 else np.dtype("<u2")
    pixels = np.frombuffer(ds.PixelData, dtype=dtype).reshape(ds.Rows, ds.Columns)
    window = float(ds.WindowWidth)
    burned = burn_text(pixels, text, technique, 2**ds.BitsStored - 1, window)
    set_pixels(ds, burned)
