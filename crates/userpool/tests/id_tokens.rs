//! ID tokens presented to identity pools (`UserPools::verify_id_token`), on a real SQLite
//! store, with the clock moved: an expired token, the wrong audience, a signed-out user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use cognate_credentials::MasterKey;
use cognate_userpool::{Delivery, KeyCache, Operation, UserPools};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

struct Env {
    store: cognate_store::Store,
    master: MasterKey,
    rng: ring::rand::SystemRandom,
    keys: KeyCache,
    delivery: Delivery,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        Env {
            store: cognate_store::Store::open_sqlite(&dir.path().join("db"))
                .await
                .unwrap(),
            master: MasterKey::from_bytes(&[7; 32]).unwrap(),
            rng: ring::rand::SystemRandom::new(),
            keys: KeyCache::default(),
            delivery: Delivery::Log,
            _dir: dir,
        }
    }

    fn at(&self, now: OffsetDateTime) -> UserPools<'_> {
        UserPools {
            store: &self.store,
            master: &self.master,
            rng: &self.rng,
            keys: &self.keys,
            region: "us-east-1",
            issuer_base: "https://auth.example.test",
            delivery: &self.delivery,
            now,
            account: Some("111122223333"),
        }
    }
}

#[tokio::test]
async fn id_tokens_expire_name_their_client_and_die_with_a_sign_out() {
    let env = Env::new().await;
    let now = OffsetDateTime::now_utc();
    let svc = env.at(now);
    let pool = svc
        .call(Operation::CreateUserPool, &json!({"PoolName": "p"}))
        .await
        .unwrap()["UserPool"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = svc
        .call(
            Operation::CreateUserPoolClient,
            &json!({"UserPoolId": pool, "ClientName": "c",
                    "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}),
        )
        .await
        .unwrap()["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_owned();
    svc.call(
        Operation::AdminCreateUser,
        &json!({"UserPoolId": pool, "Username": "ann", "MessageAction": "SUPPRESS"}),
    )
    .await
    .unwrap();
    svc.call(
        Operation::AdminSetUserPassword,
        &json!({"UserPoolId": pool, "Username": "ann", "Password": "Correct-Horse-9", "Permanent": true}),
    )
    .await
    .unwrap();
    let tokens = svc
        .call(
            Operation::AdminInitiateAuth,
            &json!({"UserPoolId": pool, "ClientId": client, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                    "AuthParameters": {"USERNAME": "ann", "PASSWORD": "Correct-Horse-9"}}),
        )
        .await
        .unwrap();
    let id_token = tokens["AuthenticationResult"]["IdToken"].as_str().unwrap();
    let access = tokens["AuthenticationResult"]["AccessToken"]
        .as_str()
        .unwrap();
    let clients = vec![client.clone()];
    let message = |r: Result<Value, cognate_protocol::ApiError>| {
        let e = r.unwrap_err();
        assert_eq!(e.code, "NotAuthorizedException");
        e.message
    };

    let claims = svc
        .verify_id_token(&pool, id_token, &clients, true)
        .await
        .unwrap();
    assert_eq!(claims["aud"], client.as_str());
    // An hour and a minute later the ID token (valid for an hour by default) has expired.
    let later = env.at(now + Duration::minutes(61));
    let m = message(
        later
            .verify_id_token(&pool, id_token, &clients, false)
            .await,
    );
    assert!(m.starts_with("Invalid login token. Token expired:"), "{m}");
    // Another client's audience, an access token, another pool's name, a tampered token.
    let m = message(
        svc.verify_id_token(&pool, id_token, &["other-client".to_owned()], false)
            .await,
    );
    assert!(m.contains("not from a supported provider"), "{m}");
    message(svc.verify_id_token(&pool, access, &clients, false).await);
    message(
        svc.verify_id_token("us-east-1_Other", id_token, &clients, false)
            .await,
    );
    let mut tampered = id_token.to_owned();
    tampered.insert(tampered.len() - 5, 'x');
    message(svc.verify_id_token(&pool, &tampered, &clients, false).await);
    // After a global sign-out the server-side check refuses the still-unexpired token; without
    // the check it is accepted until it expires, as on Cognito.
    svc.call(
        Operation::AdminUserGlobalSignOut,
        &json!({"UserPoolId": pool, "Username": "ann"}),
    )
    .await
    .unwrap();
    let m = message(svc.verify_id_token(&pool, id_token, &clients, true).await);
    assert!(m.contains("revoked"), "{m}");
    svc.verify_id_token(&pool, id_token, &clients, false)
        .await
        .unwrap();
}

/// A challenge session lasts the client's AuthSessionValidity (3 minutes unless set), by the
/// clock the service is given.
#[tokio::test]
async fn challenge_sessions_expire_with_the_clients_session_validity() {
    let env = Env::new().await;
    let now = OffsetDateTime::now_utc();
    let svc = env.at(now);
    let pool = svc
        .call(Operation::CreateUserPool, &json!({"PoolName": "p"}))
        .await
        .unwrap()["UserPool"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut clients = Vec::new();
    for validity in [None, Some(10)] {
        let mut input = json!({"UserPoolId": pool, "ClientName": "c",
                               "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"]});
        if let Some(v) = validity {
            input["AuthSessionValidity"] = json!(v);
        }
        let out = svc
            .call(Operation::CreateUserPoolClient, &input)
            .await
            .unwrap();
        clients.push(
            out["UserPoolClient"]["ClientId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for (i, client) in clients.iter().enumerate() {
        let user = format!("new{i}");
        svc.call(
            Operation::AdminCreateUser,
            &json!({"UserPoolId": pool, "Username": user, "TemporaryPassword": "Temp-Pass-1",
                    "MessageAction": "SUPPRESS"}),
        )
        .await
        .unwrap();
        let challenge = svc
            .call(
                Operation::AdminInitiateAuth,
                &json!({"UserPoolId": pool, "ClientId": client, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                        "AuthParameters": {"USERNAME": user, "PASSWORD": "Temp-Pass-1"}}),
            )
            .await
            .unwrap();
        assert_eq!(challenge["ChallengeName"], "NEW_PASSWORD_REQUIRED");
        let respond = json!({"UserPoolId": pool, "ClientId": client,
                             "ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": challenge["Session"],
                             "ChallengeResponses": {"USERNAME": user, "NEW_PASSWORD": "Correct-Horse-9"}});
        // Four minutes on: past the default three, within the second client's ten.
        let later = env.at(now + Duration::minutes(4));
        let answer = later
            .call(Operation::AdminRespondToAuthChallenge, &respond)
            .await;
        if i == 0 {
            let e = answer.unwrap_err();
            assert_eq!(
                (e.code.as_ref(), e.message.as_str()),
                (
                    "NotAuthorizedException",
                    "Invalid session for the user, session is expired."
                )
            );
        } else {
            assert!(answer.unwrap()["AuthenticationResult"]["IdToken"].is_string());
            let again = later
                .call(Operation::AdminRespondToAuthChallenge, &respond)
                .await
                .unwrap_err();
            assert_eq!(
                again.message,
                "Invalid session for the user, session can only be used once."
            );
        }
    }
}
