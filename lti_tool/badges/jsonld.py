"""JSON-LD processing that never touches the network.

Verifiers and signers must agree on the RDF a credential means, so every context comes from a
file shipped in `lti_tool/badges/contexts/` (copies of the standards' contexts plus the tool's own
micro-credential extension context). A URL without a file fails loudly instead of being fetched.
Processed contexts are cached by pyld per URL, which is what makes repeated signing cheap.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from pyld import jsonld

CONTEXT_DIR = Path(__file__).resolve().parent / "contexts"
VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
DID_V1 = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
EXTENSION_PATH = "/contexts/microcredential-v1.jsonld"
EXTENSION_FILE = "microcredential-v1.jsonld"
EXTENSION_TERMS = ("notionalWorkloadHours", "assessmentType", "participationForm",
                   "qualityAssurance", "awardingBodyCountry", "stackability")

DocumentLoader = Callable[[str, dict | None], dict]


class ContextNotAvailable(Exception):
    """A JSON-LD document was asked for that the tool does not ship (it never fetches)."""


@lru_cache(maxsize=1)
def _standard_contexts() -> dict[str, dict]:
    index = json.loads((CONTEXT_DIR / "index.json").read_text())
    return {url: json.loads((CONTEXT_DIR / name).read_text()) for url, name in index.items()}


def extension_url(base_url: str) -> str:
    """The stable URL of the tool's extension context on this deployment."""
    return base_url.rstrip("/") + EXTENSION_PATH


@lru_cache(maxsize=16)
def _extension_text(base_url: str) -> str:
    vocab = extension_url(base_url) + "#"
    return (CONTEXT_DIR / EXTENSION_FILE).read_text().replace("__VOCAB__", vocab)


def extension_context(base_url: str) -> dict:
    """The extension context document, its term IRIs rooted at the deployment's own URL."""
    return json.loads(_extension_text(base_url))


class StaticLoader:
    """pyld document loader over the shipped contexts; unknown URLs are an error."""

    def __init__(self, base_url: str, extra: dict[str, dict] | None = None) -> None:
        self.documents: dict[str, dict] = dict(_standard_contexts())
        self.documents[extension_url(base_url)] = extension_context(base_url)
        self.documents.update(extra or {})

    def __call__(self, url: str, options: dict | None = None) -> dict:
        try:
            document = self.documents[url]
        except KeyError:
            raise ContextNotAvailable(f"no local copy of JSON-LD document {url}") from None
        # tag "static" lets pyld keep the resolved context across operations (its cache key).
        return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(document),
                "tag": "static"}


@lru_cache(maxsize=16)
def loader_for(base_url: str) -> StaticLoader:
    """One loader per deployment URL, so pyld's per-URL context cache stays warm."""
    return StaticLoader(base_url)


def expand(document: dict, loader: DocumentLoader) -> list[dict[str, Any]]:
    return jsonld.expand(document, {"documentLoader": loader})


def to_nquads(document: dict, loader: DocumentLoader) -> str:
    """The document's RDF as N-Quads, not canonicalized (input to other canonicalizers)."""
    return jsonld.to_rdf(document, {"format": "application/n-quads", "documentLoader": loader})


def canonicalize(document: dict, loader: DocumentLoader) -> str:
    """RDFC-1.0 (URDNA2015) canonical N-Quads, with pyld."""
    return jsonld.normalize(document, {"algorithm": "URDNA2015",
                                       "format": "application/n-quads",
                                       "documentLoader": loader})


def canonicalize_oxigraph(document: dict, loader: DocumentLoader) -> str:
    """RDFC-1.0 canonical N-Quads, JSON-LD to RDF by pyld and canonicalization by pyoxigraph.

    Used by the benchmark to compare engines; the signer uses `canonicalize`.
    """
    import pyoxigraph as ox

    dataset = ox.Dataset(ox.parse(to_nquads(document, loader), format=ox.RdfFormat.N_QUADS))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return "".join(sorted(f"{quad} .\n" for quad in dataset))
