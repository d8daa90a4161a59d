"""JSON-LD processing that never touches the network.

Verifiers and signers must agree on the RDF a credential means, so every context comes from a
file shipped in `lti_tool/badges/contexts/` (copies of the standards' contexts plus the tool's own
micro-credential extension context). A URL without a file fails loudly instead of being fetched.
Processed contexts are cached by pyld per URL, which is what makes repeated signing cheap.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from pyld import jsonld

from lti_tool.errors import ToolError

CONTEXT_DIR = Path(__file__).resolve().parent / "contexts"
VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
DID_V1 = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
# The extension context of credentials issued before 2.0.0: rooted at each deployment's own
# URL, so two deployments named the same concept differently. Kept so that those credentials
# stay verifiable; nothing new uses it.
EXTENSION_PATH = "/contexts/microcredential-v1.jsonld"
EXTENSION_FILE = "microcredential-v1.jsonld"
# The one extension context of the EU micro-credential terms (Council Recommendation
# 2022/C 243/02, Annex I) that OB 3.0 lacks: a stable, version-pinned URL that does not depend
# on the deployment. The file ships in the package (the loaders never fetch it); a changed
# term gets a new version and a new URL, never an edit of this file.
EXTENSION_V2 = "https://w3id.org/lti-microcredentials/contexts/microcredential-2.0.0.jsonld"
EXTENSION_V2_FILE = "microcredential-2.0.0.jsonld"
EXTENSION_V2_PATH = "/contexts/microcredential-2.0.0.jsonld"
EXTENSION_TERMS = ("notionalWorkloadHours", "assessmentType", "participationForm",
                   "learningSetting", "supervisionVerification", "qfEheaCycle",
                   "qualityAssurance", "awardingBodyCountry", "awardingBodyRegion",
                   "coAwardingBody", "prerequisites", "stackability", "recognition",
                   "furtherInformation")

DocumentLoader = Callable[[str, dict | None], dict]


class ContextNotAvailable(Exception):
    """A JSON-LD document was asked for that the tool does not ship (it never fetches)."""


@lru_cache(maxsize=1)
def _standard_contexts() -> dict[str, dict]:
    index = json.loads((CONTEXT_DIR / "index.json").read_text())
    found = {url: json.loads((CONTEXT_DIR / name).read_text()) for url, name in index.items()}
    found[EXTENSION_V2] = extension_v2_context()
    return found


@lru_cache(maxsize=1)
def extension_v2_context() -> dict:
    """The shipped extension context (version 2.0.0), as published at EXTENSION_V2."""
    return json.loads((CONTEXT_DIR / EXTENSION_V2_FILE).read_text())


def extension_url(base_url: str) -> str:
    """The URL of the old (1.x) extension context on this deployment (old credentials)."""
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


class DroppedProperty(ValueError):
    """A property that no context defines would vanish from the signed RDF (safe mode)."""


def _refuse_drop(expanded_property: str) -> None:
    raise DroppedProperty(f"property {expanded_property!r} is not defined by any context")


# Child contexts pyld makes for type-scoped (non-propagating) contexts, one per parent context.
_NON_PROPAGATING: LRUCache = LRUCache(maxsize=512)
_NON_PROPAGATING_LOCK = threading.Lock()


class _Processor(jsonld.JsonLdProcessor):
    """pyld with two additions: safe mode, and caching of type-scoped context processing.

    Safe mode: like jsonld.js in Data Integrity suites, an undefined property is an error
    instead of being silently dropped (which would leave it unsigned).

    Caching: pyld caches a processed context per (context, active context id), but before a
    type-scoped context it clones the active context into a child with a fresh id, so those
    lookups always miss and every Achievement, Result and rubric level re-processes its OB 3.0
    context. Reusing one child per parent (the clone is a pure function of the parent, and pyld
    never mutates it: further definitions go into a new clone) makes them hit.
    """

    def __init__(self) -> None:
        super().__init__(on_property_dropped=_refuse_drop)

    def _process_context(self, active_ctx, local_ctx, options,
                         override_protected=False, propagate=True, validate_scoped=True,
                         cycles=None):
        if (not propagate and not active_ctx.get("previousContext") and "_uuid" in active_ctx
                and isinstance(local_ctx, dict) and "@propagate" not in local_ctx):
            with _NON_PROPAGATING_LOCK:
                child = _NON_PROPAGATING.get(active_ctx["_uuid"])
                if child is None:
                    child = self._clone_active_context(active_ctx)
                    child["previousContext"] = active_ctx
                    child["_uuid"] = "np-" + active_ctx["_uuid"]
                    _NON_PROPAGATING[active_ctx["_uuid"]] = child
            active_ctx = child
        return super()._process_context(active_ctx, local_ctx, options, override_protected,
                                        propagate, validate_scoped, cycles)


def expand(document: dict, loader: DocumentLoader) -> list[dict[str, Any]]:
    return _Processor().expand(document, {"documentLoader": loader})


def to_nquads(document: dict, loader: DocumentLoader) -> str:
    """The document's RDF as N-Quads, not canonicalized (input to other canonicalizers)."""
    return _Processor().to_rdf(document, {"format": "application/n-quads",
                                          "documentLoader": loader})


