//! Turns chitchat envelopes into bytes and back, for the sealed socket. chitchat 0.13 keeps its
//! wire format to itself: `ChitchatEnvelope::serialize` and `deserialize` are `pub(crate)`, and
//! the digest that every SYN and SYN-ACK carries has no public encoder at all. The one public
//! piece of code that writes and reads that format is chitchat's own `UdpSocket`, so the codec
//! runs one on loopback: to encode, it has it send the envelope to a socket of ours and reads
//! the bytes; to decode, it sends it the opened bytes and reads back the envelope. That is
//! chitchat's exact format whatever its version, for a few loopback system calls per datagram,
//! which gossip's handful of datagrams a second does not feel. Once chitchat makes its
//! (de)serialisation public, this file shrinks to two calls.
//!
//! The loopback port must not become a way around the seal: chitchat's socket takes envelopes
//! only from the codec's own relay sockets; anything else a local process sends it is dropped
//! and counted. (Forging a loopback source address needs raw sockets, a privilege that also
//! reads the secret from the node's config.)

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use chitchat::transport::{RecvOutcome, Socket, UdpSocket};
use chitchat::{ChitchatEnvelope, ProtocolVersion};
use tokio::time::{timeout, timeout_at, Instant};

use crate::gossip_seal::MAX_DATAGRAM_LEN;
use crate::rejections::Rejections;

/// A loopback datagram arrives before `send` returns; this bound only matters when chitchat
/// silently dropped one, and keeps a lost one from stalling gossip for longer.
const LOOPBACK_TIMEOUT: Duration = Duration::from_millis(500);

/// chitchat's header: magic number (little endian), protocol version, message type.
const CHITCHAT_MAGIC: [u8; 2] = 45_139u16.to_le_bytes();
const CHITCHAT_HEADER_LEN: usize = 4;
/// SYN, SYN-ACK, ACK and BAD-CLUSTER.
const MAX_CHITCHAT_MESSAGE_TYPE: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    /// Only a holder of the secret can get here: a peer running a chitchat this node's does not
    /// read, most likely.
    #[error(
        "sealed with this cluster's key but not a chitchat message this node reads (a peer on \
         another Quarry version?)"
    )]
    NotChitchat,
    #[error("cannot hand a gossip message to chitchat over loopback: {0}")]
    Loopback(#[source] io::Error),
}

pub(crate) struct EnvelopeCodec {
    /// chitchat's socket: it serialises what it sends and parses what it receives.
    chitchat: UdpSocket,
    /// Receives what `chitchat` sends, i.e. encoded envelopes. Connected to `chitchat`, so the
    /// kernel drops anything else.
    encoded: tokio::net::UdpSocket,
    encoded_addr: SocketAddr,
    encoded_buf: Box<[u8]>,
    /// Hand opened datagrams to `chitchat`, each in turn: which one an envelope comes back from
    /// tells the one awaited from a late one whose sender was given up on.
    relays: [Relay; 2],
    next_relay: usize,
    /// The datagram handed to chitchat whose envelope has not been read yet.
    in_flight: Option<InFlight>,
}

struct Relay {
    socket: tokio::net::UdpSocket,
    addr: SocketAddr,
}

#[derive(Clone, Copy)]
struct InFlight {
    relay: usize,
    from: SocketAddr,
    num_bytes_received: usize,
    deadline: Instant,
}

impl EnvelopeCodec {
    pub async fn open() -> anyhow::Result<EnvelopeCodec> {
        let loopback: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let chitchat = UdpSocket::open(loopback).await?;
        let chitchat_addr = chitchat.local_addr()?;
        let connected = || async {
            let socket = tokio::net::UdpSocket::bind(loopback).await?;
            socket.connect(chitchat_addr).await?;
            let addr = socket.local_addr()?;
            io::Result::Ok((socket, addr))
        };
        let (encoded, encoded_addr) = connected().await.context("cannot bind on loopback")?;
        let (first, first_addr) = connected().await.context("cannot bind on loopback")?;
        let (second, second_addr) = connected().await.context("cannot bind on loopback")?;
        Ok(EnvelopeCodec {
            chitchat,
            encoded,
            encoded_addr,
            encoded_buf: vec![0u8; MAX_DATAGRAM_LEN].into_boxed_slice(),
            relays: [
                Relay {
                    socket: first,
                    addr: first_addr,
                },
                Relay {
                    socket: second,
                    addr: second_addr,
                },
            ],
            next_relay: 0,
            in_flight: None,
        })
    }

