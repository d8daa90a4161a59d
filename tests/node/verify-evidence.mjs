// An independent verifier of one learner's evidence export (tests only): Node's own crypto,
// nothing from the tool. Usage: node verify-evidence.mjs EXPORT.json JWKS.json
// Prints {"verified": bool, "errors": [...], "records": n, "segments": n} and exits 0.
import { createHash, createPublicKey, verify } from "node:crypto";
import { readFileSync } from "node:fs";

const sha256 = (text) => createHash("sha256").update(text, "utf8").digest("hex");
const b64url = (text) => Buffer.from(text, "base64url");
const data = JSON.parse(readFileSync(process.argv[2], "utf8"));
const jwks = JSON.parse(readFileSync(process.argv[3], "utf8"));
const errors = [];
const keys = new Map(jwks.keys.map((k) => [k.kid, createPublicKey({ key: k, format: "jwk" })]));
const orEmpty = (v) => (v === null || v === undefined ? "" : String(v));

// Sorted-key JSON without whitespace: the tool's canonical form for these payloads.
const canonical = (value) => {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
};

const links = new Map();
for (const segment of data.segments) for (const link of segment.links) links.set(link.seq, link);

for (const record of data.records) {
  const where = `record seq ${record.seq}`;
  if (record.payload !== null) {
    if (canonical(record.payload) !== record.canonical) errors.push(`${where}: payload is not its canonical text`);
    if (sha256(record.canonical) !== record.content_hash) errors.push(`${where}: payload does not match its content hash`);
  }
  const body = sha256(`${record.event}\n${orEmpty(record.person_id)}\n${orEmpty(record.offering_id)}\n${record.content_hash}`);
  const link = links.get(record.seq);
  if (!link) errors.push(`${where}: no signed segment covers it`);
  else if (link.body !== body || link.hash !== record.hash || link.prev_hash !== record.prev_hash) {
    errors.push(`${where}: differs from its link in the chain`);
  }
}

for (const segment of data.segments) {
  let previous = null;
  for (const link of segment.links) {
    if (previous && (link.seq !== previous.seq + 1 || link.prev_hash !== previous.hash)) {
      errors.push(`segment ${segment.from}-${segment.to}: broken at seq ${link.seq}`);
    }
    if (sha256(`lti-tool-evidence/2\n${link.prev_hash}\n${link.seq}\n${link.body}`) !== link.hash) {
      errors.push(`segment ${segment.from}-${segment.to}: link seq ${link.seq} does not match its hash`);
    }
    previous = link;
  }
  const cp = segment.checkpoint;
  const [header, payload, signature] = cp.jws.split(".");
  const protectedHeader = JSON.parse(b64url(header).toString("utf8"));
  const statementText = b64url(payload).toString("utf8");
  const statement = JSON.parse(statementText);
  const key = keys.get(protectedHeader.kid);
  if (protectedHeader.alg !== "EdDSA" || !key) {
    errors.push(`checkpoint #${cp.number}: no Ed25519 key ${protectedHeader.kid}`);
    continue;
  }
  if (!verify(null, Buffer.from(`${header}.${payload}`, "ascii"), key, b64url(signature))) {
    errors.push(`checkpoint #${cp.number}: signature does not verify`);
  }
  if (statementText !== cp.statement) errors.push(`checkpoint #${cp.number}: signs another statement`);
  if (!previous || statement.seq !== previous.seq || statement.head !== previous.hash) {
    errors.push(`segment ${segment.from}-${segment.to}: does not end at the signed head of checkpoint #${cp.number}`);
  }
}

process.stdout.write(JSON.stringify({ verified: errors.length === 0, errors, records: data.records.length, segments: data.segments.length }));
