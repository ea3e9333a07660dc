//! Native BFD against a real peer: Debian's FRR `bfdd` (with `zebra`) in network namespaces
//! this test creates, `bfdtest-<pid>-us` (our driver) and `bfdtest-<pid>-rt` (FRR), joined by
//! a veth pair addressed from 198.51.100.0/24 and 2001:db8:fe::/64. It needs root, iproute2
//! and the `frr` package, so it is ignored by default:
//!
//! ```text
//! cargo test -p metallb-speaker --test bfd_frr -- --ignored --nocapture
//! ```
//! The test process builds the namespaces and starts FRR, then runs itself again inside the
//! `us` namespace (`ip netns exec`) so that the driver's sockets live there; whatever the inner
//! run does, the outer one stops FRR and deletes the namespaces and files. Every wait is
//! bounded.
//!
//! What it checks: single-hop IPv4 and IPv6 (passive) and multihop IPv4 sessions come Up on
//! both sides; a timer change goes through Poll/Final without a flap and FRR sees the new
//! intervals; the router's link going down takes every session Down within the detection time
//! (300 ms × 3; five trials, figures printed); FRR's `shutdown` of a peer reaches us as
//! AdminDown (the client must not tear down); removing a session and stopping the driver show
//! up in FRR as "administratively down"; a session whose source address is configured late
//! comes up once it is (its socket is retried).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metallb_speaker::bfd::driver::{self, Event, Stats};
use metallb_speaker::bfd::{Diagnostic, Notice, Profile, SessionKey, State};
use tokio::sync::mpsc;

/// Set in the inner run: the FRR run directory (vty sockets).
const INNER_DIR: &str = "BFDTEST_FRR_RUN_DIR";
/// Set in the inner run: the router's namespace.
const INNER_ROUTER_NS: &str = "BFDTEST_ROUTER_NS";
const TEST_NAME: &str = "native_bfd_comes_up_with_frr_survives_timer_changes_and_detects_link_loss";

/// Link-down trials of step 3.
const TRIALS: usize = 5;
const US_LINK: &str = "bfdt-us";
const ROUTER_LINK: &str = "bfdt-rt";
const US_V4: &str = "198.51.100.2";
const ROUTER_V4: &str = "198.51.100.1";
const US_V6: &str = "2001:db8:fe::2";
/// An address of ours configured only in the middle of the test.
const US_LATE_V4: &str = "198.51.100.22";
const ROUTER_V6: &str = "2001:db8:fe::1";

fn run(argv: &[&str]) {
    let status = Command::new(argv[0])
        .args(&argv[1..])
        .status()
        .unwrap_or_else(|e| panic!("failed to run {argv:?}: {e}"));
    assert!(status.success(), "{argv:?} failed: {status}");
}

fn bfdd_conf() -> String {
    let timers = "  receive-interval 300\n  transmit-interval 300\n  detect-multiplier 3\n";
    format!(
        "frr defaults traditional\n\
         hostname bfdtest-router\n\
         !\n\
         bfd\n\
         \x20peer {US_V4} local-address {ROUTER_V4} interface {ROUTER_LINK}\n{timers}\x20!\n\
         \x20peer {US_V6} local-address {ROUTER_V6} interface {ROUTER_LINK}\n{timers}\x20!\n\
         \x20peer {US_V4} multihop local-address {ROUTER_V4}\n{timers}\x20!\n\
         \x20peer {US_LATE_V4} local-address {ROUTER_V4} interface {ROUTER_LINK}\n{timers}\x20!\n\
         !\n"
    )
}

