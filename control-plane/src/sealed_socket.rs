//! The gossip socket of a node with a gossip secret. Every datagram chitchat sends is sealed
//! (`gossip_seal`) and every datagram that arrives is opened before chitchat sees it; one that
//! does not open is dropped and counted (`rejections`), and the loop goes on. chitchat's
//! envelopes become bytes and back through `envelope_codec`.
//!
//! Replays are not detected: a sealed datagram recorded on the network opens again later.
//! chitchat takes that in its stride, because its state only moves forward: a heartbeat no
//! higher than the one held, or a delta for versions already held, is ignored. So a replay
//! neither rolls state back nor puts words in a node's mouth. What one can do: hand stale but
//! genuine state to a node that forgot it (replaying a dead node's recorded rounds to a node
//! started since makes that node see the dead one live for as many heartbeats as were
//! recorded), and, with a forged source address, have a node send its reply (sealed, up to
//! 64 KB) to a third party. Refusing replays would take synchronised clocks or per-peer counters
//! that survive restarts.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use anyhow::Context;
use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket};
use chitchat::ChitchatEnvelope;
use tracing::warn;

use crate::envelope_codec::{EnvelopeCodec, SubmitError};
use crate::gossip_seal::{GossipKey, Opened, Part, MESSAGE_ID_LEN};
use crate::rejections::Rejections;

/// Holds any UDP payload whole (at most 65 527 bytes, over IPv6), so the kernel never cuts one.
const RECV_BUF_LEN: usize = 65_536;

/// Messages split in two that wait for their other half. A handful of peers each send a couple
/// per gossip round; only key holders can add one, and the bound keeps a misbehaving one from
/// growing the list.
const MAX_WAITING_PARTS: usize = 16;

pub(crate) struct SealedUdpSocket {
    socket: tokio::net::UdpSocket,
    key: GossipKey,
    codec: EnvelopeCodec,
    waiting_parts: WaitingParts,
    rejections: Rejections,
    recv_buf: Box<[u8]>,
}

impl SealedUdpSocket {
    /// `socket` is bound already (see `transport`).
    pub async fn new(
        socket: tokio::net::UdpSocket,
        key: GossipKey,
        rejections: Rejections,
    ) -> anyhow::Result<SealedUdpSocket> {
        Ok(SealedUdpSocket {
            socket,
            key,
            codec: EnvelopeCodec::open().await?,
            waiting_parts: WaitingParts::default(),
            rejections,
            recv_buf: vec![0u8; RECV_BUF_LEN].into_boxed_slice(),
        })
    }
}

/// As chitchat's own UDP socket: errors a peer can cause must not end the gossip loop.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::OutOfMemory
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

#[async_trait]
impl Socket for SealedUdpSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.socket
            .local_addr()
            .context("failed to get the gossip socket's address")
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let message = self.codec.encode(envelope).await?;
        let datagrams = self.key.seal(message)?;
        let mut num_bytes_sent = 0;
        for datagram in &datagrams {
            num_bytes_sent += self
                .socket
                .send_to(datagram, to)
                .await
                .context("failed to send a sealed gossip datagram")?;
        }
        Ok(SendOutcome { num_bytes_sent })
    }

    /// Cancel-safe, as chitchat requires: it races `recv` against its gossip timer.
    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        loop {
            // What a cancelled call handed to the codec comes first.
            if let Some(outcome) = self.codec.decoded(&mut self.rejections).await? {
                return Ok(outcome);
            }
            let (len, from) = match self.socket.recv_from(&mut self.recv_buf).await {
                Ok(received) => received,
                Err(error) if is_transient(&error) => {
                    warn!(%error, "transient UDP recv error on the gossip socket");
                    continue;
                }
                Err(error) => {
                    return Err(error).context("fatal UDP recv error on the gossip socket")
                }
            };
            let submitted = match self.key.open(&mut self.recv_buf[..len]) {
                Ok(Opened::Whole(message)) => self.codec.submit(message, from, len),
                Ok(Opened::Part {
                    message_id,
                    part,
                    bytes,
                }) => match self.waiting_parts.add(from, message_id, part, bytes, len) {
                    Some((message, num_bytes_received)) => {
                        self.codec.submit(&message, from, num_bytes_received)
                    }
                    None => Ok(()),
                },
                Err(error) => {
                    self.rejections.record(from, &error);
                    Ok(())
                }
            };
            match submitted {
                Ok(()) => {}
                Err(error @ SubmitError::NotChitchat) => self.rejections.record(from, &error),
                Err(error @ SubmitError::Loopback(_)) => {
                    warn!(%from, %error, "dropped a gossip datagram");
                }
            }
        }
    }
}

/// Halves of split messages, waiting for the other half: UDP keeps no order, so either may come
/// first.
#[derive(Default)]
struct WaitingParts {
    parts: VecDeque<WaitingPart>,
}

struct WaitingPart {
    from: SocketAddr,
    message_id: [u8; MESSAGE_ID_LEN],
    part: Part,
    bytes: Vec<u8>,
    datagram_len: usize,
}

