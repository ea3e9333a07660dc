//! The liveness core in a simulated network with a simulated clock: several speakers, their
//! datagrams delivered after a latency, links cut, processes killed and restarted. No socket,
//! no sleep.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foca::Timer;
use pretty_assertions::assert_eq;

use super::wire::Key;
use super::*;

const STEP: Duration = Duration::from_millis(5);
const TICK_EVERY: Duration = Duration::from_millis(100);

enum Event {
    Deliver { to: usize, data: Vec<u8> },
    Timer { node: usize, timer: Timer<Member> },
}

struct Sim {
    start: Instant,
    now: Instant,
    nodes: Vec<Membership>,
    /// The process runs (a killed speaker neither sends nor receives).
    running: Vec<bool>,
    /// The node's link is up.
    linked: Vec<bool>,
    /// Extra one-way delay of everything a node sends or receives.
    slow: Vec<Duration>,
    events: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    latency: Duration,
    next_tick: Instant,
    seed: u64,
}

fn name(i: usize) -> String {
    format!("node-{}", i + 1)
}

fn addr(i: usize) -> SocketAddr {
    format!("192.0.2.{}:7946", 11 + i).parse().unwrap()
}

fn names(list: &[usize]) -> BTreeSet<String> {
    list.iter().map(|i| name(*i)).collect()
}

impl Sim {
    fn new(count: usize, seed: u64) -> Self {
        let start = Instant::now();
        let mut sim = Self {
            start,
            now: start,
            nodes: Vec::new(),
            running: vec![true; count],
            linked: vec![true; count],
            slow: vec![Duration::ZERO; count],
            events: BTreeMap::new(),
            seq: 0,
            latency: Duration::from_micros(300),
            next_tick: start,
            seed,
        };
        for i in 0..count {
            sim.nodes
                .push(sim.speaker(i, 1, Key::from_file_contents(b"shared")));
        }
        for i in 0..count {
            sim.discover(i);
        }
        sim
    }

    fn speaker(&self, i: usize, generation: u64, key: Key) -> Membership {
        let me = Member {
            node: name(i),
            addr: addr(i),
            generation,
        };
        Membership::new(
            me,
            key,
            Tuning::default(),
            self.seed * 100 + i as u64 + generation,
        )
    }

    fn discover(&mut self, i: usize) {
        let peers = (0..self.nodes.len()).map(|j| (name(j), addr(j))).collect();
        let out = self.nodes[i].set_peers(peers, self.now);
        self.handle(i, out);
    }

    fn handle(&mut self, from: usize, outputs: Vec<Output>) {
        for output in outputs {
            self.seq += 1;
            match output {
                Output::Send { to, data } => {
                    let Some(to) = (0..self.nodes.len()).find(|j| addr(*j) == to) else {
                        continue;
                    };
                    if !self.linked[from] || !self.linked[to] {
                        continue;
                    }
                    let at = self.now + self.latency + self.slow[from] + self.slow[to];
                    self.events
                        .insert((at, self.seq), Event::Deliver { to, data });
                }
                Output::Schedule { at, timer } => {
                    self.events
                        .insert((at, self.seq), Event::Timer { node: from, timer });
                }
            }
        }
    }

