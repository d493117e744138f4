"""Encapsulated PDF Storage: an outside referral letter filed in PACS with the patient's study.

The PDF is the `pdf` carrier's own referral, so the payload hides in it by a PDF technique.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.carriers.dicom_header import (
    add_patient_study,
    derive_identity,
    make_code,
    new_dataset,
    set_text,
)
from sandbox.carriers.pdf import TECHNIQUES, build_pdf
from sandbox.carriers.pdf_layout import document_info
from sandbox.errors import CarrierError
from sandbox.scenarios.models import Input, Payload, Scenario

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
# Kinds of input that are documents, stored as an Encapsulated PDF.
DOCUMENT_KINDS = frozenset({"referral"})
DOCUMENT_FIELD = "encapsulated-pdf"
PDF_MIME = "application/pdf"
REFERRAL_CODE = ("57133-1", "LN", "Referral note")


def build_document(scenario: Scenario, item: Input) -> tuple[Dataset, bool]:
    """The Encapsulated PDF data set of `item`, and whether its PDF carries the payload."""
    check_document_field(item.payload)
    pdf_item = item.model_copy(
        update={"carrier": "pdf", "kind": "referral", "payload": _pdf_payload(item.payload)}
    )
    try:
        pdf = build_pdf(scenario, pdf_item)
    except CarrierError as exc:
        raise CarrierError(
            f"dicom {item.kind} (Encapsulated PDF): {exc.message}", hint=exc.hint
        ) from exc
    title = document_info(scenario, pdf_item).title
    return encapsulate_pdf(scenario, item, pdf.data, title), pdf.has_payload


def check_document_field(payload: Payload | None) -> None:
    """Reject a `payload.field`: the PDF technique alone says where the payload goes."""
    if payload is None or payload.field in (None, DOCUMENT_FIELD):
        return
    raise CarrierError(
        f"dicom payload: field '{payload.field}' does not apply to a referral, which is stored "
        f"as an Encapsulated PDF; the payload goes into the PDF by payload.technique.",
        hint=f"Remove payload.field (or set it to {DOCUMENT_FIELD}) and choose "
        f"payload.technique (allowed: {', '.join(TECHNIQUES)}).",
    )


def _pdf_payload(payload: Payload | None) -> Payload | None:
    return None if payload is None else payload.model_copy(update={"field": None})


def encapsulate_pdf(scenario: Scenario, item: Input, pdf: bytes, title: str) -> Dataset:
    """Patient, study, series, equipment and Encapsulated Document modules around `pdf`."""
    ident = derive_identity(scenario, item)
    ds = new_dataset(ENCAPSULATED_PDF, ident)
    add_patient_study(ds, scenario, ident)
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = ident.series_uid
    ds.SeriesNumber = 990
    ds.SeriesDescription = "OUTSIDE REFERRAL"
    ds.ConversionType = "WSD"
    ds.InstanceNumber = 1
    ds.AcquisitionDateTime = ident.study_date + ident.study_time
    # The letter shows the patient's name, birth date and MRN on every page.
    ds.BurnedInAnnotation = "YES"
    set_text(ds, "DocumentTitle", title, "document title")
    ds.ConceptNameCodeSequence = [make_code(*REFERRAL_CODE)]
    ds.MIMETypeOfEncapsulatedDocument = PDF_MIME
    ds.EncapsulatedDocumentLength = len(pdf)
    # OB values have even length; the extra NUL follows %%EOF, where PDF readers ignore it.
    ds.add_new(0x00420011, "OB", pdf + b"\x00" * (len(pdf) % 2))
    return ds
