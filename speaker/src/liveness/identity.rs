//! A speaker's identity in the gossip: node name, address, and a generation that grows on
//! every restart or rejoin.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One speaker. Two identities with the same node are the same speaker at different times;
/// the higher generation wins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    pub node: String,
    pub addr: SocketAddr,
    pub generation: u64,
}

impl foca::Identity for Member {
    type Addr = String;

    /// A speaker declared down comes back at once with the next generation.
    fn renew(&self) -> Option<Self> {
        Some(Self {
            generation: self.generation + 1,
            ..self.clone()
        })
    }

    fn addr(&self) -> String {
        self.node.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.generation > adversary.generation
    }
}
