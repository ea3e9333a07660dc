//! BGP, native backend: the protocol (codec and session state machine, sans-IO) and the
//! driver that runs one session on a TCP connection.
pub mod driver;
pub mod message;
pub mod session;
