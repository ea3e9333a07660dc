//! The native BGP driver against a real FRR (Debian's `bgpd`), end to end, as root:
//!
//! ```text
//! cargo run -p metallb-speaker --example bgp_frr            # run every check, then clean up
//! cargo run -p metallb-speaker --example bgp_frr -- --keep  # leave the lab up afterwards
//! ```
//!
//! Builds two network namespaces, `bgptest-rtr-<pid>` (zebra and bgpd with a private
//! configuration and run directory) and `bgptest-spk-<pid>` (our driver, run by this program
//! re-executed as `child`), joined by a veth pair with 198.51.100.0/24 and 2001:db8:ff::/64,
//! and checks with `vtysh` what FRR sees: sessions, routes and their attributes (communities,
//! large communities, MED, LOCAL_PREF over iBGP), withdrawals, TCP-MD5 with the right and a
//! wrong password, graceful restart keeping routes across a restart, and our hold timer
//! catching a frozen peer. Every wait is bounded; namespaces and processes are removed even
//! when a check fails. Prints how long each route took from "set routes" to FRR's RIB.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use metallb_api::community::Community;
use metallb_api::config::PeerAsn;
use metallb_speaker::bgp::driver::{self, Md5Password, PeerConfig, TcpConnector};
use metallb_speaker::bgp::session::{
    GracefulRestartConfig, Route, RouterId, SessionConfig, StopMode, families_for,
};
use serde_json::Value;

