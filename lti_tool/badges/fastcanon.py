"""Fast RDFC-1.0 canonical N-Quads of the credentials the tool itself signs.

One job: give `dataintegrity` the same canonical N-Quads pyld gives (byte for byte), without
pyld's cost per document. pyld re-runs the general JSON-LD machinery on every credential:
it deep-copies the document, re-derives the active context at every node (type-scoped and
property-scoped contexts), re-expands every key and type through its IRI rules, builds an
expanded document, a node map and then dictionaries per quad, and canonicalises through
dictionaries again. The tool signs thousands of documents of a handful of shapes under the
same three contexts, so almost all of that is the same work again.

This module walks the document once, following the JSON-LD 1.1 expansion and
RDF-serialisation algorithms step for step as pyld implements them (`_expand`,
`_expand_object`, `_prepare_nested_context`, `_expand_value`, `_object_to_rdf`), but every
context-dependent answer (an active context after a type- or property-scoped context, a key's
IRI and coercion, a type's IRI) is computed once by pyld itself and memoised per active
context. It emits N-Quads strings straight away, then runs RDFC-1.0's first-degree step in
plain Python.

Whatever it is not sure of goes to pyld instead (`Unsupported`): any context list other than
the tool's own, embedded contexts, value objects, lists, language/index/graph/id/type
containers, reverse or nested properties, `@json`, blank-node identifiers in the input,
relative IRIs (which pyld would drop), undefined terms (pyld's safe mode raises), and any two
blank nodes with the same first-degree hash (RDFC-1.0's N-degree step; pyld's bounded
implementation runs it). tests/badges/test_fastcanon.py proves the output byte-identical to
pyld's on generated credentials of every shape the builder makes and on 1EdTech's vector.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from pyld import jsonld as pyld
from pyld.context_resolver import ContextResolver
from pyld.nquads import escape

from lti_tool.badges import jsonld

XSD_STRING = pyld.XSD_STRING
XSD_BOOLEAN = pyld.XSD_BOOLEAN
XSD_DOUBLE = pyld.XSD_DOUBLE
XSD_INTEGER = pyld.XSD_INTEGER
RDF_TYPE = "<" + pyld.RDF_TYPE + ">"
RDF_FIRST = "<" + pyld.RDF_FIRST + ">"
RDF_REST = "<" + pyld.RDF_REST + ">"
RDF_NIL = "<" + pyld.RDF_NIL + ">"

# The @context lists of the documents the tool signs: credentials (VC 2.0, OB 3.0.3 and the
# micro-credential extension 2.0.0), status list credentials (VC 2.0 only). The 1.x extension
# context (rooted at the deployment's URL) is accepted by its path, for old credentials.
OWN_CONTEXTS = frozenset({(jsonld.VC_V2,), (jsonld.VC_V2, jsonld.OB_V3, jsonld.EXTENSION_V2)})
# A memo stops growing past this many entries per active context (hostile input on /verify
# could otherwise make it grow without bound); lookups then just are not cached.
_MEMO_LIMIT = 4096


_MISSING = object()


def _memo(memo: dict, key: Any, compute: Callable[[], Any]) -> Any:
    """memo[key], computed once; past _MEMO_LIMIT entries computed every time instead."""
    found = memo.get(key, _MISSING)
    if found is _MISSING:
        found = compute()
        if len(memo) < _MEMO_LIMIT:
            memo[key] = found
    return found


class Unsupported(Exception):
    """The document uses something this converter leaves to pyld."""


def is_own_shape(document: dict) -> bool:
    """Whether the document's @context is one the tool issues under (the fast path's gate)."""
    context = document.get("@context")
    if not isinstance(context, list) or not all(isinstance(url, str) for url in context):
        return False
    found = tuple(context)
    if found in OWN_CONTEXTS:
        return True
    return (len(found) == 3 and found[:2] == (jsonld.VC_V2, jsonld.OB_V3)
            and found[2].endswith(jsonld.EXTENSION_PATH))


class _Engine:
    """pyld's context processing and IRI expansion for one document loader."""

    def __init__(self, loader: jsonld.DocumentLoader) -> None:
        self.processor = jsonld._Processor()
        self.options: dict[str, Any] = {
            "base": "", "documentLoader": loader, "isFrame": False,
            "keepFreeFloatingNodes": False, "extractAllScripts": False,
            "processingMode": "json-ld-1.1",
            "contextResolver": ContextResolver({}, loader)}
        self.wrapped: dict[int, _Ctx] = {}
        self.roots: dict[str, _Ctx] = {}
        self.lock = threading.Lock()
        self.initial = self.wrap(self.processor._get_initial_context(self.options))

    def wrap(self, raw: dict) -> _Ctx:
        """The one wrapper (with its memos) of a pyld active context."""
        found = self.wrapped.get(id(raw))
        if found is None or found.raw is not raw:
            found = _Ctx(self, raw)
            if len(self.wrapped) < 16 * _MEMO_LIMIT:
                self.wrapped[id(raw)] = found  # keeps raw alive, so its id stays its own
        return found

    def process(self, ctx: _Ctx, local: Any, **flags: bool) -> _Ctx:
        with self.lock:  # pyld's resolver cache is a plain dict
            raw = self.processor._process_context(ctx.raw, local, self.options, **flags)
        return self.wrap(raw)

    def root(self, local: Any) -> _Ctx:
        return _memo(self.roots, json.dumps(local, sort_keys=True),
                     lambda: self.process(self.initial, local))


