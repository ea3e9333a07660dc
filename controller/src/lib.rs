//! metallb-controller: IP address management for Services of type LoadBalancer, and the
//! validating and conversion webhooks of the `metallb.io` kinds.
#![forbid(unsafe_code)]

pub mod allocator;