impl WaitingParts {
    /// The whole message and the bytes of both datagrams, once both halves are in.
    fn add(
        &mut self,
        from: SocketAddr,
        message_id: [u8; MESSAGE_ID_LEN],
        part: Part,
        bytes: &[u8],
        datagram_len: usize,
    ) -> Option<(Vec<u8>, usize)> {
        let other = self.parts.iter().position(|waiting| {
            waiting.from == from && waiting.message_id == message_id && waiting.part != part
        });
        if let Some(other) = other.and_then(|position| self.parts.remove(position)) {
            let message = match part {
                Part::First => [bytes, &other.bytes].concat(),
                Part::Second => [&other.bytes, bytes].concat(),
            };
            return Some((message, datagram_len + other.datagram_len));
        }
        if self.parts.len() >= MAX_WAITING_PARTS {
            self.parts.pop_front();
        }
        self.parts.push_back(WaitingPart {
            from,
            message_id,
            part,
            bytes: bytes.to_vec(),
            datagram_len,
        });
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use chitchat::{ChitchatMessage, ProtocolVersion};

    use super::*;
    use crate::gossip_seal::{MAX_DATAGRAM_LEN, MAX_WHOLE_MESSAGE_LEN};

    const TEST_BOUND: Duration = Duration::from_secs(20);

    struct Node {
        socket: SealedUdpSocket,
        addr: SocketAddr,
        rejected: Arc<AtomicU64>,
    }

    async fn node(secret: &str) -> Node {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let rejected = Arc::new(AtomicU64::new(0));
        let socket = SealedUdpSocket::new(
            socket,
            GossipKey::derive(secret, "main").unwrap(),
            Rejections::new(rejected.clone()),
        )
        .await
        .unwrap();
        let addr = socket.local_addr().unwrap();
        Node {
            socket,
            addr,
            rejected,
        }
    }

    /// A SYN with an empty digest in the V0 format is 8 bytes plus its cluster id, which makes
    /// a message of any size up to chitchat's largest.
    fn syn_of_len(len: usize) -> ChitchatEnvelope {
        syn(&"x".repeat(len - 8))
    }

    fn syn(cluster_id: &str) -> ChitchatEnvelope {
        ChitchatEnvelope {
            version: ProtocolVersion::V0,
            message: ChitchatMessage::Syn {
                cluster_id: cluster_id.to_string(),
                digest: Default::default(),
            },
        }
    }

    async fn bounded(test: impl std::future::Future<Output = ()>) {
        tokio::time::timeout(TEST_BOUND, test)
            .await
            .expect("test exceeded its time bound");
    }

    #[tokio::test]
    async fn envelopes_of_every_size_cross_whole_or_in_two_parts() {
        bounded(async {
            let mut a = node("secret").await;
            let mut b = node("secret").await;
            for (len, datagrams) in [
                (9, 1),
                (MAX_WHOLE_MESSAGE_LEN, 1),
                (MAX_WHOLE_MESSAGE_LEN + 1, 2),
                (MAX_DATAGRAM_LEN, 2),
            ] {
                assert_eq!(
                    a.socket.codec.encode(syn_of_len(len)).await.unwrap().len(),
                    len
                );
                let sent = a.socket.send(b.addr, syn_of_len(len)).await.unwrap();
                let expected_bytes = match datagrams {
                    1 => len + crate::gossip_seal::WHOLE_OVERHEAD,
                    _ => len + 2 * crate::gossip_seal::PART_OVERHEAD,
                };
                assert_eq!(sent.num_bytes_sent, expected_bytes, "{len} bytes");
                let received = b.socket.recv().await.unwrap();
                assert_eq!(received.from_addr, a.addr);
                assert_eq!(received.envelope, syn_of_len(len));
                assert_eq!(received.num_bytes_received, expected_bytes);
            }
            let bad_cluster = ChitchatEnvelope {
                version: ProtocolVersion::V1,
                message: ChitchatMessage::BadCluster,
            };
            b.socket.send(a.addr, bad_cluster).await.unwrap();
            let received = a.socket.recv().await.unwrap();
            assert_eq!(received.from_addr, b.addr);
            assert_eq!(received.envelope.message, ChitchatMessage::BadCluster);
            assert_eq!(received.envelope.version, ProtocolVersion::V1);
            assert_eq!(a.rejected.load(Ordering::Relaxed), 0);
            assert_eq!(b.rejected.load(Ordering::Relaxed), 0);
        })
        .await;
    }

    #[tokio::test]
    async fn datagrams_that_do_not_open_are_counted_and_the_next_one_still_arrives() {
        bounded(async {
            let mut receiver = node("secret").await;
            let mut sender = node("secret").await;
            let mut stranger = node("another secret").await;
            let raw = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let key = GossipKey::derive("secret", "main").unwrap();

            // Sealed with another key.
            stranger
                .socket
                .send(receiver.addr, syn("main"))
                .await
                .unwrap();
            // Plain chitchat, from a node without a secret.
            let mut plain = chitchat::transport::UdpSocket::open("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            plain.send(receiver.addr, syn("main")).await.unwrap();
            let sealed = key.seal(b"a valid chitchat message this is not").unwrap();
            let mut garbage: Vec<Vec<u8>> = vec![
                Vec::new(),
                vec![1],
                vec![9; 100],
                vec![0xff; 60_000],
                sealed[0][..20].to_vec(),
                // Opens, but is not chitchat.
                sealed[0].clone(),
            ];
            let mut altered = sealed[0].clone();
            altered[25] ^= 0x80;
            garbage.push(altered);
            for datagram in &garbage {
                raw.send_to(datagram, receiver.addr).await.unwrap();
            }
            // A local process writing to the codec's loopback port, around the seal.
            plain
                .send(receiver.socket.codec.chitchat_addr(), syn("main"))
                .await
                .unwrap();
            // A chitchat header over a body chitchat cannot parse: chitchat drops it without
            // a word, and the codec gives up on it after its timeout.
            let unparsable = key.seal(&[0x53, 0xb0, 0, 2, 0xff, 0xff, 0xff]).unwrap();
            raw.send_to(&unparsable[0], receiver.addr).await.unwrap();

            sender
                .socket
                .send(receiver.addr, syn("main"))
                .await
                .unwrap();
            let received = receiver.socket.recv().await.unwrap();
            assert_eq!(received.from_addr, sender.addr);
            assert_eq!(received.envelope, syn("main"));
            // The stranger, the plain node, the garbage, the loopback intruder, the unparsable.
            assert_eq!(
                receiver.rejected.load(Ordering::Relaxed),
                2 + garbage.len() as u64 + 2
            );
            assert_eq!(sender.rejected.load(Ordering::Relaxed), 0);
            assert_eq!(stranger.rejected.load(Ordering::Relaxed), 0);
        })
        .await;
    }

    #[tokio::test]
    async fn a_recv_cancelled_after_the_datagram_reached_chitchat_loses_nothing() {
        bounded(async {
            let mut receiver = node("secret").await;
            let mut senders = [node("secret").await, node("secret").await];
            // As a `recv` cancelled right after handing a datagram to chitchat leaves it.
            let mut codec = EnvelopeCodec::open().await.unwrap();
            let message = codec.encode(syn("handed over")).await.unwrap().to_vec();
            let from: SocketAddr = "10.1.2.3:7282".parse().unwrap();
            receiver.socket.codec.submit(&message, from, 99).unwrap();
            let received = receiver.socket.recv().await.unwrap();
            assert_eq!(received.from_addr, from);
            assert_eq!(received.num_bytes_received, 99);
            assert_eq!(received.envelope, syn("handed over"));

            // chitchat cancels `recv` at every gossip tick; cancel it far more often, and check
            // that every envelope arrives once, from its sender.
            const MESSAGES: usize = 40;
            for index in 0..MESSAGES {
                let sender = &mut senders[index % 2];
                let cluster_id = format!("{}-{index}", sender.addr);
                sender
                    .socket
                    .send(receiver.addr, syn(&cluster_id))
                    .await
                    .unwrap();
            }
            let mut received = Vec::new();
            while received.len() < MESSAGES {
                let attempt =
                    tokio::time::timeout(Duration::from_micros(20), receiver.socket.recv()).await;
                if let Ok(outcome) = attempt {
                    let outcome = outcome.unwrap();
                    let ChitchatMessage::Syn { cluster_id, .. } = outcome.envelope.message else {
                        panic!("not a SYN");
                    };
                    let (sender, _) = cluster_id.rsplit_once('-').unwrap();
                    assert_eq!(sender, outcome.from_addr.to_string());
                    received.push(cluster_id);
                }
            }
            received.sort();
            received.dedup();
            assert_eq!(received.len(), MESSAGES);
            assert_eq!(receiver.rejected.load(Ordering::Relaxed), 0);
        })
        .await;
    }

    #[test]
    fn halves_are_joined_in_order_whichever_comes_first() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let mut waiting = WaitingParts::default();
        assert_eq!(waiting.add(a, [1; 8], Part::Second, b"world", 50), None);
        // Same id from another sender, and the same half again: no match.
        assert_eq!(waiting.add(b, [1; 8], Part::First, b"hello ", 60), None);
        assert_eq!(waiting.add(a, [1; 8], Part::Second, b"world", 50), None);
        assert_eq!(
            waiting.add(a, [1; 8], Part::First, b"hello ", 60),
            Some((b"hello world".to_vec(), 110))
        );
        assert_eq!(
            waiting.add(b, [1; 8], Part::Second, b"there", 40),
            Some((b"hello there".to_vec(), 100))
        );
        // A half whose other half never came is forgotten once enough others wait.
        for id in 0..MAX_WAITING_PARTS as u8 + 1 {
            waiting.add(a, [id + 10; 8], Part::First, b"x", 1);
        }
        assert_eq!(waiting.parts.len(), MAX_WAITING_PARTS);
        assert_eq!(
            waiting.add(a, [11; 8], Part::Second, b"y", 1),
            Some((b"xy".to_vec(), 2))
        );
        assert_eq!(waiting.add(a, [10; 8], Part::Second, b"y", 1), None);
    }
}
