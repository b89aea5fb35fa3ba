// Amplify v6 in Node, as an app runs it: SRP sign-in against a user pool at a custom
// endpoint, then fetchAuthSession({ forceRefresh: true }) twice (the refresh goes through
// GetTokensFromRefreshToken; with rotation, the second refresh uses the token the first
// returned). Reads its settings from the environment, prints what it saw as JSON.
import { Amplify } from 'aws-amplify';
import { fetchAuthSession, getCurrentUser, signIn } from 'aws-amplify/auth';

const { ENDPOINT, POOL_ID, CLIENT_ID, USERNAME, PASSWORD } = process.env;
Amplify.configure({
  Auth: { Cognito: { userPoolId: POOL_ID, userPoolClientId: CLIENT_ID, userPoolEndpoint: ENDPOINT } },
});

const tokens = async (forceRefresh) => {
  const { tokens } = await fetchAuthSession({ forceRefresh });
  return { access: tokens.accessToken.toString(), id: tokens.idToken.toString() };
};

const signedIn = await signIn({ username: USERNAME, password: PASSWORD });
const user = await getCurrentUser();
const first = await tokens(false);
const refreshed = await tokens(true);
const again = await tokens(true);
console.log(JSON.stringify({ signedIn: signedIn.isSignedIn, username: user.username, first, refreshed, again }));
