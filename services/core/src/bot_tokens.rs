//! Bot tokens at rest. A deployment serving several bots keeps their tokens
//! in the bots bucket (`P_BOTS`, one key per bot id), each sealed with
//! XChaCha20-Poly1305 under the deployment's token key (`COURIER_TOKEN_KEY`,
//! 32 random bytes in base64, mounted from a secret): whoever can read NATS
//! but not that secret reads no token. The bot id is the sealed value's
//! associated data, so a sealed token copied to another bot's key does not
//! open. Why here and not in events: docs/decisions/0016-bots-and-their-tokens.md.
//!
//! The key itself is rotated without stopping a bot: the services run with
//! the new key and the old one as `COURIER_TOKEN_KEY_PREVIOUS` (opened,
//! never sealed with), `courierctl bots rekey` seals every token again
//! under the new key, and the old one is then dropped.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::config::BotToken;

/// XChaCha20's nonce: random, so sealing needs no counter anywhere.
const NONCE_LEN: usize = 24;

/// The key tokens are sealed with, and the one before it while the tokens
/// are sealed again ([`TokenKey::with_previous`]). Its `Debug` shows
/// nothing of them.
#[derive(Clone)]
pub struct TokenKey {
    current: chacha20poly1305::Key,
    previous: Option<chacha20poly1305::Key>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

impl FromStr for TokenKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = STANDARD
            .decode(s.trim())
            .map_err(|_| "expected base64".to_owned())?;
        let key: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            format!(
                "expected 32 bytes, got {} (make one with: head -c 32 /dev/urandom | base64)",
                bytes.len()
            )
        })?;
        Ok(TokenKey {
            current: key.into(),
            previous: None,
        })
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the sealed token of bot {0} does not open with COURIER_TOKEN_KEY (or COURIER_TOKEN_KEY_PREVIOUS): another key, or another bot's token"
    )]
    WrongKey(i64),
    #[error("the sealed token of bot {0} is not a sealed token")]
    Malformed(i64),
}

impl TokenKey {
    /// This key, also opening what `previous` sealed (never sealing with
    /// it).
    pub fn with_previous(self, previous: &TokenKey) -> TokenKey {
        TokenKey {
            previous: Some(previous.current),
            ..self
        }
    }

    /// Seals `token` for its bot with the current key: a random nonce,
    /// then the ciphertext.
    pub fn seal(&self, token: &BotToken) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = XChaCha20Poly1305::new(&self.current)
            .encrypt(
                &nonce,
                Payload {
                    msg: token.expose().as_bytes(),
                    aad: token.bot_id().as_bytes(),
                },
            )
            .expect("sealing a token in memory cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// Opens the token sealed for bot `bot_id`, with the current key or
    /// the previous one.
    pub fn open(&self, bot_id: i64, sealed: &[u8]) -> Result<BotToken, OpenError> {
        self.opened(bot_id, sealed).map(|(token, _)| token)
    }

    /// The token sealed for bot `bot_id` sealed again with the current key
    /// if the previous one sealed it; `None` if the current one did.
    pub fn reseal(&self, bot_id: i64, sealed: &[u8]) -> Result<Option<Vec<u8>>, OpenError> {
        Ok(match self.opened(bot_id, sealed)? {
            (_, Sealer::Current) => None,
            (token, Sealer::Previous) => Some(self.seal(&token)),
        })
    }

    fn opened(&self, bot_id: i64, sealed: &[u8]) -> Result<(BotToken, Sealer), OpenError> {
        if sealed.len() <= NONCE_LEN {
            return Err(OpenError::Malformed(bot_id));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let id = bot_id.to_string();
        let decrypt = |key: &chacha20poly1305::Key| {
            XChaCha20Poly1305::new(key).decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: id.as_bytes(),
                },
            )
        };
        let (plain, sealer) = match (decrypt(&self.current), &self.previous) {
            (Ok(plain), _) => (plain, Sealer::Current),
            (Err(_), Some(previous)) => (
                decrypt(previous).map_err(|_| OpenError::WrongKey(bot_id))?,
                Sealer::Previous,
            ),
            (Err(_), None) => return Err(OpenError::WrongKey(bot_id)),
        };
        let token: BotToken = String::from_utf8(plain)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(OpenError::Malformed(bot_id))?;
        // The associated data already ties the two; this is belt and braces.
        if token.bot_id() != id {
            return Err(OpenError::Malformed(bot_id));
        }
        Ok((token, sealer))
    }
}

