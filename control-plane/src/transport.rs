//! Hands chitchat a UDP socket bound beforehand. chitchat binds its socket inside
//! `spawn_chitchat` and never says which port it got, yet a node must advertise that port in its
//! own chitchat id before gossip starts. Binding first also turns "port in use" into our own
//! error, and leaves no window in which another process could take a port we probed.
//!
//! The socket is chitchat's own, or with a gossip secret one that seals every datagram
//! (`sealed_socket`).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chitchat::transport::{Socket, Transport, UdpSocket};

use crate::error::ClusterError;
use crate::gossip_seal::GossipKey;
use crate::rejections::Rejections;
use crate::sealed_socket::SealedUdpSocket;

pub(crate) struct BoundUdpTransport {
    socket: Mutex<Option<Box<dyn Socket>>>,
}

impl BoundUdpTransport {
    pub fn new(socket: Box<dyn Socket>) -> BoundUdpTransport {
        BoundUdpTransport {
            socket: Mutex::new(Some(socket)),
        }
    }
}

#[async_trait]
impl Transport for BoundUdpTransport {
    async fn open(&self, _listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = self
            .socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        match socket {
            Some(socket) => Ok(socket),
            None => anyhow::bail!("the gossip socket was already handed to chitchat"),
        }
    }
}

/// Binds the gossip port. With a key, datagrams are sealed, and those that do not open are
/// dropped and added to `rejected`.
pub(crate) async fn bind_gossip_socket(
    listen_addr: SocketAddr,
    key: Option<GossipKey>,
    rejected: Arc<AtomicU64>,
) -> Result<Box<dyn Socket>, ClusterError> {
    let Some(key) = key else {
        let socket =
            UdpSocket::open(listen_addr)
                .await
                .map_err(|error| ClusterError::GossipBind {
                    addr: listen_addr,
                    reason: error.root_cause().to_string(),
                })?;
        return Ok(Box::new(socket));
    };
    let socket = tokio::net::UdpSocket::bind(listen_addr)
        .await
        .map_err(|error| ClusterError::GossipBind {
            addr: listen_addr,
            reason: error.to_string(),
        })?;
    let sealed = SealedUdpSocket::new(socket, key, Rejections::new(rejected))
        .await
        .map_err(|error| ClusterError::GossipStart {
            reason: format!("{error:#}"),
        })?;
    Ok(Box::new(sealed))
}
