//! How a gossip datagram is sealed with the cluster's secret. Without it, anyone who can reach
//! the gossip port can read the cluster's state, or join it, call itself an indexer and be
//! given shards. AES-256-GCM both hides a datagram and proves it came from a holder of the
//! secret; a datagram that does not open is dropped before chitchat sees it.
//!
//! A sealed datagram is
//!
//! ```text
//! format version (1) = 1 | kind (1) | [message id (8), parts only] | nonce (12) | ciphertext | tag (16)
//! ```
//!
//! where kind 0 holds a whole chitchat message and kinds 1 and 2 hold its first and second
//! half. chitchat fills a message up to the largest UDP payload (it has no setting for less),
//! so a full one no longer fits once sealed: that one goes out as two parts, sealed each on its
//! own so that a part is authenticated before it is kept waiting for the other. The header is
//! authenticated with the ciphertext. The key comes from the secret by HKDF-SHA256, with the
//! cluster id in the info, so two clusters sharing a secret do not share a key; the nonce is 96
//! random bits, drawn afresh for every datagram.
//!
//! Replays are not detected: see `sealed_socket` for why chitchat takes them in its stride.

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{hkdf, rand};

/// Bumped when the layout changes, so that a node can tell a newer peer from an attacker.
pub(crate) const FORMAT_VERSION: u8 = 1;
const TAG_LEN: usize = 16;
pub(crate) const MESSAGE_ID_LEN: usize = 8;

const KIND_WHOLE: u8 = 0;
const KIND_FIRST_PART: u8 = 1;
const KIND_SECOND_PART: u8 = 2;

const WHOLE_HEADER_LEN: usize = 2;
const PART_HEADER_LEN: usize = 2 + MESSAGE_ID_LEN;
/// Bytes sealing adds to a whole message: 30.
pub(crate) const WHOLE_OVERHEAD: usize = WHOLE_HEADER_LEN + NONCE_LEN + TAG_LEN;
/// Bytes sealing adds to each part of a split message: 38.
pub(crate) const PART_OVERHEAD: usize = PART_HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The largest UDP payload over IPv4 (65 535 minus the IP and UDP headers). chitchat fills its
/// deltas up to this bound (its own constant, which is private).
pub(crate) const MAX_DATAGRAM_LEN: usize = 65_507;
/// Longer messages are split in two.
pub(crate) const MAX_WHOLE_MESSAGE_LEN: usize = MAX_DATAGRAM_LEN - WHOLE_OVERHEAD;
/// Two parts hold twice chitchat's largest message; anything longer is a bug on our side.
const MAX_MESSAGE_LEN: usize = 2 * (MAX_DATAGRAM_LEN - PART_OVERHEAD);

/// chitchat's magic number, first on every plain chitchat datagram.
const CHITCHAT_MAGIC: [u8; 2] = 45_139u16.to_le_bytes();

/// HKDF's salt separates this use of the secret from any other (the secret also travels in
/// node-to-node HTTP headers); the info binds the key to one cluster.
const KEY_SALT: &[u8] = b"quarry gossip seal v1";
const KEY_INFO_PREFIX: &[u8] = b"aes-256-gcm key for cluster id ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum OpenError {
    #[error("empty datagram")]
    Empty,
    /// The most likely misconfiguration, so it gets its own words.
    #[error("a plain chitchat datagram: the sender gossips without the gossip secret")]
    Unsealed,
    #[error(
        "sealed gossip format version {version}, this node reads version {FORMAT_VERSION}: \
         the sender runs another Quarry version, or this is not gossip"
    )]
    UnsupportedVersion { version: u8 },
    #[error("unknown sealed gossip datagram kind {kind}")]
    UnknownKind { kind: u8 },
    #[error(
        "datagram of {len} bytes is shorter than a sealed header, nonce and tag ({min} bytes)"
    )]
    Truncated { len: usize, min: usize },
    #[error(
        "the datagram does not authenticate: sealed with another secret or for another \
         cluster id, or altered on the way"
    )]
    Authentication,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SealError {
    #[error(
        "a gossip message of {len} bytes is longer than two datagrams hold ({MAX_MESSAGE_LEN})"
    )]
    TooLong { len: usize },
    /// aws-lc failed to derive the key, draw random bytes or encrypt: not something a caller
    /// can fix, but not worth a panic of the gossip loop either.
    #[error("cryptography failed while {0}")]
    Crypto(&'static str),
}

