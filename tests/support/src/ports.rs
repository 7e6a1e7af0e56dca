//! Loopback ports for the servers a test starts itself (`nats::Cluster`, `pg_server::PgServer`).
//!
//! Fixed ports made two runs of one test collide, and a server left by a killed run answered
//! the next run in place of its own. Each port here is one nobody listens on at the time of
//! the call, drawn at random from 15000–29999: below Linux's ephemeral range (32768–60999), so
//! that an outgoing connection does not take it between this check and the server's bind.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;

const LOW: u16 = 15_000;
const SPAN: u16 = 15_000;

/// `n` distinct loopback ports, each free when checked.
///
/// # Panics
/// When 10,000 draws do not find `n` free ports (the range is full).
pub fn free_ports(n: usize) -> Vec<u16> {
    let seed = RandomState::new();
    let mut found = BTreeSet::new();
    let mut ports = Vec::with_capacity(n);
    for draw in 0u64..10_000 {
        if ports.len() == n {
            break;
        }
        let port = LOW + (seed.hash_one(draw) % u64::from(SPAN)) as u16;
        if !found.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            found.insert(port);
            ports.push(port);
        }
    }
    assert_eq!(
        ports.len(),
        n,
        "no {n} free loopback ports in {LOW}–{}",
        LOW + SPAN - 1
    );
    ports
}

/// One free loopback port.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_free_and_in_range() {
        let ports = free_ports(6);
        assert_eq!(ports.iter().collect::<BTreeSet<_>>().len(), 6);
        for port in ports {
            assert!((LOW..LOW + SPAN).contains(&port));
            TcpListener::bind(("127.0.0.1", port)).expect("a port given out is free");
        }
    }

    #[test]
    fn a_port_in_use_is_not_given_out() {
        let held: Vec<TcpListener> = free_ports(50)
            .into_iter()
            .map(|p| TcpListener::bind(("127.0.0.1", p)).unwrap())
            .collect();
        let busy: BTreeSet<u16> = held
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        for port in free_ports(50) {
            assert!(!busy.contains(&port), "{port} is held by this test");
        }
    }
}