@dataclass(frozen=True)
class CanonicalizationLimits:
    """What canonicalising one untrusted document may cost (POST /verify).

    RDFC-1.0 is exponential in the size of groups of blank nodes it cannot tell apart (a
    clique of 8 took 47 s): `max_work` bounds the calls of its Hash N-Degree Quads step, which
    a credential whose blank nodes each have a distinct first-degree hash never makes.
    """

    max_quads: int = 2000
    max_blank_nodes: int = 200
    max_work: int = 2000
    seconds: float = 5.0


class CanonicalizationRefused(ToolError):
    """The document would cost more canonicalisation than the limits allow."""

    status = 422
    code = "credential_too_complex"

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message, details={"limit": limit})
        self.limit = limit


def check_size(quads: int, blank_nodes: int, limits: CanonicalizationLimits) -> None:
    """Refuse a dataset with more statements or blank nodes than the limits allow."""
    if quads > limits.max_quads:
        raise CanonicalizationRefused(
            f"The credential has {quads} RDF statements; this verifier checks at most "
            f"{limits.max_quads}.", limit="quads")
    if blank_nodes > limits.max_blank_nodes:
        raise CanonicalizationRefused(
            f"The credential has {blank_nodes} blank nodes; this verifier checks at most "
            f"{limits.max_blank_nodes}.", limit="blank_nodes")


class WorkBudget:
    """The calls of RDFC-1.0's Hash N-Degree Quads step and the time one document may cost."""

    def __init__(self, limits: CanonicalizationLimits) -> None:
        self.limits = limits
        self.work = 0
        self.ends = time.monotonic() + limits.seconds

    def spend(self) -> None:
        self.work += 1
        if self.work > self.limits.max_work:
            raise CanonicalizationRefused(
                "The credential's blank nodes are too alike to canonicalise within the work "
                "this verifier allows (it is built to be expensive, not to be verified).",
                limit="work")
        if time.monotonic() > self.ends:
            raise CanonicalizationRefused(
                f"Canonicalising the credential took longer than {self.limits.seconds:g} s.",
                limit="time")


class _BoundedURDNA2015(jsonld.URDNA2015):
    def __init__(self, limits: CanonicalizationLimits) -> None:
        super().__init__()
        self.limits = limits
        self.budget = WorkBudget(limits)

    @property
    def work(self) -> int:
        return self.budget.work

    def main(self, dataset, options):
        quads = sum(len(triples) for triples in dataset.values())
        blank = {component["value"] for triples in dataset.values() for quad in triples
                 for key, component in quad.items()
                 if key != "predicate" and component.get("type") == "blank node"}
        blank.update(name for name in dataset if name.startswith("_:"))
        check_size(quads, len(blank), self.limits)
        return super().main(dataset, options)

    def hash_n_degree_quads(self, id_, issuer):
        self.budget.spend()
        return super().hash_n_degree_quads(id_, issuer)


def canonicalize(document: dict, loader: DocumentLoader,
                 limits: CanonicalizationLimits | None = None) -> str:
    """RDFC-1.0 (URDNA2015) canonical N-Quads with pyld, in safe mode; with `limits`, refused
    (CanonicalizationRefused) past them."""
    options = {"algorithm": "URDNA2015", "format": "application/n-quads",
               "documentLoader": loader}
    if limits is None:
        return _Processor().normalize(document, options)
    # What pyld's normalize does, with the bounded algorithm.
    dataset = _Processor().to_rdf(document, {
        "documentLoader": loader, "base": "", "extractAllScripts": True,
        "processingMode": "json-ld-1.1", "produceGeneralizedRdf": False})
    return _BoundedURDNA2015(limits).main(dataset, options)


def canonicalize_plain(document: dict, loader: DocumentLoader) -> str:
    """The same with unmodified pyld (the benchmark's and tests' reference)."""
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