/// What a datagram held, once opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened<'a> {
    Whole(&'a [u8]),
    Part {
        message_id: [u8; MESSAGE_ID_LEN],
        part: Part,
        bytes: &'a [u8],
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    First,
    Second,
}

/// The key every node of a cluster derives from the shared secret.
pub(crate) struct GossipKey {
    key: RandomizedNonceKey,
}

impl GossipKey {
    pub fn derive(secret: &str, cluster_id: &str) -> Result<GossipKey, SealError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KEY_SALT).extract(secret.as_bytes());
        let info = [KEY_INFO_PREFIX, cluster_id.as_bytes()];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| SealError::Crypto("deriving the gossip key"))?;
        let mut key_bytes = [0u8; 32];
        okm.fill(&mut key_bytes)
            .map_err(|_| SealError::Crypto("deriving the gossip key"))?;
        // `RandomizedNonceKey` draws the nonce itself, so no caller can ever reuse one. Random
        // 96-bit nonces stay within NIST's bound (collision odds under 2^-32) for 2^32 datagrams
        // under one key: years of gossip for a cluster of tens of nodes. A new secret, or
        // cluster id, is a new key.
        let key = RandomizedNonceKey::new(&AES_256_GCM, &key_bytes)
            .map_err(|_| SealError::Crypto("deriving the gossip key"))?;
        Ok(GossipKey { key })
    }

    /// One datagram, or two for a message longer than `MAX_WHOLE_MESSAGE_LEN`.
    pub fn seal(&self, message: &[u8]) -> Result<Vec<Vec<u8>>, SealError> {
        if message.len() <= MAX_WHOLE_MESSAGE_LEN {
            return Ok(vec![self.seal_one(&[FORMAT_VERSION, KIND_WHOLE], message)?]);
        }
        if message.len() > MAX_MESSAGE_LEN {
            return Err(SealError::TooLong { len: message.len() });
        }
        let mut message_id = [0u8; MESSAGE_ID_LEN];
        rand::fill(&mut message_id).map_err(|_| SealError::Crypto("drawing a message id"))?;
        let (first, second) = message.split_at(message.len().div_ceil(2));
        let mut datagrams = Vec::with_capacity(2);
        for (kind, bytes) in [(KIND_FIRST_PART, first), (KIND_SECOND_PART, second)] {
            let mut header = [0u8; PART_HEADER_LEN];
            header[0] = FORMAT_VERSION;
            header[1] = kind;
            header[2..].copy_from_slice(&message_id);
            datagrams.push(self.seal_one(&header, bytes)?);
        }
        Ok(datagrams)
    }

    fn seal_one(&self, header: &[u8], bytes: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut datagram = Vec::with_capacity(header.len() + NONCE_LEN + bytes.len() + TAG_LEN);
        datagram.extend_from_slice(header);
        datagram.extend_from_slice(&[0u8; NONCE_LEN]);
        let ciphertext_start = datagram.len();
        datagram.extend_from_slice(bytes);
        let (nonce, tag) = self
            .key
            .seal_in_place_separate_tag(Aad::from(header), &mut datagram[ciphertext_start..])
            .map_err(|_| SealError::Crypto("sealing a gossip datagram"))?;
        datagram[header.len()..ciphertext_start].copy_from_slice(nonce.as_ref());
        datagram.extend_from_slice(tag.as_ref());
        Ok(datagram)
    }

    /// Decrypts in place and returns the plaintext, a slice of `datagram`. Every length is
    /// checked before it is used: the datagram comes from anyone.
    pub fn open<'a>(&self, datagram: &'a mut [u8]) -> Result<Opened<'a>, OpenError> {
        let (&version, rest) = datagram.split_first().ok_or(OpenError::Empty)?;
        if version != FORMAT_VERSION {
            if datagram.starts_with(&CHITCHAT_MAGIC) {
                return Err(OpenError::Unsealed);
            }
            return Err(OpenError::UnsupportedVersion { version });
        }
        let kind = rest.first().copied().ok_or(OpenError::Truncated {
            len: datagram.len(),
            min: WHOLE_OVERHEAD,
        })?;
        let (header_len, part) = match kind {
            KIND_WHOLE => (WHOLE_HEADER_LEN, None),
            KIND_FIRST_PART => (PART_HEADER_LEN, Some(Part::First)),
            KIND_SECOND_PART => (PART_HEADER_LEN, Some(Part::Second)),
            kind => return Err(OpenError::UnknownKind { kind }),
        };
        let min = header_len + NONCE_LEN + TAG_LEN;
        if datagram.len() < min {
            return Err(OpenError::Truncated {
                len: datagram.len(),
                min,
            });
        }
        let (header, rest) = datagram.split_at_mut(header_len);
        let (nonce, sealed) = rest.split_at_mut(NONCE_LEN);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let nonce = Nonce::assume_unique_for_key(nonce_bytes);
        let bytes = self
            .key
            .open_in_place(nonce, Aad::from(&*header), sealed)
            .map_err(|_| OpenError::Authentication)?;
        Ok(match part {
            None => Opened::Whole(bytes),
            Some(part) => {
                let mut message_id = [0u8; MESSAGE_ID_LEN];
                message_id.copy_from_slice(&header[2..]);
                Opened::Part {
                    message_id,
                    part,
                    bytes,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::aead::{LessSafeKey, UnboundKey};

    use super::*;

    fn key() -> GossipKey {
        GossipKey::derive("correct horse battery staple", "main").unwrap()
    }

    fn message(len: usize) -> Vec<u8> {
        (0..len)
            .map(|index| (index * 7 + index / 251) as u8)
            .collect()
    }

    fn open_whole(key: &GossipKey, mut datagram: Vec<u8>) -> Result<Vec<u8>, OpenError> {
        match key.open(&mut datagram)? {
            Opened::Whole(bytes) => Ok(bytes.to_vec()),
            opened => panic!("expected a whole message, got {opened:?}"),
        }
    }

    #[test]
    fn a_whole_message_round_trips_with_thirty_bytes_of_overhead() {
        let key = key();
        for len in [0, 1, 4, 1_000, MAX_WHOLE_MESSAGE_LEN] {
            let sealed = key.seal(&message(len)).unwrap();
            assert_eq!(sealed.len(), 1, "{len} bytes");
            assert_eq!(sealed[0].len(), len + WHOLE_OVERHEAD);
            assert_eq!(WHOLE_OVERHEAD, 30);
            assert_eq!(sealed[0][..2], [FORMAT_VERSION, 0]);
            assert_eq!(open_whole(&key, sealed[0].clone()).unwrap(), message(len));
        }
        // The largest whole message fills the largest datagram exactly.
        assert_eq!(
            key.seal(&message(MAX_WHOLE_MESSAGE_LEN)).unwrap()[0].len(),
            MAX_DATAGRAM_LEN
        );
    }

    #[test]
    fn a_message_too_long_for_one_datagram_goes_as_two_parts_that_each_fit() {
        let key = key();
        for len in [MAX_WHOLE_MESSAGE_LEN + 1, MAX_DATAGRAM_LEN, MAX_MESSAGE_LEN] {
            let original = message(len);
            let mut sealed = key.seal(&original).unwrap();
            assert_eq!(sealed.len(), 2, "{len} bytes");
            assert!(sealed
                .iter()
                .all(|datagram| datagram.len() <= MAX_DATAGRAM_LEN));
            assert_eq!(sealed[0].len() + sealed[1].len(), len + 2 * PART_OVERHEAD);
            let [first, second] = &mut sealed[..] else {
                unreachable!()
            };
            let (first_id, first_bytes) = match key.open(first).unwrap() {
                Opened::Part {
                    message_id,
                    part: Part::First,
                    bytes,
                } => (message_id, bytes.to_vec()),
                opened => panic!("{opened:?}"),
            };
            let (second_id, second_bytes) = match key.open(second).unwrap() {
                Opened::Part {
                    message_id,
                    part: Part::Second,
                    bytes,
                } => (message_id, bytes.to_vec()),
                opened => panic!("{opened:?}"),
            };
            assert_eq!(first_id, second_id);
            assert_eq!([first_bytes, second_bytes].concat(), original);
        }
        assert_eq!(
            key.seal(&message(MAX_MESSAGE_LEN + 1)).unwrap_err(),
            SealError::TooLong {
                len: MAX_MESSAGE_LEN + 1
            }
        );
    }

    #[test]
    fn every_datagram_gets_a_fresh_nonce_and_message_id() {
        let key = key();
        let a = key.seal(b"same message").unwrap().remove(0);
        let b = key.seal(b"same message").unwrap().remove(0);
        assert_ne!(a[2..2 + NONCE_LEN], b[2..2 + NONCE_LEN]);
        assert_ne!(a, b);
        let long = message(MAX_DATAGRAM_LEN);
        let a = key.seal(&long).unwrap();
        let b = key.seal(&long).unwrap();
        assert_ne!(a[0][2..PART_HEADER_LEN], b[0][2..PART_HEADER_LEN]);
    }

    #[test]
    fn any_altered_byte_fails_authentication() {
        let key = key();
        for datagram in [
            key.seal(&message(100)).unwrap().remove(0),
            key.seal(&message(MAX_DATAGRAM_LEN)).unwrap().remove(1),
        ] {
            // Past the version and kind bytes, which have errors of their own: the message id,
            // the nonce, the ciphertext and the tag.
            let positions = [2, 5, 14, 20, 40, datagram.len() - 17, datagram.len() - 1];
            for position in positions {
                let mut altered = datagram.clone();
                altered[position] ^= 0x01;
                assert_eq!(
                    key.open(&mut altered).unwrap_err(),
                    OpenError::Authentication,
                    "byte {position}"
                );
            }
        }
        // A part relabelled as a whole message (or the reverse) does not open either: the kind
        // is authenticated.
        let mut whole = key.seal(&message(100)).unwrap().remove(0);
        whole[1] = KIND_FIRST_PART;
        assert_eq!(key.open(&mut whole).unwrap_err(), OpenError::Authentication);
    }

    #[test]
    fn another_secret_or_another_cluster_id_cannot_open() {
        let datagram = key().seal(b"hello").unwrap().remove(0);
        for other in [
            GossipKey::derive("correct horse battery stapler", "main").unwrap(),
            GossipKey::derive("correct horse battery staple", "main2").unwrap(),
            GossipKey::derive("", "main").unwrap(),
        ] {
            assert_eq!(
                other.open(&mut datagram.clone()).unwrap_err(),
                OpenError::Authentication
            );
        }
    }

    #[test]
    fn truncated_datagrams_are_refused_without_panicking() {
        let key = key();
        let datagram = key.seal(&message(100)).unwrap().remove(0);
        assert_eq!(key.open(&mut []).unwrap_err(), OpenError::Empty);
        assert_eq!(
            key.open(&mut datagram[..1].to_vec()).unwrap_err(),
            OpenError::Truncated { len: 1, min: 30 }
        );
        for len in [2, 13, 29] {
            assert_eq!(
                key.open(&mut datagram[..len].to_vec()).unwrap_err(),
                OpenError::Truncated { len, min: 30 },
                "{len} bytes"
            );
        }
        // Long enough to hold a tag, but not the tag that was computed.
        for len in [30, 31, datagram.len() - 1] {
            assert_eq!(
                key.open(&mut datagram[..len].to_vec()).unwrap_err(),
                OpenError::Authentication,
                "{len} bytes"
            );
        }
        let part = key.seal(&message(MAX_DATAGRAM_LEN)).unwrap().remove(0);
        assert_eq!(
            key.open(&mut part[..37].to_vec()).unwrap_err(),
            OpenError::Truncated { len: 37, min: 38 }
        );
    }

    #[test]
    fn other_versions_kinds_and_plain_chitchat_are_told_apart() {
        let key = key();
        let mut datagram = key.seal(b"hello").unwrap().remove(0);
        datagram[0] = 2;
        assert_eq!(
            key.open(&mut datagram.clone()).unwrap_err(),
            OpenError::UnsupportedVersion { version: 2 }
        );
        datagram[0] = FORMAT_VERSION;
        datagram[1] = 3;
        assert_eq!(
            key.open(&mut datagram).unwrap_err(),
            OpenError::UnknownKind { kind: 3 }
        );
        // chitchat's header: magic number, protocol version, message type (SYN).
        let mut plain = [CHITCHAT_MAGIC[0], CHITCHAT_MAGIC[1], 1, 0, 0, 0];
        assert_eq!(key.open(&mut plain).unwrap_err(), OpenError::Unsealed);
        assert_eq!(
            key.open(&mut b"GET / HTTP/1.1".to_vec()).unwrap_err(),
            OpenError::UnsupportedVersion { version: b'G' }
        );
    }

    /// Pins the key derivation and the layout: a node of the next release must open what this
    /// one sealed, and a sealed datagram is standard AES-256-GCM that any implementation can
    /// open given the HKDF output.
    #[test]
    fn a_datagram_sealed_by_this_version_still_opens() {
        let key = GossipKey::derive("s3cret", "cluster-a").unwrap();
        let pinned = hex(PINNED_DATAGRAM);
        assert_eq!(
            open_whole(&key, pinned.clone()).unwrap(),
            b"sealed gossip, format version 1"
        );

        let mut key_bytes = [0u8; 32];
        hkdf::Salt::new(hkdf::HKDF_SHA256, KEY_SALT)
            .extract(b"s3cret")
            .expand(&[KEY_INFO_PREFIX, b"cluster-a"], &AES_256_GCM)
            .unwrap()
            .fill(&mut key_bytes)
            .unwrap();
        let standard = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).unwrap());
        let nonce = Nonce::try_assume_unique_for_key(&pinned[2..14]).unwrap();
        let mut sealed = pinned[14..].to_vec();
        let plaintext = standard
            .open_in_place(nonce, Aad::from(&pinned[..2]), &mut sealed)
            .unwrap();
        assert_eq!(plaintext, b"sealed gossip, format version 1");
    }

    const PINNED_DATAGRAM: &str =
        "010036c219b35c4c198f8f1be8efcc9b706d9c03b49fc2cef221d7069a530926ce8df5\
                                   7844faa9c0b5003a9ddd4bb10bbe52919ca8635dcddacd56e469";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).unwrap())
            .collect()
    }
}
