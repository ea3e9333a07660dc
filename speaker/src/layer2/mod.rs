//! L2 announcement: ARP and NDP responders and gratuitous announcements.

pub mod packet;