/// The namespaces, the veth pair and FRR; torn down on drop.
struct Testbed {
    us: String,
    router: String,
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl Testbed {
    fn up() -> Self {
        let id = std::process::id();
        let mut bed = Self {
            us: format!("bfdtest-{id}-us"),
            router: format!("bfdtest-{id}-rt"),
            dir: std::env::temp_dir().join(format!("bfdtest-{id}")),
            daemons: Vec::new(),
        };
        let (us, rt) = (bed.us.clone(), bed.router.clone());
        for ns in [&us, &rt] {
            run(&["ip", "netns", "add", ns]);
            // A link taken down keeps its IPv6 addresses, as IPv4 ones are kept, so that
            // the sessions can come back when it is up again.
            run(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.keep_addr_on_down=1",
            ]);
        }
        run(&[
            "ip",
            "link",
            "add",
            US_LINK,
            "netns",
            &us,
            "type",
            "veth",
            "peer",
            "name",
            ROUTER_LINK,
            "netns",
            &rt,
        ]);
        for (ns, link, v4, v6) in [
            (&us, US_LINK, US_V4, US_V6),
            (&rt, ROUTER_LINK, ROUTER_V4, ROUTER_V6),
        ] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v4}/24"),
                "dev",
                link,
            ]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                link,
                "nodad",
            ]);
            run(&["ip", "-n", ns, "link", "set", link, "up"]);
        }
        let run_dir = bed.dir.join("run");
        std::fs::create_dir_all(&run_dir).expect("create the FRR directory");
        std::fs::write(bed.dir.join("zebra.conf"), "hostname bfdtest-router\n").unwrap();
        std::fs::write(bed.dir.join("bfdd.conf"), bfdd_conf()).unwrap();
        run(&["chown", "-R", "frr:frr", &bed.dir.display().to_string()]);
        for daemon in ["zebra", "bfdd"] {
            bed.start(daemon);
            if daemon == "zebra" {
                wait_path(&run_dir.join("zserv.api"), Duration::from_secs(10));
            }
        }
        wait_path(&run_dir.join("bfdd.vty"), Duration::from_secs(10));
        bed
    }

    fn start(&mut self, daemon: &str) {
        let dir = self.dir.display().to_string();
        let run_dir = self.dir.join("run").display().to_string();
        let mut argv = vec![
            "netns".to_string(),
            "exec".into(),
            self.router.clone(),
            format!("/usr/lib/frr/{daemon}"),
            "-f".into(),
            format!("{dir}/{daemon}.conf"),
            "-i".into(),
            format!("{run_dir}/{daemon}.pid"),
            "-z".into(),
            format!("{run_dir}/zserv.api"),
            "--vty_socket".into(),
            run_dir.clone(),
            "-P".into(),
            "0".into(),
            "-u".into(),
            "frr".into(),
            "-g".into(),
            "frr".into(),
            "--log".into(),
            format!("file:{dir}/{daemon}.log"),
        ];
        if daemon == "bfdd" {
            argv.extend(["--bfdctl".into(), format!("{run_dir}/bfdd.sock")]);
        }
        let child = Command::new("ip")
            .args(&argv)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {daemon}: {e}"));
        self.daemons.push(child);
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for child in &mut self.daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.us, &self.router] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var_os("BFDTEST_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("FRR logs kept in {}", self.dir.display());
        }
    }
}

