"""Sample facts for the builder: a two-outcome micro-credential with Turkish text and newlines."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from lti_tool.badges.builder import (
    AchievementFacts,
    AwardFacts,
    BodyFacts,
    IssuerFacts,
    LevelFacts,
    OutcomeFacts,
    RecipientFacts,
)

BASE = "http://127.0.0.1:8000"
LEVELS = (LevelFacts("novice", "Novice", Decimal(0), "Not yet"),
          LevelFacts("competent", "Competent", Decimal(60), "Meets the outcome"),
          LevelFacts("expert", "Expert", Decimal("85.5"), "Exceeds it"))

FACTS = AchievementFacts(
    key="7", code="DATA-101", version=2, title="Veri Analizi: Temeller",
    description="Cleaning and analysing data sets.\nİki satır açıklama.", language="tr",
    eqf_level=5, tqf_level=5, workload_hours=Decimal("27.5"), ects=Decimal("2.5"),
    field_of_study="Data science", assessment_methods=("Project report", "Quiz"),
    participation_form="online", quality_assurance="Reviewed by the MC Office yearly",
    stackability="Counts towards the Data Analyst pathway", isced_f_code="0542",
    recognition="Recognised as 2.5 ECTS in the BSc Economics",
    prerequisites="Basic spreadsheet skills", supervision="unsupervised_no_id",
    qf_ehea_cycle="first", learning_setting="non_formal", region="İzmir",
    co_awarding_bodies=(BodyFacts("Hochschule Beispiel", "DE", "DE123456789",
                                  "https://www.hs-beispiel.de"),),
    further_information="See https://www.example.edu/mc/data-101", overall_result="lowest_level",
    outcomes=(
        OutcomeFacts("LO1", "Clean a data set.", LEVELS, "competent", "skill"),
        OutcomeFacts("LO2", "Explain \"tidy\" data.", LEVELS, "competent", "knowledge"),
    ),
)
ISSUER = IssuerFacts(id=f"{BASE}/issuers/institution", name="Example University",
                     url="https://www.example.edu", country="TR", email="mc@example.edu",
                     region="Ege", legal_identifier="TR-0123456789")
RECIPIENT = RecipientFacts(name="Ayşe Yılmaz", email="Ayse@Example.edu")
AWARD = AwardFacts(credential_id=f"{BASE}/credentials/abc", subject_id="urn:uuid:1234",
                   issued_at=datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
                   passed_at=datetime(2026, 4, 30, 9, 0, tzinfo=UTC),
                   outcome_levels={"LO1": "expert", "LO2": "competent"}, salt="s4lt")
