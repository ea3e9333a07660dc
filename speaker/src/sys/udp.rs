//! UDP datagrams with what the kernel knows about their arrival: the TTL / hop limit (BFD's
//! RFC 5881 §5 check), the destination address and the interface (BFD's demultiplexing before
//! the peer knows our discriminator). `recvmsg` with ancillary data, which std and tokio do
//! not offer.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// One received datagram's metadata; its bytes are the first `len` of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub len: usize,
    pub source: SocketAddr,
    /// The IP header's destination address.
    pub destination: Option<IpAddr>,
    /// The index of the interface the datagram came in on.
    pub interface: Option<u32>,
    /// The IPv4 TTL or the IPv6 hop limit.
    pub ttl: Option<u8>,
}

fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed is its size; `fd` is an open
    // descriptor borrowed for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to attach the TTL (hop limit) and the packet info (destination address,
/// interface) to every datagram received on the socket.
pub fn enable_arrival_info(fd: BorrowedFd<'_>, ipv6: bool) -> io::Result<()> {
    if ipv6 {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
    } else {
        set_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1)?;
        set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
    }
}

/// Receives one datagram without blocking (`WouldBlock` when none is queued).
pub fn recv_with_arrival(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Arrival> {
    // Room for a TTL/hop limit and a pktinfo message, with headers and alignment.
    let mut control = [0u64; 16];
    // SAFETY: `sockaddr_storage` is plain old data; all zeroes is a valid value.
    let mut source: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `msghdr` is plain old data; all zeroes is a valid value (null pointers, zero
    // lengths), and on some libcs it has private padding fields we cannot name.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&raw mut source).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` points to a live buffer of the stated length (`buf`
    // through `iov`, `source`, `control`), all of which outlive the call; `fd` is open.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let source =
        socket_addr(&source).ok_or_else(|| io::Error::other("datagram from a non-IP address"))?;
    let mut arrival = Arrival {
        len: n as usize,
        source,
        destination: None,
        interface: None,
        ttl: None,
    };
    // SAFETY: `msg` was filled in by a successful recvmsg: `msg_control` points to `control`
    // and `msg_controllen` says how much of it the kernel wrote. CMSG_FIRSTHDR/CMSG_NXTHDR
    // stay within that length, and each payload is read unaligned with the size the kernel
    // uses for that message type (checked against `cmsg_len` first).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            let payload = (header.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            match (header.cmsg_level, header.cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                    if payload >= mem::size_of::<libc::c_int>() =>
                {
                    let ttl = data.cast::<libc::c_int>().read_unaligned();
                    arrival.ttl = u8::try_from(ttl).ok();
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if payload >= mem::size_of::<libc::in_pktinfo>() =>
                {
                    let info = data.cast::<libc::in_pktinfo>().read_unaligned();
                    arrival.destination = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                    arrival.interface = u32::try_from(info.ipi_ifindex).ok();
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                    if payload >= mem::size_of::<libc::in6_pktinfo>() =>
                {
                    let info = data.cast::<libc::in6_pktinfo>().read_unaligned();
                    arrival.destination = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                    arrival.interface = Some(info.ipi6_ifindex);
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok(arrival)
}

fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`, which it is large
            // enough and suitably aligned for.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for `sockaddr_in6`.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The index of the interface named `name`.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let name = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name with NUL"))?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}
