//! Access keys and the principal a verified request acts as.
//!
//! An access key is a public id (sent in every request) and a secret (never sent; both
//! sides compute an HMAC with it). Each key may be limited to a list of instance names;
//! `None` means every instance. A verified request becomes a [`Principal`], which the API
//! layer asks [`Principal::may_use`] before touching an instance.
//!
//! Secrets are kept out of `Debug` output so that configuration dumps and tracing spans
//! cannot leak them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use super::clock::truncate as clock_truncate;
use super::error::AuthError;
use super::SignatureStyle;

/// One configured access key.
#[derive(Clone, Deserialize)]
pub struct AccessKey {
    /// The public id (`AccessKeyId` / `Credential` / the part before `:` in ROA).
    pub id: String,
    /// The shared secret.
    pub secret: String,
    /// Instance names this key may use; `None` allows all of them.
    #[serde(default)]
    pub instances: Option<Vec<String>>,
}

impl AccessKey {
    /// A key allowed on every instance.
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        AccessKey {
            id: id.into(),
            secret: secret.into(),
            instances: None,
        }
    }

    /// The same key restricted to the given instances.
    pub fn limited_to<I, S>(mut self, instances: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.instances = Some(instances.into_iter().map(Into::into).collect());
        self
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("instances", &self.instances)
            .finish()
    }
}

/// A configuration mistake in the key list.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyConfigError {
    /// An access key with an empty id.
    #[error("an access key has an empty id")]
    EmptyId,
    /// An access key with an empty secret (anyone could sign for it).
    #[error("the access key `{0}` has an empty secret")]
    EmptySecret(String),
    /// The same id configured twice, which would make one of the secrets silently unused.
    #[error("the access key `{0}` is configured twice")]
    DuplicateId(String),
}

/// What the verifier keeps per key.
#[derive(Clone)]
pub(crate) struct KeyEntry {
    pub(crate) secret: String,
    /// Shared with every [`Principal`] of this key, so verifying does not copy the list.
    pub(crate) instances: Option<Arc<[String]>>,
}

/// The set of access keys the server accepts, by id.
#[derive(Clone, Default)]
pub struct AccessKeys {
    by_id: HashMap<String, KeyEntry>,
}

impl AccessKeys {
    /// No keys: signature checking is off (the API layer should skip [`super::Verifier`]).
    pub fn none() -> Self {
        AccessKeys::default()
    }

    /// Builds the set from a list, refusing empty ids or secrets and duplicate ids.
    pub fn from_list(keys: impl IntoIterator<Item = AccessKey>) -> Result<Self, KeyConfigError> {
        let mut by_id = HashMap::new();
        for key in keys {
            if key.id.is_empty() {
                return Err(KeyConfigError::EmptyId);
            }
            if key.secret.is_empty() {
                return Err(KeyConfigError::EmptySecret(key.id));
            }
            if by_id.contains_key(&key.id) {
                return Err(KeyConfigError::DuplicateId(key.id));
            }
            let entry = KeyEntry {
                secret: key.secret,
                instances: key.instances.map(Arc::from),
            };
            by_id.insert(key.id, entry);
        }
        Ok(AccessKeys { by_id })
    }

    /// A set holding one key allowed on every instance.
    pub fn single(
        id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Result<Self, KeyConfigError> {
        AccessKeys::from_list([AccessKey::new(id, secret)])
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Number of configured keys.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True if `id` is a configured key.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The stored id and entry for `id`, or [`AuthError::UnknownKey`].
    pub(crate) fn lookup(&self, id: &str) -> Result<(&str, &KeyEntry), AuthError> {
        self.by_id
            .get_key_value(id)
            .map(|(stored, entry)| (stored.as_str(), entry))
            .ok_or_else(|| AuthError::UnknownKey(clock_truncate(id).to_owned()))
    }
}

impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.by_id.keys().collect();
        ids.sort();
        f.debug_struct("AccessKeys").field("ids", &ids).finish()
    }
}

