// The single-page app of the browser test, bundled by esbuild: signs in to a user pool with
// SRP (amazon-cognito-identity-js), trades the ID token for identity-pool credentials and
// puts and gets an S3 object (AWS SDK for JavaScript v3), all from its own origin. Settings
// come from the page's query string; the outcome goes to window.result.
import { AuthenticationDetails, CognitoUser, CognitoUserPool } from 'amazon-cognito-identity-js';
import { CognitoIdentityClient } from '@aws-sdk/client-cognito-identity';
import { fromCognitoIdentityPool } from '@aws-sdk/credential-provider-cognito-identity';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const settings = Object.fromEntries(new URLSearchParams(location.search));
const { endpoint, userPoolId, clientId, identityPoolId, provider, bucket, username, password } = settings;

function signIn() {
  const pool = new CognitoUserPool({ UserPoolId: userPoolId, ClientId: clientId, endpoint });
  const user = new CognitoUser({ Username: username, Pool: pool });
  const details = new AuthenticationDetails({ Username: username, Password: password });
  return new Promise((resolve, reject) =>
    user.authenticateUser(details, { onSuccess: resolve, onFailure: reject }),
  );
}

async function run() {
  const session = await signIn();
  const idToken = session.getIdToken().getJwtToken();
  const credentials = fromCognitoIdentityPool({
    client: new CognitoIdentityClient({ region: 'us-east-1', endpoint }),
    identityPoolId,
    logins: { [provider]: idToken },
  });
  const identityId = (await credentials()).identityId;
  const s3 = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials });
  const key = `${identityId}/hello.txt`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'from the browser' }));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  let denied = null;
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'someone-else/x.txt', Body: 'no' }));
  } catch (e) {
    denied = e.name;
  }
  return { identityId, key, body: await got.Body.transformToString(), denied };
}

run().then(
  (r) => { window.result = { ok: true, ...r }; },
  (e) => { window.result = { ok: false, error: `${e.name}: ${e.message}` }; },
);
