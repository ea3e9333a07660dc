//! The one module with `unsafe` code: AF_PACKET sockets bound to one interface, their filter
//! and multicast memberships; TCP MD5 keys for BGP sessions ([`set_tcp_md5_key`]). Everything
//! above it is safe Rust.
//!
//! A [`PacketSocket`] receives the frames of one EtherType arriving on one interface (outgoing
//! frames are not delivered to protocol-specific packet sockets) and sends whole Ethernet frames
//! out of that interface. It needs CAP_NET_RAW.
#![allow(unsafe_code)]

mod tcp_md5;
/// UDP receive with TTL / hop limit and packet info (BFD).
pub mod udp;

pub use tcp_md5::set_tcp_md5_key;

use std::io::{self, Read, Write};
use std::mem;
use std::os::fd::AsRawFd;

use socket2::{Domain, SockAddr, SockAddrStorage, SockFilter, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A raw packet socket on one interface for one EtherType.
#[derive(Debug)]
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
    index: u32,
}

impl PacketSocket {
    /// Opens a socket receiving `ethertype` frames on interface `index`.
    pub fn open(index: u32, ethertype: u16) -> io::Result<Self> {
        let protocol = i32::from(ethertype.to_be());
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(protocol.into()))?;
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: `SockAddrStorage` is large enough and suitably aligned for any socket
        // address, `sockaddr_ll` included; we only write its fields through this view.
        let ll: &mut libc::sockaddr_ll = unsafe { storage.view_as() };
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = ethertype.to_be();
        ll.sll_ifindex = i32::try_from(index).map_err(|_| io::Error::other("bad ifindex"))?;
        let len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: the first `len` bytes of `storage` hold the initialised `sockaddr_ll` above.
        let addr = unsafe { SockAddr::new(storage, len) };
        socket.bind(&addr)?;
        // SAFETY: `socket` owns an open descriptor and keeps it, unchanged, until the
        // `AsyncFd` (which owns the socket) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self { fd, index })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    /// Keeps only frames the classic BPF program accepts (frames queued before it was
    /// attached may still arrive).
    pub fn attach_filter(&self, program: &[SockFilter]) -> io::Result<()> {
        self.fd.get_ref().attach_filter(program)
    }

    /// Receives frames sent to a multicast Ethernet address (refcounted by the kernel per
    /// socket; released when the socket closes).
    pub fn join(&self, mac: [u8; 6]) -> io::Result<()> {
        self.membership(libc::PACKET_ADD_MEMBERSHIP, mac)
    }

    pub fn leave(&self, mac: [u8; 6]) -> io::Result<()> {
        self.membership(libc::PACKET_DROP_MEMBERSHIP, mac)
    }

    fn membership(&self, option: libc::c_int, mac: [u8; 6]) -> io::Result<()> {
        let mut address = [0u8; 8];
        address[..6].copy_from_slice(&mac);
        let mreq = libc::packet_mreq {
            mr_ifindex: i32::try_from(self.index).map_err(|_| io::Error::other("bad ifindex"))?,
            mr_type: libc::PACKET_MR_MULTICAST as u16,
            mr_alen: 6,
            mr_address: address,
        };
        // SAFETY: `mreq` is a valid, initialised `packet_mreq` that outlives the call, and the
        // length passed is its size; the descriptor is open for as long as `self` lives.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.get_ref().as_raw_fd(),
                libc::SOL_PACKET,
                option,
                (&raw const mreq).cast(),
                mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits for the next frame; returns its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |mut s| s.read(buf))
            .await
    }

    /// Sends a whole Ethernet frame out of the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sent = (&mut self.fd.get_ref()).write(frame)?;
        if sent == frame.len() {
            Ok(())
        } else {
            Err(io::Error::other("short write"))
        }
    }
}
