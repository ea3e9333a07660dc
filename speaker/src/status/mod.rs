//! What the speaker's status objects should say, computed by pure functions; the one writer
//! ([`crate::writer`]) sends them. The ConfigurationState body comes from
//! [`metallb_api::configstate`], shared with the controller.

pub mod service;