class _Term:
    """What a key means under one active context (pyld's answers, computed once)."""

    __slots__ = ("iri", "predicate", "value_ctx", "container_ok", "is_list", "coercion",
                 "language", "direction", "value_keyword", "plain")

    def __init__(self, ctx: _Ctx, key: str) -> None:
        get = pyld.JsonLdProcessor.get_context_value
        raw = ctx.raw
        self.iri = ctx.engine.processor._expand_iri(raw, key, vocab=True)
        scoped = get(raw, key, "@context")
        # _expand_object: the key's scoped context, over the node's active context
        self.value_ctx = (ctx.engine.process(ctx, scoped, propagate=True, override_protected=True)
                          if scoped is not None else ctx)
        value_raw = self.value_ctx.raw
        mapping = value_raw["mappings"].get(key)
        outer = pyld.JsonLdProcessor.arrayify(get(raw, key, "@container"))
        inner = pyld.JsonLdProcessor.arrayify(get(value_raw, key, "@container"))
        # a @list container only when both contexts agree on it (pyld asks each once)
        self.is_list = "@list" in outer
        self.container_ok = (all(c in ("@set", "@list", None) for c in outer + inner)
                             and ("@list" in inner) == self.is_list
                             and not (mapping and mapping.get("reverse"))
                             and get(raw, key, "@type") != "@json")
        # _expand_value runs with the value's context (term_ctx in pyld)
        self.coercion = get(value_raw, key, "@type")
        self.language = get(value_raw, key, "@language")
        self.direction = get(value_raw, key, "@direction")
        value_key = ctx.engine.processor._expand_iri(value_raw, key, vocab=True)
        self.value_keyword = value_key is None or pyld._is_keyword(value_key)
        self.predicate = f"<{self.iri}>"
        # a text value is a plain xsd:string literal (the common case, taken without the
        # general rules below)
        self.plain = (not self.value_keyword and self.coercion in (None, "@none")
                      and self.language is None and self.direction is None)


