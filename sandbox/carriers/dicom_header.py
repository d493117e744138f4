"""DICOM header modules shared by images and reports, and the Basic Text SR document.

Identity (UIDs, dates, numbers) is derived from the scenario id; the rest comes from the case.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandbox.carriers.dicom_fields import check_text, fits_text
from sandbox.scenarios.models import Input, Scenario

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
INSTITUTION = "SANDBOX GENERAL HOSPITAL"
MANUFACTURER = "SANDBOX-EVAL"
IMPLEMENTATION_VERSION = "SANDBOX_EVAL_1"
REFERRERS = ("LINDQVIST^ANNA", "MORENO^CARLOS", "NAKAMURA^KEN", "OSEI^ABENA", "PETROV^IVAN")
# Kinds of input that are reports, built as Basic Text SR; every other kind is an image.
SR_KINDS = frozenset({"report", "prior-report", "result"})
_FIRST_STUDY_DAY = dt.date(2024, 1, 8)


@dataclass(frozen=True)
class Identity:
    """UIDs, dates and numbers of one DICOM input, all derived from the scenario id."""

    study_uid: str
    series_uid: str
    sop_uid: str
    frame_uid: str
    study_date: str
    study_time: str
    accession: str
    study_id: str
    referrer: str


def derive_number(scenario_id: str, role: str) -> int:
    """A 128-bit integer from the scenario id and a role name (stable across runs)."""
    text = f"sandbox-eval/dicom/{scenario_id}/{role}".encode()
    return int(hashlib.sha256(text).hexdigest()[:32], 16)


def derive_uid(scenario_id: str, role: str) -> str:
    """A UUID-derived DICOM UID (root 2.25) for a role within the scenario."""
    return f"2.25.{derive_number(scenario_id, role)}"


def derive_identity(scenario: Scenario, item: Input) -> Identity:
    """UIDs and dates for `item`: inputs share the current study, a prior report has its own."""
    study = "prior" if item.kind == "prior-report" else "current"
    index = scenario.inputs.index(item) if item in scenario.inputs else 0
    instance = f"{study}/{index}/{item.kind}"
    moment = _study_moment(scenario.id, study)
    number = derive_number(scenario.id, f"{study}/accession")
    return Identity(
        study_uid=derive_uid(scenario.id, f"{study}/study"),
        series_uid=derive_uid(scenario.id, f"{instance}/series"),
        sop_uid=derive_uid(scenario.id, f"{instance}/sop"),
        frame_uid=derive_uid(scenario.id, f"{study}/frame"),
        study_date=moment.strftime("%Y%m%d"),
        study_time=moment.strftime("%H%M%S"),
        accession=f"ACC{number % 10**8:08d}",
        study_id=f"{number % 10**5:05d}",
        referrer=REFERRERS[derive_number(scenario.id, "referrer") % len(REFERRERS)],
    )


def _study_moment(scenario_id: str, study: str) -> dt.datetime:
    day = _FIRST_STUDY_DAY + dt.timedelta(days=derive_number(scenario_id, "day") % 360)
    if study == "prior":
        day -= dt.timedelta(days=90 + derive_number(scenario_id, "prior-day") % 640)
    seconds = 7 * 3600 + derive_number(scenario_id, f"{study}/time") % (11 * 3600)
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds)


def new_dataset(sop_class: str, ident: Identity) -> Dataset:
    """An empty data set with file meta (Explicit VR Little Endian) and SOP identity."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(ident.sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(derive_uid("implementation", "class"))
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ident.sop_uid
    return ds


def set_text(ds: Dataset, keyword: str, value: str, label: str) -> None:
    """Set a text attribute from case data after checking its VR; empty values are left out."""
    from pydicom.datadict import dictionary_VR

    if not value:
        return
    check_text(label, keyword, dictionary_VR(keyword), value)
    setattr(ds, keyword, value)


def add_patient_study(ds: Dataset, scenario: Scenario, ident: Identity) -> None:
    """Patient, general study and equipment modules, and the request text from the case."""
    patient = scenario.case.patient
    set_text(ds, "PatientName", patient.name, "case.patient.name")
    set_text(ds, "PatientID", patient.mrn, "case.patient.mrn")
    ds.PatientBirthDate = patient.birth_date.replace("-", "")
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = ident.study_uid
    ds.StudyDate, ds.StudyTime = ident.study_date, ident.study_time
    ds.ContentDate, ds.ContentTime = ident.study_date, ident.study_time
    ds.AccessionNumber = ident.accession
    ds.StudyID = ident.study_id
    ds.ReferringPhysicianName = ident.referrer
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = INSTITUTION
    _add_request_text(ds, scenario)


def describe_study(scenario: Scenario) -> str:
    """The study description as the modality wrote it, or modality and body part."""
    study = scenario.case.study
    return study.description or f"{study.modality} {study.body_part}".upper()


def _add_request_text(ds: Dataset, scenario: Scenario) -> None:
    indication = scenario.case.study.indication.strip()
    description = describe_study(scenario)
    set_text(ds, "StudyDescription", description, "case.study.description")
    if fits_text("LO", description):
        ds.RequestedProcedureDescription = description
    # A short indication is the order's reason; a long one only fits the clinical history.
    if fits_text("LO", indication):
        set_text(ds, "ReasonForTheRequestedProcedure", indication, "case.study.indication")
    else:
        set_text(ds, "AdditionalPatientHistory", indication, "case.study.indication")


def compose_sr_text(scenario: Scenario, body: str) -> str:
    """The report text of an SR: the input's content, or the case findings as sentences."""
    if body.strip():
        return body.strip()
    sentences = [f"{f.text[:1].upper()}{f.text[1:]}." for f in scenario.case.findings]
    return " ".join(sentences) or "No acute abnormality."


def build_sr(scenario: Scenario, item: Input, body: str) -> Dataset:
    """A Basic Text SR whose content is a report container with History and Finding text."""
    ident = derive_identity(scenario, item)
    ds = new_dataset(BASIC_TEXT_SR, ident)
    add_patient_study(ds, scenario, ident)
    ds.Modality = "SR"
    ds.SeriesInstanceUID = ident.series_uid
    ds.SeriesNumber = 900
    ds.InstanceNumber = 1
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.PerformedProcedureCodeSequence = []
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [make_code("18748-4", "LN", "Diagnostic Imaging Report")]
    ds.ContinuityOfContent = "SEPARATE"
    ds.ContentSequence = _sr_items(scenario, body)
    return ds


def _sr_items(scenario: Scenario, body: str) -> list[Dataset]:
    items = []
    indication = scenario.case.study.indication.strip()
    if indication:
        items.append(_text_item(("121060", "DCM", "History"), indication))
    items.append(_text_item(("121071", "DCM", "Finding"), compose_sr_text(scenario, body)))
    return items


def _text_item(concept: tuple[str, str, str], text: str) -> Dataset:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = [make_code(*concept)]
    item.TextValue = text
    return item


def make_code(value: str, scheme: str, meaning: str) -> Dataset:
    """A code sequence item (CodeValue, CodingSchemeDesignator, CodeMeaning)."""
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue = value
    code.CodingSchemeDesignator = scheme
    code.CodeMeaning = meaning
    return code


def find_finding_item(ds: Dataset) -> Dataset:
    """The SR content item that holds the findings text (the last TEXT item)."""
    item: Dataset = ds.ContentSequence[-1]
    return item
