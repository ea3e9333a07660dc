//! TCP MD5 signatures (RFC 2385) for BGP sessions: `setsockopt(TCP_MD5SIG)` with the peer's
//! address and the key, before `connect`. Linux only; works for IPv4 and IPv6 sockets.

use std::io;
use std::mem;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct tcp_md5sig` of `include/uapi/linux/tcp.h`. The address is a
/// `__kernel_sockaddr_storage` (128 bytes), written here byte by byte; the fields after it
/// fall on the same offsets (128, 129, 130, 132, 136) as in the kernel's struct, and the size
/// (216) is the one the kernel requires as the option length.
#[repr(C)]
struct TcpMd5Sig {
    addr: [u8; 128],
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; libc::TCP_MD5SIG_MAXKEYLEN],
}

const _: () = assert!(mem::size_of::<TcpMd5Sig>() == 216);

/// Signs every segment exchanged with `peer` on this socket with `key` (at most 80 bytes).
/// The error never contains the key.
pub fn set_tcp_md5_key(socket: BorrowedFd<'_>, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.len() > libc::TCP_MD5SIG_MAXKEYLEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a TCP MD5 key is at most {} bytes, this one has {}",
                libc::TCP_MD5SIG_MAXKEYLEN,
                key.len()
            ),
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: [0; 128],
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; libc::TCP_MD5SIG_MAXKEYLEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    // sockaddr_in / sockaddr_in6: the family in host order, then (port 0, flow info 0) the
    // address in network order. The kernel matches on family and address only.
    match peer {
        IpAddr::V4(v4) => {
            sig.addr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            sig.addr[4..8].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            sig.addr[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            sig.addr[8..24].copy_from_slice(&v6.octets());
        }
    }
    // SAFETY: `sig` is an initialised `TcpMd5Sig`, laid out as the kernel's `tcp_md5sig`
    // (checked size, `repr(C)`), that outlives the call; the length passed is its size; the
    // descriptor is borrowed, so it stays open for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            (&raw const sig).cast(),
            mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
