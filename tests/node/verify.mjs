// Independent verifiers for the tool's credentials, run offline by tests/badges/test_node_verifiers.py.
// Usage: node verify.mjs BUNDLE.json  ->  prints one JSON result per case.
// Data Integrity: @digitalbazaar/vc + data-integrity + eddsa-rdfc-2022-cryptosuite (JSON-LD safe
// mode); status: @digitalbazaar/vc-bitstring-status-list; VC-JWT: jose plus the OB 3.0 claim rules.
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import {decodeProtectedHeader, importJWK, jwtVerify} from 'jose';

const bundle = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const documents = {...bundle.documents};
const index = JSON.parse(readFileSync(join(bundle.contextDir, 'index.json'), 'utf8'));
for(const [url, file] of Object.entries(index)) {
  documents[url] = JSON.parse(readFileSync(join(bundle.contextDir, file), 'utf8'));
}

// Offline loader: what an HTTP fetch would return; a fragment URL picks the entry it names.
async function documentLoader(url) {
  const [base, fragment] = url.split('#');
  const document = documents[base];
  if(document === undefined) {
    throw new Error(`offline loader has no document for ${url}`);
  }
  if(!fragment) {
    return {contextUrl: null, documentUrl: url, document};
  }
  const method = (document.verificationMethod || []).find(m => m.id === url);
  if(!method) {
    throw new Error(`${base} lists no verification method ${url}`);
  }
  return {contextUrl: null, documentUrl: url,
    document: {'@context': document['@context'], ...method}};
}

const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
const statusChecker = async ({credential}) => checkStatus({
  credential, documentLoader, suite, verifyBitstringStatusListCredential: true,
  verifyMatchingIssuers: true
});

function messages(error) {
  if(!error) {
    return [];
  }
  const list = error.errors || [error];
  return list.flatMap(e => [e.message, ...messages(e.cause),
    ...(e.errors && e.errors !== list ? messages(e) : [])]);
}

async function verifyStatus(credential) {
  const result = await statusChecker({credential});
  if(!result.verified) {
    return {ok: false, errors: messages(result.error)};
  }
  return {ok: !result.results?.[0]?.status && result.verified,
    revoked: Boolean(result.results?.some(r => r.status))};
}

async function verifyDataIntegrity(credential) {
  const result = await vc.verifyCredential({credential, suite, documentLoader,
    checkStatus: statusChecker});
  const revoked = Boolean(result.statusResult?.results?.some(r => r.status));
  return {verified: result.verified && !revoked, revoked,
    errors: messages(result.error)};
}

const epoch = value => Math.floor(Date.parse(value) / 1000);

function claimProblems(header, payload) {
  const problems = [];
  const allowed = new Set(['alg', 'kid', 'typ', 'jwk']);
  for(const key of Object.keys(header)) {
    if(!allowed.has(key)) problems.push(`header field ${key} not allowed`);
  }
  if(header.typ !== undefined && header.typ !== 'JWT') problems.push('typ must be JWT');
  const issuer = typeof payload.issuer === 'object' ? payload.issuer.id : payload.issuer;
  if(payload.iss !== issuer) problems.push('iss must be issuer.id');
  if(payload.jti !== payload.id) problems.push('jti must be the credential id');
  if(payload.nbf !== epoch(payload.validFrom)) problems.push('nbf must be validFrom');
  if(payload.sub !== payload.credentialSubject?.id) problems.push('sub must be credentialSubject.id');
  if(payload.validUntil ? payload.exp !== epoch(payload.validUntil) : payload.exp !== undefined) {
    problems.push('exp must be validUntil');
  }
  return problems;
}

async function verifyJwt(token) {
  const header = decodeProtectedHeader(token);
  // The kid is a URL that dereferences to the public JWK; it must be in the published JWKS too.
  const published = documents[bundle.jwksUrl];
  const named = documents[header.kid];
  if(!named || !published.keys.some(k => k.kid === named.kid && k.n === named.n && k.x === named.x)) {
    return {verified: false, errors: [`kid ${header.kid} does not resolve to a published key`]};
  }
  let payload;
  try {
    // OB 3.0: the kid URL dereferences to the JWK; verify with exactly that key.
    const key = await importJWK(named, header.alg);
    ({payload} = await jwtVerify(token, key, {algorithms: ['RS256', 'EdDSA', 'ES256'], typ: 'JWT'}));
  } catch(error) {
    return {verified: false, expired: error.code === 'ERR_JWT_EXPIRED', errors: [error.message]};
  }
  const problems = claimProblems(header, payload);
  if(problems.length) {
    return {verified: false, errors: problems};
  }
  const status = await verifyStatus(payload);
  return {verified: status.ok && !status.revoked, revoked: Boolean(status.revoked),
    errors: status.errors || []};
}

const results = [];
for(const item of bundle.cases) {
  try {
    const outcome = item.kind === 'jwt' ? await verifyJwt(item.token) :
      await verifyDataIntegrity(item.credential);
    results.push({name: item.name, kind: item.kind, ...outcome});
  } catch(error) {
    results.push({name: item.name, kind: item.kind, verified: false, errors: [error.message]});
  }
}
process.stdout.write(JSON.stringify(results, null, 1));