    /// Advances the clock by `d`, delivering datagrams and firing timers in order.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += STEP;
            while let Some(entry) = self.events.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let event = entry.remove();
                match event {
                    Event::Deliver { to, data } => {
                        if self.running[to] && self.linked[to] {
                            let out = self.nodes[to].on_datagram(&data, self.now);
                            self.handle(to, out);
                        }
                    }
                    Event::Timer { node, timer } => {
                        if self.running[node] {
                            let out = self.nodes[node].on_timer(timer, self.now);
                            self.handle(node, out);
                        }
                    }
                }
            }
            if self.now >= self.next_tick {
                self.next_tick = self.now + TICK_EVERY;
                for i in 0..self.nodes.len() {
                    if self.running[i] {
                        let out = self.nodes[i].tick(self.now);
                        self.handle(i, out);
                    }
                }
            }
        }
    }

    /// Runs until `done` holds (checked every step), at most `limit`; returns the time taken.
    fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let from = self.now;
        while self.now - from < limit {
            if done(self) {
                return Some(self.now - from);
            }
            self.run(STEP);
        }
        None
    }

    fn live(&self, i: usize) -> BTreeSet<String> {
        self.nodes[i].live(self.now)
    }

    fn kill(&mut self, i: usize) {
        self.running[i] = false;
        self.events
            .retain(|_, e| !matches!(e, Event::Timer { node, .. } if *node == i));
    }

    fn restart(&mut self, i: usize, generation: u64) {
        self.running[i] = true;
        self.nodes[i] = self.speaker(i, generation, Key::from_file_contents(b"shared"));
        self.discover(i);
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

#[test]
fn speakers_that_discover_each_other_all_see_every_speaker_live() {
    let mut sim = Sim::new(3, 1);
    let took = sim
        .run_until(Duration::from_secs(2), |s| {
            (0..3).all(|i| s.live(i) == names(&[0, 1, 2]))
        })
        .expect("every speaker sees all three");
    // Self-settle (150 ms) dominates: joining itself takes a round trip.
    assert!(took <= Duration::from_millis(250), "{took:?}");
}

#[test]
fn a_lone_speaker_counts_itself_live_after_settling() {
    let mut sim = Sim::new(1, 1);
    assert_eq!(sim.live(0), names(&[]));
    sim.run(Duration::from_millis(200));
    assert_eq!(sim.live(0), names(&[0]));
}

/// Detection times, in ms, of a speaker killed at a random point of the probe cycle.
fn detection_times(kill_link: bool) -> Vec<u128> {
    let mut times = Vec::new();
    for seed in 0..40 {
        let mut sim = Sim::new(3, seed);
        sim.run(Duration::from_secs(2) + Duration::from_millis(seed * 7 % 150));
        assert!(
            (0..3).all(|i| sim.live(i) == names(&[0, 1, 2])),
            "seed {seed}"
        );
        let victim = (seed % 3) as usize;
        if kill_link {
            sim.linked[victim] = false;
        } else {
            sim.kill(victim);
        }
        let others: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
        let took = sim
            .run_until(Duration::from_secs(5), |s| {
                others.iter().all(|i| !s.live(*i).contains(&name(victim)))
            })
            .unwrap_or_else(|| panic!("seed {seed}: the dead speaker stays live"));
        // The survivors keep each other.
        for i in &others {
            assert_eq!(sim.live(*i), names(&others), "seed {seed}");
        }
        times.push(took.as_millis());
    }
    times.sort();
    times
}

#[test]
fn a_killed_speaker_is_down_for_every_other_well_within_a_second() {
    let times = detection_times(false);
    let (p50, max) = (times[times.len() / 2], times[times.len() - 1]);
    eprintln!("detection after kill: p50 {p50} ms, max {max} ms, all {times:?}");
    // One period to be probed, one to fail, the suspicion, and a gossip round: 450–900 ms.
    assert!(
        p50 <= 600 && max <= 900,
        "p50 {p50} ms, max {max} ms: {times:?}"
    );
    assert!(p50 >= 300, "suspicion alone takes 300 ms: {times:?}");
}

#[test]
fn a_speaker_whose_link_goes_down_is_down_for_every_other_well_within_a_second() {
    let times = detection_times(true);
    assert!(times[times.len() - 1] <= 900, "{times:?}");
}

#[test]
fn a_leaving_speaker_is_removed_by_every_other_at_once() {
    let mut sim = Sim::new(3, 4);
    sim.run(Duration::from_secs(2));
    let out = sim.nodes[0].leave(sim.now);
    sim.handle(0, out);
    assert!(
        !sim.live(0).contains("node-1"),
        "a leaving speaker stops counting itself"
    );
    let took = sim
        .run_until(Duration::from_secs(1), |s| {
            [1, 2].iter().all(|i| !s.live(*i).contains("node-1"))
        })
        .expect("the others drop the leaver");
    assert!(took <= Duration::from_millis(10), "{took:?}");
    // And nobody brings it back while it is gone.
    sim.kill(0);
    sim.run(Duration::from_secs(3));
    assert_eq!(sim.live(1), names(&[1, 2]));
}

#[test]
fn a_restarted_speaker_is_live_for_others_at_once_and_for_itself_only_after_settling() {
    let mut sim = Sim::new(3, 5);
    sim.run(Duration::from_secs(2));
    sim.kill(0);
    sim.run(Duration::from_secs(2));
    assert_eq!(sim.live(1), names(&[1, 2]));
    sim.restart(0, 2);
    let seen_by_others = sim
        .run_until(Duration::from_secs(1), |s| {
            [1, 2].iter().all(|i| s.live(*i).contains("node-1"))
        })
        .expect("the others see the restarted speaker");
    assert!(
        seen_by_others <= Duration::from_millis(10),
        "{seen_by_others:?}"
    );
    assert!(!sim.live(0).contains("node-1"), "still settling");
    let sees_itself = sim
        .run_until(Duration::from_secs(1), |s| s.live(0).contains("node-1"))
        .expect("it counts itself after settling");
    assert!(
        sees_itself >= Duration::from_millis(140) && sees_itself <= Duration::from_millis(200),
        "{sees_itself:?}"
    );
    assert_eq!(sim.live(0), names(&[0, 1, 2]));
}

#[test]
fn a_cut_off_speaker_waits_before_claiming_and_rejoins_without_claiming_early() {
    let mut sim = Sim::new(3, 6);
    sim.run(Duration::from_secs(2));
    sim.linked[0] = false;
    // It notices it is alone, and counts itself only after the isolation grace.
    sim.run_until(Duration::from_secs(2), |s| !s.nodes[0].connected())
        .expect("the cut-off speaker loses its peers");
    let alone_at = sim.elapsed();
    assert_eq!(sim.live(0), names(&[]));
    let claims = sim
        .run_until(Duration::from_secs(3), |s| s.live(0) == names(&[0]))
        .expect("after the grace it counts itself");
    assert!(
        claims >= Duration::from_millis(1990),
        "{claims:?} after {alone_at:?}"
    );
    sim.run(Duration::from_secs(3));

    // The link comes back: it never counts itself without the others.
    sim.linked[0] = true;
    let out = sim.nodes[0].on_link_up(sim.now);
    sim.handle(0, out);
    let mut checked = 0;
    let merged = sim.run_until(Duration::from_secs(3), |s| {
        let live = s.live(0);
        if live.contains("node-1") {
            assert_eq!(live, names(&[0, 1, 2]), "claimed IPs with a partial view");
            // And the others already know it is back, so their owners have let go.
            for i in [1, 2] {
                assert!(
                    s.live(i).contains("node-1"),
                    "node-{} does not see node-1 yet",
                    i + 1
                );
            }
        }
        checked += 1;
        (0..3).all(|i| s.live(i) == names(&[0, 1, 2]))
    });
    assert!(merged.is_some() && checked > 1, "the cluster merges again");
}

#[test]
fn a_speaker_with_the_wrong_key_is_never_seen() {
    let mut sim = Sim::new(3, 7);
    sim.nodes[2] = sim.speaker(2, 1, Key::from_file_contents(b"another key"));
    sim.discover(2);
    sim.run(Duration::from_secs(3));
    assert_eq!(sim.live(0), names(&[0, 1]));
    assert_eq!(sim.live(1), names(&[0, 1]));
    assert!(!sim.nodes[2].connected());
}

#[test]
fn a_slow_speaker_is_suspected_but_never_declared_down() {
    let mut sim = Sim::new(3, 8);
    sim.run(Duration::from_secs(2));
    sim.slow[1] = Duration::from_millis(60);
    let dropped = sim.run_until(Duration::from_secs(10), |s| {
        !(s.live(0).contains("node-2") && s.live(2).contains("node-2"))
    });
    assert_eq!(dropped, None, "a slow speaker was declared down");
}