/// Who a verified request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The access key the request was signed with (empty for [`Principal::anonymous`]).
    pub access_key_id: String,
    /// How the request was signed (`None` for [`Principal::anonymous`]).
    pub style: Option<SignatureStyle>,
    instances: Option<Arc<[String]>>,
}

impl Principal {
    pub(crate) fn new(access_key_id: &str, style: SignatureStyle, entry: &KeyEntry) -> Self {
        Principal {
            access_key_id: access_key_id.to_owned(),
            style: Some(style),
            instances: entry.instances.clone(),
        }
    }

    /// The principal of an unsigned request when no keys are configured: may use everything.
    pub fn anonymous() -> Self {
        Principal {
            access_key_id: String::new(),
            style: None,
            instances: None,
        }
    }

    /// True if this key may use `instance`.
    pub fn may_use(&self, instance: &str) -> bool {
        match &self.instances {
            None => true,
            Some(list) => list.iter().any(|allowed| allowed == instance),
        }
    }

    /// True if this key may use every instance (admin routes need such a key).
    pub fn is_unrestricted(&self) -> bool {
        self.instances.is_none()
    }

    /// [`Principal::may_use`] as a `Result`, with [`AuthError::Forbidden`] when refused.
    pub fn check_instance(&self, instance: &str) -> Result<(), AuthError> {
        if self.may_use(instance) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                access_key_id: self.access_key_id.clone(),
                instance: instance.to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_list_refuses_bad_configuration() {
        assert_eq!(
            AccessKeys::from_list([AccessKey::new("", "s")]).err(),
            Some(KeyConfigError::EmptyId)
        );
        assert_eq!(
            AccessKeys::from_list([AccessKey::new("a", "")]).err(),
            Some(KeyConfigError::EmptySecret("a".into()))
        );
        let dup = AccessKeys::from_list([AccessKey::new("a", "1"), AccessKey::new("a", "2")]);
        assert_eq!(dup.err(), Some(KeyConfigError::DuplicateId("a".into())));
        assert!(AccessKeys::none().is_empty());
        let one = AccessKeys::single("a", "s").unwrap();
        assert_eq!(one.len(), 1);
        assert!(one.contains("a") && !one.contains("b"));
    }

    #[test]
    fn instance_lists_limit_the_principal() {
        let keys = AccessKeys::from_list([
            AccessKey::new("all", "s1"),
            AccessKey::new("some", "s2").limited_to(["shop", "demo"]),
        ])
        .unwrap();
        let all = Principal::new("all", SignatureStyle::Acs3, keys.lookup("all").unwrap().1);
        let some = Principal::new(
            "some",
            SignatureStyle::RpcV1,
            keys.lookup("some").unwrap().1,
        );
        assert!(all.may_use("anything"));
        assert!(some.may_use("demo") && !some.may_use("other"));
        assert!(some.check_instance("shop").is_ok());
        assert!(matches!(
            some.check_instance("other"),
            Err(AuthError::Forbidden { .. })
        ));
        assert!(Principal::anonymous().may_use("x"));
        assert_eq!(
            keys.lookup("nope").err(),
            Some(AuthError::UnknownKey("nope".into()))
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let key = AccessKey::new("id", "topsecret");
        assert!(!format!("{key:?}").contains("topsecret"));
        let keys = AccessKeys::from_list([key]).unwrap();
        assert!(!format!("{keys:?}").contains("topsecret"));
    }

    #[test]
    fn deserializes_from_config() {
        #[derive(Deserialize)]
        struct Wrapper {
            keys: Vec<AccessKey>,
        }
        let parsed: Wrapper = serde_json::from_str(
            r#"{"keys":[{"id":"a","secret":"b"},{"id":"c","secret":"d","instances":["x"]}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.keys.len(), 2);
        assert_eq!(parsed.keys[1].instances, Some(vec!["x".to_owned()]));
    }
}