const ROUTER_AS: u32 = 64500;
const SECRET: &str = "bgptest-secret";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(&args[2..]);
    }
    let keep = args.iter().any(|a| a == "--keep");
    match Lab::new().and_then(|mut lab| {
        let result = lab.run();
        if keep {
            lab.keep = true;
            println!(
                "lab kept: namespaces {} {}, vtysh --vty_socket {}",
                lab.rtr,
                lab.spk,
                lab.run_dir().display()
            );
        }
        result
    }) {
        Ok(()) => {
            println!("all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

// The speaker side: one driver, commands on stdin, status on stdout.

/// `child key=value...`: peer=, as=, peer-as=, source=, password=, dual-stack, nh4=, nh6=, gr,
/// restarted, hold=, connect=, router-id=.
fn child(args: &[String]) -> ExitCode {
    let mut options: BTreeMap<&str, &str> = BTreeMap::new();
    for a in args {
        let (k, v) = a.split_once('=').unwrap_or((a.as_str(), ""));
        options.insert(k, v);
    }
    let get = |k: &str| options.get(k).copied();
    let peer: IpAddr = get("peer").expect("peer=").parse().expect("peer address");
    let local_as: u32 = get("as").expect("as=").parse().expect("as");
    let peer_as: u32 = get("peer-as").expect("peer-as=").parse().expect("peer-as");
    let mut session = SessionConfig::new(local_as, PeerAsn::Number(peer_as), peer);
    session.families = families_for(peer, options.contains_key("dual-stack"), false);
    session.next_hops.v6 = get("nh6").map(|a| a.parse().expect("nh6"));
    session.next_hops.v4 = get("nh4").map(|a| a.parse().expect("nh4"));
    session.connect_time = Duration::from_secs(get("connect").map_or(3, |s| s.parse().unwrap()));
    if let Some(h) = get("hold") {
        session.hold_time = Duration::from_secs(h.parse().unwrap());
    }
    if let Some(id) = get("router-id") {
        session.router_id = RouterId::Fixed(id.parse().unwrap());
    }
    if options.contains_key("gr") {
        session.graceful_restart = Some(GracefulRestartConfig {
            restart_time: Duration::from_secs(120),
            restarted: options.contains_key("restarted"),
        });
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let ebgp = local_as != peer_as;
    let config = PeerConfig {
        session,
        remote: SocketAddr::new(peer, 179),
        source: get("source").map(|s| s.parse().expect("source")),
        ttl: if ebgp { 1 } else { 255 },
        password: get("password").map(Md5Password::new),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let handle = driver::spawn(config, TcpConnector, Duration::ZERO);
        let mut status = handle.status.clone();
        tokio::spawn(async move {
            loop {
                let s = status.borrow_and_update().clone();
                println!(
                    "status {:?} announced={} pending={} updates={} last={}",
                    s.state,
                    s.announced,
                    s.pending,
                    s.counters.updates_sent,
                    s.last_down.unwrap_or_default()
                );
                if status.changed().await.is_err() {
                    return;
                }
            }
        });
        let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(16);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if lines_tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let mut table: BTreeMap<IpNet, Route> = BTreeMap::new();
        while let Some(line) = lines.recv().await {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["route", prefix, attrs @ ..] => {
                    let mut route = Route::default();
                    for a in attrs {
                        let (k, v) = a.split_once('=').expect("key=value");
                        match k {
                            "med" => route.med = Some(v.parse().unwrap()),
                            "lp" => route.local_pref = Some(v.parse().unwrap()),
                            "c" => {
                                route.communities.insert(Community::parse(v).unwrap());
                            }
                            "prepend" => route.as_path.push(v.parse().unwrap()),
                            other => panic!("unknown route attribute {other}"),
                        }
                    }
                    table.insert(prefix.parse().expect("prefix"), route);
                }
                ["unroute", prefix] => {
                    table.remove(&prefix.parse::<IpNet>().expect("prefix"));
                }
                ["commit"] => {
                    handle
                        .commands
                        .send(driver::Command::SetRoutes(table.clone()))
                        .await
                        .expect("driver running");
                    println!("committed");
                }
                ["stop", mode] => {
                    let mode = match *mode {
                        "restart" => StopMode::Restart,
                        _ => StopMode::Shutdown,
                    };
                    handle.stop(mode).await;
                    println!("stopped");
                    return;
                }
                _ => eprintln!("unknown command {line:?}"),
            }
        }
        handle.stop(StopMode::Shutdown).await;
    });
    ExitCode::SUCCESS
}

// The lab.

struct Speaker {
    name: String,
    process: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// The last status line.
    status: String,
}

impl Speaker {
    fn send(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.stdin, "{line}").map_err(|e| format!("{}: stdin: {e}", self.name))
    }

    /// Waits for an output line matching `pred`.
    fn wait_line(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if line.starts_with("status ") {
                        self.status = line.clone();
                    }
                    if pred(&line) {
                        return Ok(line);
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "{}: no {what} within {within:?} (last: {})",
                        self.name, self.status
                    ));
                }
            }
        }
    }

    fn commit(&mut self, lines: &[&str]) -> Result<Instant, String> {
        for l in lines {
            self.send(l)?;
        }
        let at = Instant::now();
        self.send("commit")?;
        Ok(at)
    }

    fn stop(mut self, mode: &str) -> Result<(), String> {
        self.send(&format!("stop {mode}"))?;
        self.wait_line("stop", Duration::from_secs(10), |l| l == "stopped")?;
        let _ = self.process.wait();
        Ok(())
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

struct Lab {
    dir: PathBuf,
    rtr: String,
    spk: String,
    frr: Vec<Child>,
    keep: bool,
}

fn run(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Lab {
    fn new() -> Result<Self, String> {
        let pid = std::process::id();
        let lab = Self {
            dir: std::env::temp_dir().join(format!("bgptest-{pid}")),
            rtr: format!("bgptest-rtr-{pid}"),
            spk: format!("bgptest-spk-{pid}"),
            frr: Vec::new(),
            keep: false,
        };
        let (r, s) = (lab.rtr.as_str(), lab.spk.as_str());
        run(&["ip", "netns", "add", r])?;
        run(&["ip", "netns", "add", s])?;
        run(&[
            "ip", "-n", s, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
            "netns", r,
        ])?;
        for (ns, dev, v4, v6) in [
            (s, "veth0", "198.51.100.2/24", "2001:db8:ff::2/64"),
            (r, "veth1", "198.51.100.1/24", "2001:db8:ff::1/64"),
        ] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            run(&["ip", "-n", ns, "addr", "add", v4, "dev", dev])?;
            run(&["ip", "-n", ns, "addr", "add", v6, "dev", dev, "nodad"])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        }
        // A second source address on the speaker side, for the wrong-password session.
        run(&[
            "ip",
            "-n",
            s,
            "addr",
            "add",
            "198.51.100.3/24",
            "dev",
            "veth0",
        ])?;
        Ok(lab)
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn start_frr(&mut self) -> Result<(), String> {
        let run_dir = self.run_dir();
        std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
        let header =
            "frr defaults traditional\nhostname bgptest-router\nlog timestamp precision 3\n!\n";
        std::fs::write(self.dir.join("zebra.conf"), header).map_err(|e| e.to_string())?;
        let bgpd = format!(
            "{header}router bgp {ROUTER_AS}
 bgp router-id 198.51.100.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 bgp graceful-restart
 neighbor 198.51.100.2 remote-as 64512
 neighbor 198.51.100.2 password {SECRET}
 neighbor 198.51.100.3 remote-as 64513
 neighbor 198.51.100.3 password {SECRET}
 neighbor 2001:db8:ff::2 remote-as {ROUTER_AS}
 neighbor 2001:db8:ff::2 password {SECRET}
 !
 address-family ipv4 unicast
  neighbor 198.51.100.2 activate
  neighbor 198.51.100.3 activate
  neighbor 2001:db8:ff::2 activate
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor 198.51.100.2 activate
  neighbor 2001:db8:ff::2 activate
 exit-address-family
!
"
        );
        std::fs::write(self.dir.join("bgpd.conf"), bgpd).map_err(|e| e.to_string())?;
        run(&["chown", "-R", "frr:frr", &self.dir.display().to_string()])?;
        for daemon in ["zebra", "bgpd"] {
            let log = std::fs::File::create(self.dir.join(format!("{daemon}.log")))
                .map_err(|e| e.to_string())?;
            let child = Command::new("ip")
                .args(["netns", "exec", &self.rtr])
                .arg(format!("/usr/lib/frr/{daemon}"))
                .arg("-f")
                .arg(self.dir.join(format!("{daemon}.conf")))
                .arg("-i")
                .arg(run_dir.join(format!("{daemon}.pid")))
                .arg("-z")
                .arg(run_dir.join("zserv.api"))
                .arg("--vty_socket")
                .arg(&run_dir)
                .args(["-P", "0", "-u", "frr", "-g", "frr", "--log", "stdout"])
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log)
                .spawn()
                .map_err(|e| format!("{daemon}: {e}"))?;
            self.frr.push(child);
            if daemon == "zebra" {
                wait_for("zebra's socket", Duration::from_secs(10), || {
                    Ok(run_dir.join("zserv.api").exists().then_some(()))
                })?;
            }
        }
        wait_for("bgpd's configuration", Duration::from_secs(20), || {
            Ok(self
                .vtysh("show running-config")
                .ok()
                .filter(|t| t.contains("router bgp 64500"))
                .map(|_| ()))
        })
    }

    fn vtysh(&self, command: &str) -> Result<String, String> {
        run(&[
            "vtysh",
            "--vty_socket",
            &self.run_dir().display().to_string(),
            "-c",
            command,
        ])
    }

    fn json(&self, command: &str) -> Result<Value, String> {
        let text = self.vtysh(&format!("{command} json"))?;
        serde_json::from_str(&text).map_err(|e| format!("{command}: {e}: {text}"))
    }

    fn neighbor_state(&self, neighbor: &str) -> String {
        self.json(&format!("show bgp neighbors {neighbor}"))
            .ok()
            .and_then(|v| v[neighbor]["bgpState"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// FRR's paths for `prefix`, empty when it has none.
    fn paths(&self, prefix: &str) -> Vec<Value> {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.json(&format!("show bgp {afi} unicast {prefix}"))
            .ok()
            .and_then(|v| v["paths"].as_array().cloned())
            .unwrap_or_default()
    }

    fn speaker(&self, name: &str, options: &[&str]) -> Result<Speaker, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut process = Command::new("ip")
            .args(["netns", "exec", &self.spk])
            .arg(exe)
            .arg("child")
            .args(options)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(self.dir.join(format!("{name}.log")))
                    .map_err(|e| e.to_string())?,
            )
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        let stdin = process.stdin.take().expect("piped");
        let stdout = process.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Speaker {
            name: name.into(),
            process,
            stdin,
            lines,
            status: String::new(),
        })
    }

    fn established(&self, neighbor: &str, within: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        wait_for(
            &format!("session with {neighbor} Established in FRR"),
            within,
            || Ok((self.neighbor_state(neighbor) == "Established").then_some(())),
        )?;
        Ok(start.elapsed())
    }

    /// Waits until FRR has `prefix` from `from` and `check` holds on the path; returns the path.
    fn route(
        &self,
        prefix: &str,
        from: &str,
        within: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let mut last = Vec::new();
        let found = wait_for(&format!("{prefix} from {from} in FRR"), within, || {
            last = self.paths(prefix);
            Ok(last
                .iter()
                .find(|p| p["peer"]["peerId"].as_str() == Some(from) && check(p))
                .cloned())
        });
        found.map_err(|e| format!("{e}; FRR had {last:?}"))
    }

    fn gone(&self, prefix: &str, within: Duration) -> Result<(), String> {
        wait_for(&format!("{prefix} gone from FRR"), within, || {
            Ok(self.paths(prefix).is_empty().then_some(()))
        })
    }

    fn run(&mut self) -> Result<(), String> {
        self.start_frr()?;
        let mut report = Vec::new();
        // The polling's own cost: the route times below include up to one of these.
        let probes: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let _ = self.vtysh("show bgp ipv4 unicast 192.0.2.0/24 json");
                t.elapsed()
            })
            .collect();
        report.push(format!(
            "one vtysh query takes {:?} (min of 5)",
            probes.iter().min().unwrap()
        ));

        // 1. eBGP over IPv4, dual stack, TCP-MD5 with the right password, graceful restart.
        let a_options = [
            "peer=198.51.100.1",
            "as=64512",
            "peer-as=64500",
            "dual-stack",
            "nh6=2001:db8:ff::2",
            "gr",
            "password=bgptest-secret",
        ];
        let mut a = self.speaker("a", &a_options)?;
        let t = self.established("198.51.100.2", Duration::from_secs(20))?;
        report.push(format!(
            "eBGP dual-stack session with TCP-MD5 established in {t:?}"
        ));

        let at = a.commit(&[
            "route 203.0.113.10/32 med=50 c=64512:100 c=large:64512:1:2",
            "route 203.0.113.11/32",
            "route 2001:db8:1::10/128 med=50 c=64512:100 c=large:64512:1:2",
        ])?;
        let v4 = self.route("203.0.113.10/32", "198.51.100.2", secs(10), |_| true)?;
        let v4_time = at.elapsed();
        let v6 = self.route("2001:db8:1::10/128", "198.51.100.2", secs(10), |_| true)?;
        let v6_time = at.elapsed();
        expect(&v4["aspath"]["string"], "64512", "IPv4 AS path")?;
        expect(&v4["metric"], 50, "IPv4 MED")?;
        expect(&v4["community"]["string"], "64512:100", "IPv4 community")?;
        expect(
            &v4["largeCommunity"]["string"],
            "64512:1:2",
            "IPv4 large community",
        )?;
        expect(&v4["nexthops"][0]["ip"], "198.51.100.2", "IPv4 next hop")?;
        expect(&v6["metric"], 50, "IPv6 MED")?;
        expect(&v6["community"]["string"], "64512:100", "IPv6 community")?;
        expect(
            &v6["largeCommunity"]["string"],
            "64512:1:2",
            "IPv6 large community",
        )?;
        expect(&v6["nexthops"][0]["ip"], "2001:db8:ff::2", "IPv6 next hop")?;
        report.push(format!(
            "routes in FRR's RIB after set-routes (polled with vtysh every 20 ms): IPv4 \
             {v4_time:?}, IPv6 {v6_time:?} (looked up after the IPv4 one); MED, communities, \
             large communities and next hops as sent"
        ));

        // 2. Withdrawal and a new route.
        let at = a.commit(&[
            "unroute 203.0.113.10/32",
            "route 203.0.113.12/32 prepend=64512",
        ])?;
        self.gone("203.0.113.10/32", secs(10))?;
        let withdraw_time = at.elapsed();
        let prepended = self.route("203.0.113.12/32", "198.51.100.2", secs(10), |_| true)?;
        expect(
            &prepended["aspath"]["string"],
            "64512 64512",
            "prepended AS path",
        )?;
        report.push(format!(
            "withdrawal gone from FRR after {withdraw_time:?}; a prepend shows as 64512 64512"
        ));

        // 3. iBGP over IPv6 with TCP-MD5, dual stack (IPv4 routes over the IPv6 session, in the
        // classic NLRI field with the configured IPv4 next hop): LOCAL_PREF; a short hold time
        // for the frozen-peer check.
        let mut b = self.speaker(
            "b",
            &[
                "peer=2001:db8:ff::1",
                "as=64500",
                "peer-as=64500",
                "router-id=192.0.2.2",
                "hold=6",
                "dual-stack",
                "nh4=198.51.100.2",
                "password=bgptest-secret",
            ],
        )?;
        self.established("2001:db8:ff::2", secs(20))?;
        b.commit(&[
            "route 2001:db8:2::1/128 lp=200 c=64500:7",
            "route 203.0.113.20/32 lp=150",
        ])?;
        let ibgp = self.route("2001:db8:2::1/128", "2001:db8:ff::2", secs(10), |_| true)?;
        expect(&ibgp["locPrf"], 200, "iBGP LOCAL_PREF")?;
        expect(&ibgp["aspath"]["string"], "Local", "iBGP AS path")?;
        expect(
            &ibgp["nexthops"][0]["ip"],
            "2001:db8:ff::2",
            "iBGP IPv6 next hop",
        )?;
        let v4_over_v6 = self.route("203.0.113.20/32", "2001:db8:ff::2", secs(10), |_| true)?;
        expect(&v4_over_v6["locPrf"], 150, "IPv4-over-IPv6 LOCAL_PREF")?;
        expect(
            &v4_over_v6["nexthops"][0]["ip"],
            "198.51.100.2",
            "IPv4-over-IPv6 next hop",
        )?;
        report.push(
            "iBGP over IPv6 with TCP-MD5: LOCAL_PREF 200 and an empty AS path; an IPv4 route on \
             the same session with its IPv4 next hop and LOCAL_PREF 150"
                .into(),
        );

        // 4. TCP-MD5 with a wrong password never gets a session; the right one does.
        let mut c = self.speaker(
            "c-wrong",
            &[
                "peer=198.51.100.1",
                "as=64513",
                "peer-as=64500",
                "source=198.51.100.3",
                "password=not-the-secret",
                "connect=3",
            ],
        )?;
        let line = c.wait_line("a failed attempt", secs(15), |l| {
            l.contains("failed to connect within 3s")
        })?;
        std::thread::sleep(secs(4));
        let state = self.neighbor_state("198.51.100.3");
        if state == "Established" {
            return Err("a wrong TCP-MD5 password established a session".into());
        }
        c.stop("shutdown")?;
        report.push(format!(
            "wrong TCP-MD5 password: no session (FRR state {state:?}, ours: {})",
            line.split("last=").nth(1).unwrap_or_default()
        ));
        let c = self.speaker(
            "c-right",
            &[
                "peer=198.51.100.1",
                "as=64513",
                "peer-as=64500",
                "source=198.51.100.3",
                "password=bgptest-secret",
            ],
        )?;
        self.established("198.51.100.3", secs(20))?;
        c.stop("shutdown")?;
        report.push("right TCP-MD5 password from source address 198.51.100.3: Established".into());

        // 5. Graceful restart: a stop for restart leaves the routes in FRR, marked stale.
        a.stop("restart")?;
        let down = Instant::now();
        wait_for("FRR to notice the closed session", secs(10), || {
            Ok((self.neighbor_state("198.51.100.2") != "Established").then_some(()))
        })?;
        let stale = self.route("203.0.113.11/32", "198.51.100.2", secs(5), |p| {
            p["stale"].as_bool() == Some(true)
        })?;
        std::thread::sleep(secs(3));
        let still = self.paths("203.0.113.11/32");
        if still.is_empty() {
            return Err(format!(
                "the route left FRR during the restart; it was {stale}"
            ));
        }
        // The restarted speaker sends the table without 203.0.113.12/32, then End-of-RIB:
        // FRR keeps what came again and drops the rest.
        let mut options = a_options.to_vec();
        options.push("restarted");
        let mut a2 = self.speaker("a-restarted", &options)?;
        a2.commit(&[
            "route 203.0.113.11/32",
            "route 2001:db8:1::10/128 med=50 c=64512:100 c=large:64512:1:2",
        ])?;
        self.established("198.51.100.2", secs(20))?;
        self.route("203.0.113.11/32", "198.51.100.2", secs(10), |p| {
            p["stale"].as_bool() != Some(true)
        })?;
        self.gone("203.0.113.12/32", secs(10))?;
        report.push(format!(
            "graceful restart: routes kept (stale) for {:?} while the speaker was away, \
             refreshed after it came back; the route it no longer sent left at End-of-RIB",
            down.elapsed()
        ));

        // 6. Our hold timer: freeze bgpd; the 6 s iBGP session must notice on its own.
        let bgpd = self.frr[1].id().to_string();
        run(&["kill", "-STOP", &bgpd])?;
        let frozen = Instant::now();
        let caught = b.wait_line("hold timer expiry", secs(15), |l| {
            l.contains("within the hold time (6s)")
        });
        let caught_after = frozen.elapsed();
        run(&["kill", "-CONT", &bgpd])?;
        caught?;
        report.push(format!(
            "frozen peer: hold timer expired {caught_after:?} after bgpd was stopped (hold 6s, \
             Hold Timer Expired sent)"
        ));
        self.established("2001:db8:ff::2", secs(30))?;
        report.push("after bgpd resumed, the iBGP session came back by itself".into());

        a2.stop("shutdown")?;
        b.stop("shutdown")?;
        self.gone("2001:db8:2::1/128", secs(10))?;
        self.gone("203.0.113.20/32", secs(10))?;
        self.gone("203.0.113.11/32", secs(10))?;
        report.push("stop with Cease: FRR removed every route at once".into());

        for line in report {
            println!("ok: {line}");
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for child in &mut self.frr {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = run(&["ip", "netns", "del", &self.spk]);
        let _ = run(&["ip", "netns", "del", &self.rtr]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Polls `probe` every 20 ms until it yields a value or `within` has passed.
fn wait_for<T>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("no {what} within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn expect(value: &Value, wanted: impl Into<Value>, what: &str) -> Result<(), String> {
    let wanted = wanted.into();
    if *value == wanted {
        Ok(())
    } else {
        Err(format!("{what}: FRR shows {value}, expected {wanted}"))
    }
}