class _Ctx:
    """One pyld active context with memos of everything the walk asks of it."""

    __slots__ = ("engine", "raw", "previous", "terms", "iris", "vocab_iris", "entered", "typed",
                 "scoped_types", "nodes", "type_key_memo", "plans")

    def __init__(self, engine: _Engine, raw: dict) -> None:
        self.engine = engine
        self.raw = raw
        previous = raw.get("previousContext")
        self.previous = engine.wrap(previous) if previous else None
        self.terms: dict[str, _Term] = {}
        self.iris: dict[str, str | None] = {}
        self.vocab_iris: dict[str, str | None] = {}
        self.entered: dict[tuple[str, bool], _Ctx] = {}
        self.typed: dict[tuple[str, ...], _Ctx] = {}
        self.scoped_types: dict[str, bool] = {}
        self.nodes: dict[tuple[str, tuple[str, ...]], _Ctx] = {}
        self.type_key_memo: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.plans: dict[tuple, _Plan] = {}

    def enter_node(self, key: str, keys: tuple[str, ...]) -> _Ctx:
        """_expand's context for a node object with these keys under `key`: a type-scoped
        context is reverted unless the node is a bare reference (pyld's rule)."""
        return _memo(self.nodes, (key, keys), lambda: self._enter_node(key, keys))

    def _enter_node(self, key: str, keys: tuple[str, ...]) -> _Ctx:
        if "@context" in keys:
            raise Unsupported("an embedded @context")
        revert = True
        if self.previous is not None and len(keys) <= 2:
            for name in sorted(keys):
                expanded = self.iri(name, True)
                if expanded == "@value":
                    raise Unsupported("a value object")
                if expanded == "@id" and len(keys) == 1:
                    revert = False
                    break
        return self.enter(key, revert)

    def type_keys(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        """The keys that expand to @type here, in pyld's (sorted) order."""
        return _memo(self.type_key_memo, keys, lambda: tuple(
            name for name in sorted(keys)
            if name != "@context" and self.iri(name, True) == "@type"))

    def plan(self, keys: tuple[str, ...], types: tuple[tuple[str, ...], ...]) -> _Plan:
        """What each key of a node with these keys and types means (this is the context the
        node was entered with, before its type-scoped contexts)."""
        def compute() -> _Plan:
            scoped = tuple(t for values in types for t in sorted(values) if self.has_scoped(t))
            return _Plan.of(self.with_types(scoped), keys)

        return _memo(self.plans, (keys, types), compute)

    def term(self, key: str) -> _Term:
        return _memo(self.terms, key, lambda: _Term(self, key))

    def iri(self, value: str, vocab: bool) -> str | None:
        return _memo(self.vocab_iris if vocab else self.iris, value,
                     lambda: self.engine.processor._expand_iri(self.raw, value, base="",
                                                               vocab=vocab))

    def enter(self, key: str, revert: bool) -> _Ctx:
        """_expand of a node object under `key`: revert a type-scoped context, then apply the
        key's property-scoped context (pyld applies it again after reverting)."""
        def compute() -> _Ctx:
            found = self.previous if (revert and self.previous is not None) else self
            scoped = pyld.JsonLdProcessor.get_context_value(self.raw, key, "@context")
            if scoped is not None:
                found = self.engine.process(found, scoped, override_protected=True)
            return found

        return _memo(self.entered, (key, revert), compute)

    def has_scoped(self, type_: str) -> bool:
        def compute() -> bool:
            scoped = pyld.JsonLdProcessor.get_context_value(self.raw, type_, "@context")
            return scoped is not None and scoped is not False

        return _memo(self.scoped_types, type_, compute)

    def with_types(self, types: tuple[str, ...]) -> _Ctx:
        """_prepare_nested_context: each type's scoped context, not propagated (types in the
        order pyld applies them, looked up in this context, the type-scoped one)."""
        def compute() -> _Ctx:
            found = self
            for type_ in types:
                scoped = pyld.JsonLdProcessor.get_context_value(self.raw, type_, "@context")
                found = self.engine.process(found, scoped, propagate=False)
            return found

        return _memo(self.typed, types, compute) if types else self


_ID, _TYPE, _PROPERTY, _REFUSED = range(4)


class _Plan(NamedTuple):
    """A node shape under one context: its active context, the key of its @id, and per
    other key its role (rdf:type, a property with its term, or why pyld must do it)."""

    active: _Ctx
    id_key: str | None
    props: tuple[tuple[str, int, Any], ...]

    @classmethod
    def of(cls, active: _Ctx, keys: tuple[str, ...]) -> _Plan:
        id_key = None
        props: list[tuple[str, int, Any]] = []
        for name in keys:
            if name == "@context":
                continue
            term = active.term(name)
            iri = term.iri
            if iri == "@id":
                if id_key is not None:
                    raise Unsupported("colliding @id keys")
                id_key = name
            elif iri == "@type":
                props.append((name, _TYPE, None))
            elif iri is None or iri.startswith("@") or iri.startswith("_:"):
                props.append((name, _REFUSED, f"the keyword or undefined term {name!r}"))
            elif not pyld._is_absolute_iri(iri):  # pyld's safe mode raises
                props.append((name, _REFUSED, f"the undefined term {name!r}"))
            elif not term.container_ok:
                props.append((name, _REFUSED, f"the container, reverse or @json term {name!r}"))
            else:
                props.append((name, _PROPERTY, term))
        return cls(active, id_key, tuple(props))


_ENGINES: dict[int, tuple[jsonld.DocumentLoader, _Engine]] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(loader: jsonld.DocumentLoader) -> _Engine:
    found = _ENGINES.get(id(loader))
    if found is None or found[0] is not loader:
        with _ENGINES_LOCK:
            if len(_ENGINES) > 64:
                _ENGINES.clear()
            found = (loader, _Engine(loader))
            _ENGINES[id(loader)] = found
    return found[1]


def _absolute(iri: str | None) -> str:
    """An absolute IRI as pyld emits it; anything pyld would drop or treat as a blank node
    goes to pyld."""
    if iri is None or iri.startswith("_:") or not pyld._is_absolute_iri(iri):
        raise Unsupported(f"not an absolute IRI: {iri!r}")
    return iri


def _literal(value: Any, datatype: str | None, language: str | None) -> str:
    """_object_to_rdf of a value object, serialised as pyld's serialize_nquad does."""
    if type(value) is str and datatype != XSD_DOUBLE:  # text: the branches pyld takes for it
        text = '"' + escape(value) + '"'
        if language is not None and datatype is None:
            return text + ("@" + language if language else "")
        return text if datatype in (None, XSD_STRING) else text + "^^<" + datatype + ">"
    if isinstance(value, bool):
        lexical, datatype = ("true" if value else "false"), datatype or XSD_BOOLEAN
    elif pyld._is_double(value):
        lexical, datatype = pyld._canonicalize_double(value), datatype or XSD_DOUBLE
    elif datatype == XSD_DOUBLE:
        try:
            lexical = pyld._canonicalize_double(float(value))
        except (TypeError, ValueError):
            lexical = value
    elif pyld._is_integer(value) and abs(value) >= 1e21:
        lexical, datatype = pyld._canonicalize_double(value), datatype or XSD_DOUBLE
    elif pyld._is_integer(value):
        lexical, datatype = str(int(value)), datatype or XSD_INTEGER
    elif language is not None:
        return '"' + escape(value) + '"' + ("@" + language if language else "")
    else:
        lexical, datatype = value, datatype or XSD_STRING
    if not isinstance(lexical, str):
        raise Unsupported("a literal that is not text")
    text = '"' + escape(lexical) + '"'
    return text if datatype == XSD_STRING else text + "^^<" + datatype + ">"


class _Walk:
    """One document's quads (subject, predicate, object, each serialised)."""

    def __init__(self) -> None:
        self.quads: set[tuple[str, str, str]] = set()
        self.blank = 0

    def node(self, ctx: _Ctx, key: str | None, element: dict) -> str:
        """_expand of a node object `element` given under `key` with term context `ctx`;
        its quads go to self.quads, and its subject is returned."""
        if not element:
            raise Unsupported("an empty object")
        keys = tuple(element)
        if key is None:  # the top-level object: its own @context, nothing to revert
            if "@context" not in element:
                raise Unsupported("no @context")
            entered = ctx.engine.root(element["@context"])
        else:
            entered = ctx.enter_node(key, keys)
        types = []
        for name in entered.type_keys(keys):
            values = element[name]
            values = tuple(values) if isinstance(values, list) else (values,)
            if not all(isinstance(t, str) for t in values):
                raise Unsupported("a type that is not a string")
            types.append(values)
        plan = entered.plan(keys, tuple(types))
        if plan.id_key is not None:
            value = element[plan.id_key]
            if not isinstance(value, str):
                raise Unsupported("an @id that is not a string")
            subject = "<" + _absolute(plan.active.iri(value, False)) + ">"
        else:
            subject = f"_:b{self.blank}"
            self.blank += 1
        emitted = False
        quads = self.quads
        for name, kind, term in plan.props:
            value = element[name]
            if kind == _PROPERTY:
                if term.is_list:
                    quads.add((subject, term.predicate, self.rdf_list(term, name, value)))
                    emitted = True
                    continue
                for item in value if isinstance(value, list) else (value,):
                    if item is None:
                        continue
                    if type(item) is str and term.plain:
                        obj = '"' + escape(item) + '"'
                    else:
                        obj = self.item(term, name, item)
                    quads.add((subject, term.predicate, obj))
                    emitted = True
            elif kind == _TYPE:
                for type_ in value if isinstance(value, list) else (value,):
                    quads.add((subject, RDF_TYPE,
                               "<" + _absolute(entered.iri(type_, True)) + ">"))
                    emitted = True
            else:
                raise Unsupported(term)
        if key is None and not emitted:
            raise Unsupported("a top-level object without statements")
        return subject

    def item(self, term: _Term, name: str, item: Any) -> str:
        """The RDF object of one value of a property."""
        if isinstance(item, dict):
            return self.node(term.value_ctx, name, item)
        if isinstance(item, list):
            raise Unsupported("a list inside a list")
        return self.scalar(term, item)

    def rdf_list(self, term: _Term, name: str, value: Any) -> str:
        """_list_to_rdf: rdf:first / rdf:rest from a fresh blank node per entry, rdf:nil
        at the end (and for an empty list)."""
        objects = [self.item(term, name, entry)
                   for entry in (value if isinstance(value, list) else [value])
                   if entry is not None]
        rest = RDF_NIL
        for obj in reversed(objects):
            cell = f"_:b{self.blank}"
            self.blank += 1
            self.quads.add((cell, RDF_FIRST, obj))
            self.quads.add((cell, RDF_REST, rest))
            rest = cell
        return rest

    @staticmethod
    def scalar(term: _Term, value: Any) -> str:
        """_expand_value then _object_to_rdf of a scalar under `term`."""
        if term.value_keyword:
            raise Unsupported("a value of a keyword alias")
        coercion = term.coercion
        value_ctx = term.value_ctx
        if isinstance(value, str) and coercion in ("@id", "@vocab"):
            return "<" + _absolute(value_ctx.iri(value, coercion == "@vocab")) + ">"
        if not isinstance(value, str | bool | int | float):
            raise Unsupported("a value that is not JSON")
        if coercion is not None and coercion not in ("@id", "@vocab", "@none"):
            if coercion == "@json" or coercion.startswith("_:") or \
                    not pyld._is_absolute_iri(coercion):
                raise Unsupported(f"the datatype {coercion!r}")
            return _literal(value, coercion, None)
        if isinstance(value, str):
            if term.direction is not None:
                raise Unsupported("a base direction")
            return _literal(value, None, term.language)
        return _literal(value, None, None)


def to_quads(document: dict, loader: jsonld.DocumentLoader) -> set[tuple[str, str, str]]:
    """The document's RDF (default graph) as serialised (subject, predicate, object) triples,
    or Unsupported. Blank node labels are arbitrary (`_:bN`)."""
    if not isinstance(document, dict):
        raise Unsupported("not a JSON object")
    walk = _Walk()
    try:
        walk.node(_engine(loader).initial, None, document)
    except RecursionError:
        raise Unsupported("nested too deeply") from None
    except jsonld.ContextNotAvailable:
        raise
    except pyld.JsonLdError as exc:
        raise Unsupported(f"pyld refused a context: {exc}") from None
    return walk.quads


Quad = tuple[str, str, str]


class _Issuer:
    """RDFC-1.0's identifier issuer (prefix, counter, issued map in order)."""

    __slots__ = ("prefix", "existing", "order")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.existing: dict[str, str] = {}
        self.order: list[str] = []

    def issue(self, old: str) -> str:
        found = self.existing.get(old)
        if found is None:
            found = self.existing[old] = f"{self.prefix}{len(self.order)}"
            self.order.append(old)
        return found

    def copy(self) -> _Issuer:
        twin = _Issuer(self.prefix)
        twin.existing = dict(self.existing)
        twin.order = list(self.order)
        return twin


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Canonicalizer:
    """RDFC-1.0 (URDNA2015) over serialised default-graph quads, step for step as pyld's
    URDNA2015 class runs it, with a work budget for untrusted input."""

    def __init__(self, quads: set[Quad], limits: jsonld.CanonicalizationLimits | None) -> None:
        self.quads = quads
        self.mentions: dict[str, list[Quad]] = {}
        for quad in quads:
            s, _p, o = quad
            if s[0] == "_":
                self.mentions.setdefault(s, []).append(quad)
            if o[0] == "_":  # twice for a blank node that is subject and object, as in pyld
                self.mentions.setdefault(o, []).append(quad)
        self.first: dict[str, str] = {}
        self.canonical = _Issuer("_:c14n")
        self.budget = jsonld.WorkBudget(limits) if limits is not None else None

    def first_degree(self, blank: str) -> str:
        found = self.first.get(blank)
        if found is None:
            lines = []
            for s, p, o in self.mentions[blank]:
                if s[0] == "_":
                    s = "_:a" if s == blank else "_:z"
                if o[0] == "_":
                    o = "_:a" if o == blank else "_:z"
                lines.append(f"{s} {p} {o} .\n")
            lines.sort()
            found = self.first[blank] = _sha256("".join(lines))
        return found

    def related_hash(self, related: str, predicate: str, issuer: _Issuer, position: str) -> str:
        if related in self.canonical.existing:
            label = self.canonical.existing[related]
        elif related in issuer.existing:
            label = issuer.existing[related]
        else:
            label = self.first_degree(related)
        return _sha256(position + predicate + label)

    def n_degree(self, blank: str, issuer: _Issuer) -> tuple[str, _Issuer]:
        if self.budget is not None:
            self.budget.spend()
        related: dict[str, list[str]] = {}
        for s, p, o in self.mentions[blank]:
            if s[0] == "_" and s != blank:
                related.setdefault(self.related_hash(s, p, issuer, "s"), []).append(s)
            if o[0] == "_" and o != blank:
                related.setdefault(self.related_hash(o, p, issuer, "o"), []).append(o)
        data = []
        for hash_, nodes in sorted(related.items()):
            data.append(hash_)
            chosen_path = ""
            chosen_issuer: _Issuer | None = None
            for permutation in itertools.permutations(nodes):
                issuer_copy = issuer.copy()
                path = ""
                recursion = []
                skip = False
                for node in permutation:
                    if node in self.canonical.existing:
                        path += self.canonical.existing[node]
                    else:
                        if node not in issuer_copy.existing:
                            recursion.append(node)
                        path += issuer_copy.issue(node)
                    if chosen_path and len(path) >= len(chosen_path) and path > chosen_path:
                        skip = True
                        break
                if skip:
                    continue
                for node in recursion:
                    result_hash, issuer_copy = self.n_degree(node, issuer_copy)
                    path += issuer_copy.issue(node) + "<" + result_hash + ">"
                    if chosen_path and len(path) >= len(chosen_path) and path > chosen_path:
                        skip = True
                        break
                if skip:
                    continue
                if not chosen_path or path < chosen_path:
                    chosen_path, chosen_issuer = path, issuer_copy
            data.append(chosen_path)
            assert chosen_issuer is not None
            issuer = chosen_issuer
        return _sha256("".join(data)), issuer

    def run(self) -> str:
        by_hash: dict[str, list[str]] = {}
        for blank in self.mentions:
            by_hash.setdefault(self.first_degree(blank), []).append(blank)
        tied = []
        for _hash, blanks in sorted(by_hash.items()):
            if len(blanks) == 1:
                self.canonical.issue(blanks[0])
            else:
                tied.append(blanks)
        for blanks in tied:
            paths = []
            for blank in blanks:
                if blank in self.canonical.existing:
                    continue
                issuer = _Issuer("_:b")
                issuer.issue(blank)
                paths.append(self.n_degree(blank, issuer))
            for _hash, issuer in sorted(paths, key=lambda result: result[0]):
                for existing in issuer.order:
                    self.canonical.issue(existing)
        label = self.canonical.existing
        lines = []
        for s, p, o in self.quads:
            if s[0] == "_":
                s = label[s]
            if o[0] == "_":
                o = label[o]
            lines.append(f"{s} {p} {o} .\n")
        lines.sort()
        return "".join(lines)


def canonical_nquads(quads: set[Quad],
                     limits: jsonld.CanonicalizationLimits | None = None) -> str:
    """RDFC-1.0 canonical N-Quads of a default-graph dataset of serialised quads."""
    return _Canonicalizer(quads, limits).run()


def blank_nodes(quads: set[tuple[str, str, str]]) -> int:
    return len({t for s, _p, o in quads for t in (s, o) if t[0] == "_"})


def canonicalize(document: dict, loader: jsonld.DocumentLoader,
                 limits: jsonld.CanonicalizationLimits | None = None) -> str:
    """RDFC-1.0 canonical N-Quads, identical to `jsonld.canonicalize`: fast for the tool's own
    shapes, pyld (bounded by `limits` when given) for everything else. With `limits`, the
    fast path refuses what pyld's bounded path refuses (CanonicalizationRefused)."""
    if is_own_shape(document):
        try:
            quads = to_quads(document, loader)
        except Unsupported:
            pass
        else:
            if limits is not None:
                jsonld.check_size(len(quads), blank_nodes(quads), limits)
            return canonical_nquads(quads, limits)
    return jsonld.canonicalize(document, loader, limits)
