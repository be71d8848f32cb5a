//! Users and their access keys, kept in the gateway's database. A user is a name with one
//! access key pair; it owns the buckets it creates.

use rand::Rng as _;
use redb::ReadableTable as _;
use serde::{Deserialize, Serialize};

use crate::GatewayError;
use crate::db::{ACCESS_KEYS, Db, USERS, decode, encode, now_ms};

/// A user and its key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's name (owner of its buckets).
    pub name: String,
    /// The access key ID clients send.
    pub access_key_id: String,
    /// The secret access key clients sign with.
    pub secret_access_key: String,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: u64,
}

const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_text(prefix: &str, len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    let mut text = String::from(prefix);
    text.extend((0..len).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])));
    text
}

fn check_name(name: &str) -> Result<(), GatewayError> {
    let fine = (1..=64).contains(&name.len())
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
    if fine { Ok(()) } else { Err(GatewayError::BadUserName(name.into())) }
}

impl Db {
    /// Creates user `name` with a new random key pair (an access key ID of 20 characters, a
    /// secret of 40, as AWS's).
    pub fn create_user(&self, name: &str) -> Result<User, GatewayError> {
        check_name(name)?;
        const ACTION: &str = "creating a user";
        let user = User {
            name: name.into(),
            access_key_id: random_text("MK", 18, KEY_ID_ALPHABET),
            secret_access_key: random_text("", 40, SECRET_ALPHABET),
            created_ms: now_ms(),
        };
        let transaction = self.write(ACTION)?;
        {
            let mut users = transaction.open_table(USERS).map_err(GatewayError::database(ACTION))?;
            if users.get(name).map_err(GatewayError::database(ACTION))?.is_some() {
                return Err(GatewayError::UserExists(name.into()));
            }
            users.insert(name, encode(&user).as_slice()).map_err(GatewayError::database(ACTION))?;
            let mut keys = transaction.open_table(ACCESS_KEYS).map_err(GatewayError::database(ACTION))?;
            keys.insert(user.access_key_id.as_str(), name).map_err(GatewayError::database(ACTION))?;
        }
        transaction.commit().map_err(GatewayError::database(ACTION))?;
        Ok(user)
    }

    /// Every user, by name.
    pub fn list_users(&self) -> Result<Vec<User>, GatewayError> {
        const ACTION: &str = "listing users";
        let transaction = self.read(ACTION)?;
        let users = transaction.open_table(USERS).map_err(GatewayError::database(ACTION))?;
        let mut list = Vec::new();
        for entry in users.iter().map_err(GatewayError::database(ACTION))? {
            let (name, bytes) = entry.map_err(GatewayError::database(ACTION))?;
            list.push(decode(bytes.value(), || format!("user {}", name.value()))?);
        }
        Ok(list)
    }

    /// Deletes user `name` and its key; its buckets stay (owned by the name).
    pub fn delete_user(&self, name: &str) -> Result<User, GatewayError> {
        const ACTION: &str = "deleting a user";
        let transaction = self.write(ACTION)?;
        let user: User = {
            let mut users = transaction.open_table(USERS).map_err(GatewayError::database(ACTION))?;
            let removed = users.remove(name).map_err(GatewayError::database(ACTION))?;
            let bytes = removed.ok_or_else(|| GatewayError::NoSuchUser(name.into()))?;
            decode(bytes.value(), || format!("user {name}"))?
        };
        {
            let mut keys = transaction.open_table(ACCESS_KEYS).map_err(GatewayError::database(ACTION))?;
            keys.remove(user.access_key_id.as_str()).map_err(GatewayError::database(ACTION))?;
        }
        transaction.commit().map_err(GatewayError::database(ACTION))?;
        Ok(user)
    }

    /// The user whose access key ID is `access_key_id`, if any.
    pub fn user_by_key(&self, access_key_id: &str) -> Result<Option<User>, GatewayError> {
        const ACTION: &str = "reading a user";
        let transaction = self.read(ACTION)?;
        let keys = transaction.open_table(ACCESS_KEYS).map_err(GatewayError::database(ACTION))?;
        let Some(name) = keys.get(access_key_id).map_err(GatewayError::database(ACTION))? else {
            return Ok(None);
        };
        let users = transaction.open_table(USERS).map_err(GatewayError::database(ACTION))?;
        let Some(bytes) = users.get(name.value()).map_err(GatewayError::database(ACTION))? else {
            return Ok(None);
        };
        decode(bytes.value(), || format!("user {}", name.value())).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_created_found_by_key_listed_and_deleted_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.redb");
        let alice = {
            let db = Db::open(&path).unwrap();
            let alice = db.create_user("alice").unwrap();
            assert_eq!(alice.access_key_id.len(), 20);
            assert_eq!(alice.secret_access_key.len(), 40);
            assert!(matches!(db.create_user("alice"), Err(GatewayError::UserExists(_))));
            assert!(matches!(db.create_user("bad name"), Err(GatewayError::BadUserName(_))));
            db.create_user("bob").unwrap();
            alice
        };
        let db = Db::open(&path).unwrap();
        assert_eq!(db.user_by_key(&alice.access_key_id).unwrap(), Some(alice.clone()));
        let names: Vec<String> = db.list_users().unwrap().into_iter().map(|user| user.name).collect();
        assert_eq!(names, ["alice", "bob"]);
        db.delete_user("alice").unwrap();
        assert_eq!(db.user_by_key(&alice.access_key_id).unwrap(), None);
        assert!(matches!(db.delete_user("alice"), Err(GatewayError::NoSuchUser(_))));
    }
}
