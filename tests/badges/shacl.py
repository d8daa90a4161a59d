"""SHACL validation of European Digital Credentials against the Commission's own shapes.

Offline: the JSON-LD contexts come from the files the package ships (`jsonld.StaticLoader`,
which fails on any URL it has no file for); the shapes are `EDC-generic-no-cv.ttl` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pyshacl
import rdflib
from pyld import jsonld as pyld_jsonld

from lti_tool.badges import jsonld
from tests.conftest import SPEC

SHAPES = SPEC / "elm/EDC-generic-no-cv.ttl"
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")


@cache
def shapes() -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(SHAPES, format="turtle")
    return graph


@dataclass(frozen=True)
class Report:
    conforms: bool
    violations: list[str]
    triples: int
    text: str


def validate(document: dict) -> Report:
    """Expand with the shipped contexts only, then validate (inference off, as EDC does)."""
    loader = jsonld.StaticLoader("http://127.0.0.1:1")
    nquads = pyld_jsonld.to_rdf(document, {"format": "application/n-quads",
                                           "documentLoader": loader})
    graph = rdflib.Graph()
    graph.parse(data=nquads, format="nquads")
    conforms, results, text = pyshacl.validate(graph, shacl_graph=shapes(), inference="none")
    violations = [f"{results.value(r, SH.resultPath)} on {results.value(r, SH.focusNode)}: "
                  f"{results.value(r, SH.resultMessage)}"
                  for r in results.subjects(SH.resultSeverity, SH.Violation)]
    return Report(conforms=bool(conforms), violations=violations, triples=len(graph), text=text)
