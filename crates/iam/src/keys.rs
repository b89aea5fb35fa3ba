//! Access keys of IAM users (and of the account root, when the root calls without a name).

use cognate_credentials::{
    LONG_TERM_KEY_PREFIX, access_key_secret_context, generate_key_id, generate_secret_access_key,
};
use cognate_store::AccessKeyRow;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{CallerUser, Iam, IamError, Result, iso, set};

const MAX_KEYS_PER_USER: usize = 2;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct KeyInput {
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

fn key_json(key: &AccessKeyRow, owner: &str) -> Value {
    json!({ "UserName": owner, "AccessKeyId": key.access_key_id, "Status": key.status, "CreateDate": iso(key.created_at) })
}

impl Iam<'_> {
    /// The user whose keys an operation acts on (`None`: the account root), and the name
    /// responses show for it.
    async fn key_owner(
        &self,
        named: Option<&str>,
        caller: &CallerUser<'_>,
    ) -> Result<(Option<String>, String)> {
        let name = match (named, caller) {
            (Some(n), _) => n.to_owned(),
            (None, CallerUser::User(n)) => (*n).to_owned(),
            (None, CallerUser::RoleSession) => {
                return Err(IamError::Validation(
                    "Must specify userName when calling with non-User credentials".into(),
                ));
            }
            (None, CallerUser::Root) => return Ok((None, self.account.to_string())),
        };
        let row = self.require("user", &name).await?;
        Ok((Some(row.name.clone()), row.name))
    }

    pub(crate) async fn create_access_key(
        &self,
        input: KeyInput,
        caller: &CallerUser<'_>,
    ) -> Result<Value> {
        let (user, shown) = self.key_owner(input.user_name.as_deref(), caller).await?;
        if self
            .store
            .access_keys_of(self.account.as_str(), user.as_deref())
            .await?
            .len()
            >= MAX_KEYS_PER_USER
        {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}"
            )));
        }
        let rng_failed = |_| IamError::Internal("rng".into());
        let id =
            generate_key_id(LONG_TERM_KEY_PREFIX, self.account, self.rng).map_err(rng_failed)?;
        let secret = generate_secret_access_key(self.rng).map_err(rng_failed)?;
        let sealed = self
            .master
            .seal(&access_key_secret_context(&id), secret.as_bytes(), self.rng)
            .map_err(|_| IamError::Internal("sealing failed".into()))?;
        let row = AccessKeyRow {
            access_key_id: id.clone(),
            account_id: self.account.to_string(),
            user_name: user,
            secret_sealed: sealed,
            status: "Active".into(),
            created_at: self.now.unix_timestamp(),
        };
        self.store.create_access_key(&row).await?;
        let mut v = key_json(&row, &shown);
        set(&mut v, "SecretAccessKey", json!(secret));
        Ok(json!({ "AccessKey": v }))
    }

    pub(crate) async fn list_access_keys(
        &self,
        input: KeyInput,
        caller: &CallerUser<'_>,
    ) -> Result<Value> {
        let (user, shown) = self.key_owner(input.user_name.as_deref(), caller).await?;
        let keys = self
            .store
            .access_keys_of(self.account.as_str(), user.as_deref())
            .await?;
        Ok(
            json!({ "AccessKeyMetadata": keys.iter().map(|k| key_json(k, &shown)).collect::<Vec<_>>(), "IsTruncated": false }),
        )
    }

    /// The key, if it belongs to the addressed user.
    async fn owned_key(&self, input: &KeyInput, caller: &CallerUser<'_>) -> Result<AccessKeyRow> {
        let (user, _) = self.key_owner(input.user_name.as_deref(), caller).await?;
        let id = input.access_key_id.clone().unwrap_or_default();
        match self.store.access_key(&id).await? {
            Some(k) if k.account_id == self.account.as_str() && k.user_name == user => Ok(k),
            _ => Err(IamError::NoSuchEntity(format!(
                "The Access Key with id {id} cannot be found."
            ))),
        }
    }

    pub(crate) async fn update_access_key(
        &self,
        input: KeyInput,
        caller: &CallerUser<'_>,
    ) -> Result<Value> {
        let key = self.owned_key(&input, caller).await?;
        let status = input.status.unwrap_or_default();
        self.store
            .set_access_key_status(&key.access_key_id, &status)
            .await?;
        Ok(Value::Null)
    }

    pub(crate) async fn access_key_last_used(&self, input: KeyInput) -> Result<Value> {
        let id = input.access_key_id.unwrap_or_default();
        let key = self
            .store
            .access_key(&id)
            .await?
            .filter(|k| k.account_id == self.account.as_str())
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))
            })?;
        let used = match self.store.key_last_used(&id).await? {
            Some((at, service, region)) => {
                json!({ "LastUsedDate": iso(at), "ServiceName": service, "Region": region })
            }
            None => json!({ "ServiceName": "N/A", "Region": "N/A" }),
        };
        Ok(
            json!({ "UserName": key.user_name.unwrap_or_else(|| self.account.to_string()), "AccessKeyLastUsed": used }),
        )
    }

    pub(crate) async fn delete_access_key(
        &self,
        input: KeyInput,
        caller: &CallerUser<'_>,
    ) -> Result<Value> {
        let key = self.owned_key(&input, caller).await?;
        self.store.delete_access_key(&key.access_key_id).await?;
        Ok(Value::Null)
    }
}

impl Iam<'_> {
    /// Installs an access key whose id and secret the operator chose (`cognate apply`, so
    /// that apps and CI jobs know their keys beforehand) for the IAM user `user_name` of this
    /// account; applied again, it sets the secret again. A key id another user or account
    /// holds is refused.
    pub async fn install_access_key(&self, user_name: &str, id: &str, secret: &str) -> Result<()> {
        let id_ok = id.len() == 20
            && id.starts_with(LONG_TERM_KEY_PREFIX)
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !id_ok {
            return Err(IamError::InvalidInput(format!(
                "An access key id is {LONG_TERM_KEY_PREFIX} and 16 capital letters or digits (20 characters)"
            )));
        }
        if !(16..=128).contains(&secret.len()) || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IamError::InvalidInput(
                "A secret access key is 16 to 128 printable characters without spaces".into(),
            ));
        }
        let user = self.require("user", user_name).await?.name;
        let sealed = self
            .master
            .seal(&access_key_secret_context(id), secret.as_bytes(), self.rng)
            .map_err(|_| IamError::Internal("sealing failed".into()))?;
        match self.store.access_key(id).await? {
            Some(k)
                if k.account_id == self.account.as_str()
                    && k.user_name.as_deref() == Some(user.as_str()) =>
            {
                self.store.replace_access_key_secret(id, &sealed).await?;
            }
            Some(_) => {
                return Err(IamError::EntityAlreadyExists(format!(
                    "The access key {id} belongs to another user."
                )));
            }
            None => {
                self.store
                    .create_access_key(&AccessKeyRow {
                        access_key_id: id.to_owned(),
                        account_id: self.account.to_string(),
                        user_name: Some(user),
                        secret_sealed: sealed,
                        status: "Active".into(),
                        created_at: self.now.unix_timestamp(),
                    })
                    .await?;
            }
        }
        Ok(())
    }
}
