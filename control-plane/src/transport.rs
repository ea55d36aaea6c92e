//! Hands chitchat a UDP socket bound beforehand. chitchat binds its socket inside
//! `spawn_chitchat` and never says which port it got, yet a node must advertise that port in its
//! own chitchat id before gossip starts. Binding first also turns "port in use" into our own
//! error, and leaves no window in which another process could take a port we probed.

use std::net::SocketAddr;
use std::sync::Mutex;

use async_trait::async_trait;
use chitchat::transport::{Socket, Transport, UdpSocket};

pub(crate) struct BoundUdpTransport {
    socket: Mutex<Option<UdpSocket>>,
}

impl BoundUdpTransport {
    pub fn new(socket: UdpSocket) -> BoundUdpTransport {
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
            Some(socket) => Ok(Box::new(socket)),
            None => anyhow::bail!("the gossip socket was already handed to chitchat"),
        }
    }
}