    /// The envelope in chitchat's wire format, exactly as its own UDP socket would send it.
    pub async fn encode(&mut self, envelope: ChitchatEnvelope) -> anyhow::Result<&[u8]> {
        // Bytes of an earlier encode that timed out would otherwise be taken for these.
        while self.encoded.try_recv(&mut self.encoded_buf).is_ok() {}
        self.chitchat.send(self.encoded_addr, envelope).await?;
        let len = timeout(LOOPBACK_TIMEOUT, self.encoded.recv(&mut self.encoded_buf))
            .await
            .map_err(|_| {
                anyhow::anyhow!("chitchat's encoding did not come back over loopback in time")
            })?
            .context("cannot read chitchat's encoding over loopback")?;
        Ok(&self.encoded_buf[..len])
    }

    /// Hands an opened datagram from `from` to chitchat, without waiting: `decoded` reads the
    /// envelope, so that a `recv` cancelled in between (chitchat races it against its gossip
    /// timer) loses nothing. Call `decoded` first: one datagram is in flight at a time.
    pub fn submit(
        &mut self,
        message: &[u8],
        from: SocketAddr,
        num_bytes_received: usize,
    ) -> Result<(), SubmitError> {
        // chitchat drops what it cannot parse without telling its caller, and `decoded` would
        // wait for nothing. Checking the header first catches the likely case, a peer on another
        // protocol version, at once.
        debug_assert!(self.in_flight.is_none(), "submit before decoded");
        if !has_chitchat_header(message) {
            return Err(SubmitError::NotChitchat);
        }
        let relay = self.next_relay;
        self.next_relay = (relay + 1) % self.relays.len();
        // `try_send` has no await point: the datagram is sent, or not, before this returns, so
        // a cancelled `recv` never leaves `in_flight` out of step with what chitchat will read.
        self.relays[relay]
            .socket
            .try_send(message)
            .map_err(SubmitError::Loopback)?;
        self.in_flight = Some(InFlight {
            relay,
            from,
            num_bytes_received,
            deadline: Instant::now() + LOOPBACK_TIMEOUT,
        });
        Ok(())
    }

    /// The envelope of the submitted datagram, with its real sender. None when nothing is in
    /// flight, or when chitchat could not parse it (chitchat logs why; it counts as rejected).
    /// Errors only when chitchat's socket is broken.
    pub async fn decoded(
        &mut self,
        rejections: &mut Rejections,
    ) -> anyhow::Result<Option<RecvOutcome>> {
        let Some(in_flight) = self.in_flight else {
            return Ok(None);
        };
        let expected = self.relays[in_flight.relay].addr;
        let relays = [self.relays[0].addr, self.relays[1].addr];
        let chitchat = &mut self.chitchat;
        let received = timeout_at(in_flight.deadline, async {
            loop {
                let outcome = chitchat.recv().await?;
                if outcome.from_addr == expected {
                    return anyhow::Ok(outcome.envelope);
                }
                // From the other relay: the envelope of a datagram whose sender was given up on.
                if !relays.contains(&outcome.from_addr) {
                    rejections.record(
                        outcome.from_addr,
                        &"a plain chitchat datagram sent to the node's loopback codec port",
                    );
                }
            }
        })
        .await;
        self.in_flight = None;
        match received {
            Ok(Ok(envelope)) => Ok(Some(RecvOutcome {
                from_addr: in_flight.from,
                envelope,
                num_bytes_received: in_flight.num_bytes_received,
            })),
            Ok(Err(error)) => Err(error),
            Err(_elapsed) => {
                rejections.record(in_flight.from, &SubmitError::NotChitchat);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
impl EnvelopeCodec {
    /// Where chitchat's loopback socket listens, for tests that write to it directly.
    pub fn chitchat_addr(&self) -> SocketAddr {
        self.chitchat
            .local_addr()
            .expect("a bound socket has an address")
    }
}

fn has_chitchat_header(message: &[u8]) -> bool {
    message.len() >= CHITCHAT_HEADER_LEN
        && message[..2] == CHITCHAT_MAGIC
        && ProtocolVersion::from_code(message[2]).is_some()
        && message[3] <= MAX_CHITCHAT_MESSAGE_TYPE
}