fn wait_path(path: &Path, timeout: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < timeout,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs root, iproute2 and FRR; creates network namespaces"]
fn native_bfd_comes_up_with_frr_survives_timer_changes_and_detects_link_loss() {
    if let (Ok(run_dir), Ok(router)) = (std::env::var(INNER_DIR), std::env::var(INNER_ROUTER_NS)) {
        // RUST_LOG=metallb_speaker::bfd=debug shows every discarded packet.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(scenario(PathBuf::from(run_dir), router));
        return;
    }
    let bed = Testbed::up();
    let exe = std::env::current_exe().expect("test binary");
    let mut inner = Command::new("ip")
        .args(["netns", "exec", &bed.us])
        .arg(exe)
        .args(["--exact", TEST_NAME, "--ignored", "--nocapture"])
        .env(INNER_DIR, bed.dir.join("run"))
        .env(INNER_ROUTER_NS, &bed.router)
        .spawn()
        .expect("run the test inside the namespace");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = inner.try_wait().expect("wait for the inner run") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(180) {
            let _ = inner.kill();
            let _ = inner.wait();
            panic!("the inner run took more than 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "the inner run failed: {status}");
}

// ------------------------------------------------------------------------------------------
// The inner run, inside the `us` namespace.

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4() -> SessionKey {
    SessionKey::single_hop(ip(ROUTER_V4))
        .from_local(ip(US_V4))
        .on_interface(US_LINK)
}

fn v6() -> SessionKey {
    SessionKey::single_hop(ip(ROUTER_V6))
        .from_local(ip(US_V6))
        .on_interface(US_LINK)
}

fn multihop() -> SessionKey {
    SessionKey::multihop(ip(ROUTER_V4), ip(US_V4))
}

fn profile(tx_ms: u64, rx_ms: u64) -> Profile {
    Profile {
        desired_min_tx: Duration::from_millis(tx_ms),
        required_min_rx: Duration::from_millis(rx_ms),
        ..Profile::default()
    }
}

/// FRR's view of one of its peers: (peer address, multihop) → the JSON object.
type FrrPeers = BTreeMap<(String, bool), serde_json::Value>;

struct Harness {
    run_dir: PathBuf,
    router: String,
    commands: mpsc::Sender<driver::Command>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Every event so far, with when it arrived.
    seen: Vec<(Instant, Event)>,
    states: BTreeMap<SessionKey, State>,
    stats: Stats,
}

impl Harness {
    fn vtysh(&self, commands: &[&str]) -> String {
        let mut cmd = Command::new("vtysh");
        cmd.arg("--vty_socket").arg(&self.run_dir);
        for c in commands {
            cmd.args(["-c", c]);
        }
        let out = cmd.output().expect("run vtysh");
        assert!(out.status.success(), "vtysh {commands:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn frr_peers(&self) -> FrrPeers {
        frr_peers_at(&self.run_dir)
    }

    /// Waits until FRR's peers satisfy `check`.
    async fn wait_frr(&self, what: &str, timeout: Duration, check: impl Fn(&FrrPeers) -> bool) {
        let start = Instant::now();
        loop {
            let peers = self.frr_peers();
            if check(&peers) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "FRR: {what} not within {timeout:?}: {peers:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send(&self, command: driver::Command) {
        self.commands.send(command).await.expect("driver running");
    }

    /// Waits until each session of `want` is in its state; returns when each got there.
    async fn wait_states(
        &mut self,
        want: &[(SessionKey, State)],
        timeout: Duration,
    ) -> BTreeMap<SessionKey, Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut reached = BTreeMap::new();
        loop {
            for (key, state) in want {
                if self.states.get(key) == Some(state) && !reached.contains_key(key) {
                    let at = self
                        .seen
                        .iter()
                        .rev()
                        .find(|(_, e)| e.key == *key)
                        .map_or_else(Instant::now, |(at, _)| *at);
                    reached.insert(key.clone(), at);
                }
            }
            if reached.len() == want.len() {
                return reached;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    println!(
                        "  event: {} {} → {} ({}) {:?}",
                        event.key,
                        event.transition.from,
                        event.transition.to,
                        event.transition.diag,
                        event.transition.notice
                    );
                    self.states.insert(event.key.clone(), event.transition.to);
                    self.seen.push((Instant::now(), event));
                }
                Ok(None) => panic!("the driver stopped"),
                Err(_) => panic!(
                    "sessions not in {want:?} within {timeout:?}; now {:?}",
                    self.states
                ),
            }
        }
    }

    fn events_since(&self, since: Instant) -> Vec<&Event> {
        self.seen
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, e)| e)
            .collect()
    }
}

async fn wait_until(what: &str, timeout: Duration, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn frr_up(peers: &FrrPeers, key: (&str, bool)) -> bool {
    peers
        .get(&(key.0.to_string(), key.1))
        .is_some_and(|p| p["status"] == "up")
}

async fn scenario(run_dir: PathBuf, router: String) {
    let (commands, command_rx) = mpsc::channel(16);
    let (event_tx, events) = mpsc::unbounded_channel();
    let stats = Stats::default();
    let task = tokio::spawn(driver::run(command_rx, event_tx, stats.clone(), 7));
    let mut h = Harness {
        run_dir,
        router,
        commands,
        events,
        seen: Vec::new(),
        states: BTreeMap::new(),
        stats,
    };
    let all = [v4(), v6(), multihop()];
    let all_up: Vec<(SessionKey, State)> = all.iter().map(|k| (k.clone(), State::Up)).collect();
    let frr_all_up = |p: &FrrPeers| {
        frr_up(p, (US_V4, false)) && frr_up(p, (US_V6, false)) && frr_up(p, (US_V4, true))
    };

    println!("1. three sessions come Up on both sides (the IPv6 one passive)");
    let start = Instant::now();
    for key in &all {
        let profile = Profile {
            passive: *key == v6(),
            ..profile(300, 300)
        };
        h.send(driver::Command::Upsert {
            key: key.clone(),
            profile,
        })
        .await;
    }
    h.wait_states(&all_up, Duration::from_secs(15)).await;
    h.wait_frr("every session up", Duration::from_secs(10), frr_all_up)
        .await;
    println!("   up on both sides after {:?}", start.elapsed());
    let peers = h.frr_peers();
    for key in [(US_V4, false), (US_V6, false), (US_V4, true)] {
        let p = &peers[&(key.0.to_string(), key.1)];
        assert_eq!(
            (
                &p["remote-transmit-interval"],
                &p["remote-receive-interval"],
                &p["remote-detect-multiplier"],
                &p["remote-echo-receive-interval"],
            ),
            (
                &serde_json::json!(300),
                &serde_json::json!(300),
                &serde_json::json!(3),
                &serde_json::json!(0)
            ),
            "FRR's view of {key:?}"
        );
    }

    println!("2. timer changes go through Poll/Final without a flap");
    let before = Instant::now();
    let uptime = |p: &FrrPeers| p[&(US_V4.to_string(), false)]["uptime"].as_u64();
    let uptime_before = uptime(&h.frr_peers());
    h.send(driver::Command::Upsert {
        key: v4(),
        profile: profile(600, 200),
    })
    .await;
    h.wait_frr("the new intervals", Duration::from_secs(5), |p| {
        let p = &p[&(US_V4.to_string(), false)];
        p["status"] == "up"
            && p["remote-transmit-interval"] == 600
            && p["remote-receive-interval"] == 200
    })
    .await;
    // Our side: the Final came back (no Poll pending) and the slower TX is in force, which
    // §6.8.3 allows only after the Final.
    wait_until("our Poll answered", Duration::from_secs(5), || {
        let s = h.stats.snapshot()[&v4()];
        !s.polling && s.transmit_interval == Duration::from_millis(600)
    })
    .await;
    // Let several packets go at the new rate, then change back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.send(driver::Command::Upsert {
        key: v4(),
        profile: profile(300, 300),
    })
    .await;
    h.wait_frr("the intervals back", Duration::from_secs(5), |p| {
        let p = &p[&(US_V4.to_string(), false)];
        p["status"] == "up"
            && p["remote-transmit-interval"] == 300
            && p["remote-receive-interval"] == 300
    })
    .await;
    wait_until("our Poll answered", Duration::from_secs(5), || {
        let s = h.stats.snapshot()[&v4()];
        !s.polling && s.transmit_interval == Duration::from_millis(300)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peers = h.frr_peers();
    assert!(frr_all_up(&peers), "{peers:#?}");
    assert!(
        uptime(&peers) >= uptime_before,
        "FRR's session restarted: {uptime_before:?} → {:?}",
        uptime(&peers)
    );
    // Drain what arrived meanwhile: nothing may have changed state.
    while let Ok(e) = h.events.try_recv() {
        h.seen.push((Instant::now(), e));
    }
    assert_eq!(h.events_since(before), Vec::<&Event>::new());
    println!("   no state change on either side");

    println!("3. the router's link goes down: every session Down within the detection time");
    let all_down: Vec<(SessionKey, State)> = all.iter().map(|k| (k.clone(), State::Down)).collect();
    let mut figures: BTreeMap<SessionKey, Vec<u128>> = BTreeMap::new();
    for trial in 1..=TRIALS {
        // Both sides at their fast timers (the peer's Poll after coming Up done): 3 × 300 ms.
        wait_until("fast timers", Duration::from_secs(10), || {
            let status = h.stats.snapshot();
            all.iter().all(|k| {
                let s = status[k];
                s.state == State::Up
                    && !s.polling
                    && s.detection_time == Some(Duration::from_millis(900))
            })
        })
        .await;
        let down = Instant::now();
        run(&["ip", "-n", &h.router, "link", "set", ROUTER_LINK, "down"]);
        let when = h.wait_states(&all_down, Duration::from_secs(5)).await;
        for (key, at) in &when {
            let took = at.duration_since(down);
            assert!(took <= Duration::from_millis(1000), "{key}: {took:?}");
            figures
                .entry(key.clone())
                .or_default()
                .push(took.as_millis());
        }
        for event in h.events_since(down) {
            assert_eq!(
                (event.transition.diag, event.transition.notice),
                (Diagnostic::ControlDetectionTimeExpired, Some(Notice::Down)),
                "{event:?}"
            );
        }
        run(&["ip", "-n", &h.router, "link", "set", ROUTER_LINK, "up"]);
        h.wait_states(&all_up, Duration::from_secs(20)).await;
        h.wait_frr(
            "every session up again",
            Duration::from_secs(10),
            frr_all_up,
        )
        .await;
        println!("   trial {trial}: down and back up");
    }
    for (key, ms) in &figures {
        println!("   {key}: Down after {ms:?} ms");
    }

    println!("4. FRR shuts its IPv4 peer down: AdminDown reaches us, not a failure");
    let peer_v4 = format!("peer {US_V4} local-address {ROUTER_V4} interface {ROUTER_LINK}");
    let shut = Instant::now();
    h.vtysh(&["configure terminal", "bfd", &peer_v4, "shutdown"]);
    h.wait_states(&[(v4(), State::Down)], Duration::from_secs(5))
        .await;
    let events = h.events_since(shut);
    assert_eq!(
        events
            .iter()
            .map(|e| (&e.key, e.transition.diag, e.transition.notice))
            .collect::<Vec<_>>(),
        [(
            &v4(),
            Diagnostic::NeighborSignaledSessionDown,
            Some(Notice::AdminDown)
        )]
    );
    h.vtysh(&["configure terminal", "bfd", &peer_v4, "no shutdown"]);
    h.wait_states(&[(v4(), State::Up)], Duration::from_secs(10))
        .await;

    println!("5. removing our IPv6 session shows in FRR as administratively down");
    h.send(driver::Command::Remove(v6())).await;
    h.wait_frr("v6 admin down", Duration::from_secs(5), |p| {
        let p = &p[&(US_V6.to_string(), false)];
        p["status"] == "down" && p["remote-diagnostic"] == "administratively down"
    })
    .await;

    println!("6. a session whose source address appears later comes up once it does");
    let late = SessionKey::single_hop(ip(ROUTER_V4))
        .from_local(ip(US_LATE_V4))
        .on_interface(US_LINK);
    h.send(driver::Command::Upsert {
        key: late.clone(),
        profile: profile(300, 300),
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.stats.snapshot()[&late].counters.control_packet_output, 0);
    run(&[
        "ip",
        "addr",
        "add",
        &format!("{US_LATE_V4}/24"),
        "dev",
        US_LINK,
    ]);
    let added = Instant::now();
    h.wait_states(&[(late.clone(), State::Up)], Duration::from_secs(15))
        .await;
    println!("   up {:?} after the address was added", added.elapsed());
    h.send(driver::Command::Remove(late.clone())).await;

    let status = h.stats.snapshot();
    println!("   counters: {status:#?}");
    let c = status[&v4()].counters;
    assert!(
        c.session_up_events >= 3 && c.session_down_events >= 2,
        "{c:?}"
    );
    assert!(
        c.control_packet_input > 20 && c.control_packet_output > 20,
        "{c:?}"
    );
    assert!(!status.contains_key(&v6()));

    println!("7. stopping the driver says AdminDown to every peer left");
    drop(h.commands);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("driver stops")
        .expect("driver task");
    let frr = frr_peers_at(&h.run_dir);
    for key in [(US_V4, false), (US_V4, true)] {
        let p = &frr[&(key.0.to_string(), key.1)];
        assert_eq!(
            (&p["status"], &p["remote-diagnostic"]),
            (
                &serde_json::json!("down"),
                &serde_json::json!("administratively down")
            ),
            "{key:?}"
        );
    }
    println!("done");
}

fn frr_peers_at(run_dir: &Path) -> FrrPeers {
    let out = Command::new("vtysh")
        .arg("--vty_socket")
        .arg(run_dir)
        .args(["-c", "show bfd peers json"])
        .output()
        .expect("run vtysh");
    assert!(out.status.success(), "vtysh: {out:?}");
    let peers: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    peers
        .into_iter()
        .map(|p| {
            (
                (
                    p["peer"].as_str().unwrap_or_default().to_string(),
                    p["multihop"].as_bool().unwrap_or(false),
                ),
                p,
            )
        })
        .collect()
}
