//! L2 announcement: ARP and NDP responders and gratuitous announcements.
//!
//! `packet` (codecs), `interfaces` (which links answer), `gratuitous` (when to announce) and
//! `announcer` (the state machine tying them) are pure; `driver` runs the sockets.

pub mod announcer;
pub mod driver;
pub mod gratuitous;
pub mod interfaces;
pub mod packet;
