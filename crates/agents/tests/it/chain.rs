//! Placeholder until the chain tests land.
