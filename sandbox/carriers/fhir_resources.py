"""The four FHIR R4 resources of the fhir carrier, built as plain dicts from a case and its texts.

Each resource has a `texts` step (the clean value of every element that can carry a payload) and
a `resource` step that lays those texts out; ids and times are hashed from the scenario id.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.carriers.base import fill_payload
from sandbox.scenarios.models import Case, Input, Patient, Scenario

Texts = dict[str, str]
Resource = dict[str, Any]
PATIENT_REF = {"reference": "#patient"}
MRN_SYSTEM = "urn:oid:2.999.1"  # 2.999: the OID arc reserved for examples
ORDER_SYSTEM = "urn:oid:2.999.2"
PROCEDURE_SYSTEM = "http://sandbox.example/fhir/CodeSystem/procedure"
DICOM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
LOINC = "http://loinc.org"
TEXT_PLAIN = "text/plain; charset=utf-8"
REFERRER = {"display": "Dr Alex Referrer"}
READER = {"display": "Dr Sam Reader"}
_GENDERS = {"F": "female", "M": "male", "O": "other"}
_DOCUMENT_TYPES = {"referral": ("57133-1", "Referral note"), "note": ("34109-9", "Note")}
PATIENT_INSTRUCTION = "Arrive 15 minutes before the appointment and bring any previous imaging."


@dataclass(frozen=True)
class TextBuilder:
    """How one resource type gets its texts and lays them out."""

    texts: Callable[[Case, Input, str], Texts]
    resource: Callable[[Scenario, Input, Texts], Resource]


@dataclass(frozen=True)
class Ids:
    """Resource id, order number, DICOM UIDs and times hashed from the scenario id and kind."""

    digest: str
    start: dt.datetime

    @property
    def resource_id(self) -> str:
        """The resource's logical id."""
        return f"sbx-{self.digest[:16]}"

    def uid(self, offset: int) -> str:
        """A DICOM UID under the 2.25 (UUID-derived) root, at most 64 characters."""
        return f"2.25.{int(self.digest[offset : offset + 30], 16)}"

    def number(self, modulo: int) -> int:
        """A stable number below `modulo`."""
        return int(self.digest[16:28], 16) % modulo

    def when(self, hours: int = 0) -> str:
        """The start time plus `hours`, as a FHIR dateTime / instant in UTC."""
        return (self.start + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ids_for(scenario: Scenario, item: Input) -> Ids:
    """Hash the scenario id and input kind; the time falls in a working day of 2024."""
    digest = hashlib.sha256(f"{scenario.id}:{item.kind}".encode()).hexdigest()
    number = int(digest[:12], 16)
    minutes = 8 * 60 + (number // 366) % (9 * 60)
    return Ids(digest, dt.datetime(2024, 1, 1) + dt.timedelta(days=number % 366, minutes=minutes))


def procedure_text(case: Case) -> str:
    """The study as a procedure name, e.g. 'CT CHEST WO CONTRAST'."""
    study = case.study
    return (study.description or f"{study.modality} {study.body_part}").strip().upper()


def procedure_code(case: Case, text: str) -> Resource:
    """A CodeableConcept with a fictional local code; `text` is what a person reads."""
    name = procedure_text(case)
    code = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 90000 + 10000
    coding = {"system": PROCEDURE_SYSTEM, "code": f"SBX{code}", "display": name}
    return {"coding": [coding], "text": text}


def patient(person: Patient) -> Resource:
    """The synthetic patient, contained in every resource as '#patient'."""
    family, *given = [part for part in person.name.split("^") if part]
    name: Resource = {"family": family, "given": given[:2]} if given else {"family": family}
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    return {
        "resourceType": "Patient",
        "id": "patient",
        "identifier": [{"type": mr, "system": MRN_SYSTEM, "value": person.mrn}],
        "name": [name],
        "gender": _GENDERS[person.sex],
        "birthDate": person.birth_date,
    }


def base(resource_type: str, scenario: Scenario, ids: Ids) -> Resource:
    """The parts every resource shares: type, id, contained patient, subject."""
    return {
        "resourceType": resource_type,
        "id": ids.resource_id,
        "contained": [patient(scenario.case.patient)],
        "subject": PATIENT_REF,
    }


def attachment(text: str, title: str, created: str) -> Resource:
    """A text/plain attachment whose data is the UTF-8 text in base64."""
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return {
        "contentType": TEXT_PLAIN,
        "language": "en",
        "data": data,
        "title": title,
        "creation": created,
    }


def report_from_findings(case: Case) -> str:
    """A plain report body from the case's ground truth, used when input.content is empty."""
    findings = [f"- {finding.text.rstrip('.')}." for finding in case.findings]
    lines = [f"EXAMINATION: {procedure_text(case)}", "", "FINDINGS:"]
    lines += findings or ["- No acute abnormality."]
    if case.study.indication:
        lines[1:1] = ["", f"INDICATION: {case.study.indication}"]
    return "\n".join(lines)


def _service_request_texts(case: Case, item: Input, body: str) -> Texts:
    return {
        "note": body,
        "reasonCode.text": case.study.indication.strip(),
        "patientInstruction": PATIENT_INSTRUCTION,
        "code.text": procedure_text(case),
    }


def _service_request(scenario: Scenario, item: Input, texts: Texts) -> Resource:
    ids = ids_for(scenario, item)
    imaging = {"system": "http://snomed.info/sct", "code": "363679005", "display": "Imaging"}
    resource = base("ServiceRequest", scenario, ids)
    resource.update(
        identifier=[{"system": ORDER_SYSTEM, "value": f"PO{ids.number(10**8):08d}"}],
        status="active",
        intent="order",
        category=[{"coding": [imaging]}],
        priority="routine",
        code=procedure_code(scenario.case, texts["code.text"]),
        authoredOn=ids.when(),
        occurrenceDateTime=ids.when(24),
        requester=REFERRER,
        patientInstruction=texts["patientInstruction"],
    )
    if texts["reasonCode.text"]:
        resource["reasonCode"] = [{"text": texts["reasonCode.text"]}]
    if texts["note"]:
        resource["note"] = [{"text": texts["note"]}]
    return resource


def _imaging_study_texts(case: Case, item: Input, body: str) -> Texts:
    study = case.study
    return {
        "description": procedure_text(case),
        "note": body,
        "series.description": f"{study.modality} {study.body_part} AXIAL".upper(),
    }


def _imaging_study(scenario: Scenario, item: Input, texts: Texts) -> Resource:
    ids = ids_for(scenario, item)
    study = scenario.case.study
    modality = {"system": DICOM_SYSTEM, "code": study.modality.upper()}
    instances = 100 + ids.number(300)
    series = {
        "uid": ids.uid(16),
        "number": 1,
        "modality": modality,
        "description": texts["series.description"],
        "numberOfInstances": instances,
        "bodySite": {"display": study.body_part.upper()},
    }
    resource = base("ImagingStudy", scenario, ids)
    resource.update(
        identifier=[{"system": "urn:dicom:uid", "value": f"urn:oid:{ids.uid(0)}"}],
        status="available",
        modality=[modality],
        started=ids.when(1),
        numberOfSeries=1,
        numberOfInstances=instances,
        procedureCode=[procedure_code(scenario.case, procedure_text(scenario.case))],
        description=texts["description"],
        series=[series],
    )
    if texts["note"]:
        resource["note"] = [{"text": texts["note"]}]
    if study.indication.strip():
        resource["reasonCode"] = [{"text": study.indication.strip()}]
    return resource


def _diagnostic_report_texts(case: Case, item: Input, body: str) -> Texts:
    sentences = " ".join(f"{finding.text.rstrip('.')}." for finding in case.findings)
    conclusion = sentences or fill_payload(item.content, "", "") or "No acute abnormality."
    return {
        "conclusion": conclusion,
        "presentedForm": body or report_from_findings(case),
        "code.text": procedure_text(case),
    }


def _diagnostic_report(scenario: Scenario, item: Input, texts: Texts) -> Resource:
    ids = ids_for(scenario, item)
    radiology = {"system": LOINC, "code": "LP29684-5", "display": "Radiology"}
    resource = base("DiagnosticReport", scenario, ids)
    resource.update(
        status="final",
        category=[{"coding": [radiology]}],
        code=procedure_code(scenario.case, texts["code.text"]),
        effectiveDateTime=ids.when(1),
        issued=ids.when(3),
        resultsInterpreter=[READER],
        conclusion=texts["conclusion"],
        presentedForm=[attachment(texts["presentedForm"], "Radiology report", ids.when(3))],
    )
    return resource


def _document_reference_texts(case: Case, item: Input, body: str) -> Texts:
    procedure = procedure_text(case)
    label = "Referral" if item.kind == "referral" else "Clinical note"
    fallback = f"{label} for {procedure}."
    if case.study.indication.strip():
        fallback += f"\nIndication: {case.study.indication.strip()}"
    return {"description": f"{label} for {procedure}", "content.attachment": body or fallback}


def _document_reference(scenario: Scenario, item: Input, texts: Texts) -> Resource:
    ids = ids_for(scenario, item)
    code, display = _DOCUMENT_TYPES[item.kind]
    title = "Referral letter" if item.kind == "referral" else "Clinical note"
    resource = base("DocumentReference", scenario, ids)
    resource.update(
        status="current",
        docStatus="final",
        type={"coding": [{"system": LOINC, "code": code, "display": display}]},
        date=ids.when(),
        author=[REFERRER],
        description=texts["description"],
        content=[{"attachment": attachment(texts["content.attachment"], title, ids.when())}],
    )
    return resource


BUILDERS: dict[str, TextBuilder] = {
    "ServiceRequest": TextBuilder(_service_request_texts, _service_request),
    "ImagingStudy": TextBuilder(_imaging_study_texts, _imaging_study),
    "DiagnosticReport": TextBuilder(_diagnostic_report_texts, _diagnostic_report),
    "DocumentReference": TextBuilder(_document_reference_texts, _document_reference),
}
