// aws-jwt-verify, as a back end verifies user pool tokens: JwtVerifier fetches the pool's
// JWKS over HTTPS (it fetches nothing over plain HTTP) from <issuer>/.well-known/jwks.json.
// Settings: ISSUER, AUDIENCE and TOKENS (JSON list); prints, per token, its claims or the error.
import { JwtVerifier } from 'aws-jwt-verify';

const verifier = JwtVerifier.create({ issuer: process.env.ISSUER, audience: process.env.AUDIENCE });
const out = [];
for (const token of JSON.parse(process.env.TOKENS)) {
  try {
    out.push({ ok: true, claims: await verifier.verify(token) });
  } catch (e) {
    out.push({ ok: false, error: e.constructor.name });
  }
}
console.log(JSON.stringify(out));