/// Which key a sealed token opened with.
enum Sealer {
    Current,
    Previous,
}

/// Tells one token of a bot from another (a rotation from a repeated add)
/// without revealing it: the first 8 bytes of its SHA-256, in hex.
pub fn fingerprint(token: &BotToken) -> String {
    Sha256::digest(token.expose().as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:AAE-secret_part_0123456789";
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn key() -> TokenKey {
        KEY.parse().unwrap()
    }

    #[test]
    fn a_sealed_token_opens_for_its_bot_and_shows_nothing_of_it() {
        let token: BotToken = TOKEN.parse().unwrap();
        let sealed = key().seal(&token);
        let secret = TOKEN.split_once(':').unwrap().1;
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert_eq!(key().open(123456, &sealed), Ok(token.clone()));
        // Sealed twice, two different values (random nonces).
        assert_ne!(key().seal(&token), sealed);
    }

    #[test]
    fn a_sealed_token_does_not_open_for_another_bot_or_with_another_key() {
        let sealed = key().seal(&TOKEN.parse().unwrap());
        assert_eq!(
            key().open(654321, &sealed),
            Err(OpenError::WrongKey(654321))
        );
        let other: TokenKey = STANDARD.encode([7u8; 32]).parse().unwrap();
        assert_eq!(
            other.open(123456, &sealed),
            Err(OpenError::WrongKey(123456))
        );
        assert_eq!(
            key().open(123456, b"short"),
            Err(OpenError::Malformed(123456))
        );
    }

    #[test]
    fn while_the_key_is_rotated_both_keys_open_and_only_the_new_one_seals() {
        let token: BotToken = TOKEN.parse().unwrap();
        let old_key = key();
        let new_key: TokenKey = STANDARD.encode([7u8; 32]).parse().unwrap();
        let sealed_before = old_key.seal(&token);
        let rotating = new_key.clone().with_previous(&old_key);
        assert_eq!(rotating.open(123456, &sealed_before), Ok(token.clone()));
        let sealed_again = rotating.reseal(123456, &sealed_before).unwrap().unwrap();
        assert_eq!(rotating.reseal(123456, &sealed_again), Ok(None));
        assert_eq!(new_key.open(123456, &sealed_again), Ok(token));
        assert_eq!(
            old_key.open(123456, &sealed_again),
            Err(OpenError::WrongKey(123456)),
            "sealed with the new key alone"
        );
        assert_eq!(
            rotating.reseal(654321, &sealed_again),
            Err(OpenError::WrongKey(654321))
        );
        assert_eq!(format!("{rotating:?}"), "TokenKey(***)");
    }

    #[test]
    fn a_key_must_be_32_bytes_of_base64_and_never_shows() {
        assert!(
            "not base64!"
                .parse::<TokenKey>()
                .unwrap_err()
                .contains("base64")
        );
        let short = STANDARD.encode([1u8; 16]).parse::<TokenKey>().unwrap_err();
        assert!(short.contains("expected 32 bytes, got 16"), "{short}");
        assert_eq!(format!("{:?}", key()), "TokenKey(***)");
    }

    #[test]
    fn fingerprints_tell_tokens_apart_without_showing_them() {
        let a: BotToken = TOKEN.parse().unwrap();
        let b: BotToken = "123456:AAE-another_secret_987654".parse().unwrap();
        assert_eq!(fingerprint(&a).len(), 16);
        assert_eq!(fingerprint(&a), fingerprint(&a));
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
