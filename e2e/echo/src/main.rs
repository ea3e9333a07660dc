//! `mlb-echo [--port PORT]`: the echo server of image `localhost/echo` (see the library).
//! The port comes from `--port`, else `PORT`, else 8080; the identity from `POD_NAME`,
//! `POD_NAMESPACE`, `NODE_NAME`, and the UDP addresses from `POD_IPS`/`POD_IP`.

#![forbid(unsafe_code)]

use metallb_e2e_echo::{Identity, serve};

/// The port of `--port N` or `--port=N`, else of `PORT`, else 8080.
fn port(args: &[String], env: Option<String>) -> Result<u16, String> {
    let mut value = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(v) = arg.strip_prefix("--port=") {
            value = Some(v.to_string());
        } else if arg == "--port" {
            value = Some(it.next().ok_or("--port needs a value")?.clone());
        } else {
            return Err(format!(
                "unknown argument {arg}; usage: mlb-echo [--port PORT]"
            ));
        }
    }
    match value.or(env) {
        Some(v) => v.parse().map_err(|_| format!("invalid port {v}")),
        None => Ok(8080),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match port(&args, std::env::var("PORT").ok()) {
        Ok(port) => port,
        Err(e) => {
            eprintln!("mlb-echo: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(port, Identity::from_env(), &Identity::addresses_from_env()).await {
        eprintln!("mlb-echo: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_port_flag_wins_over_the_environment_and_the_default_is_8080() {
        assert_eq!(port(&args(&["--port", "81"]), Some("82".into())), Ok(81));
        assert_eq!(port(&args(&["--port=83"]), None), Ok(83));
        assert_eq!(port(&[], Some("84".into())), Ok(84));
        assert_eq!(port(&[], None), Ok(8080));
    }

    #[test]
    fn bad_arguments_are_refused_with_the_usage() {
        assert_eq!(
            port(&args(&["--udp"]), None),
            Err("unknown argument --udp; usage: mlb-echo [--port PORT]".into())
        );
        assert_eq!(
            port(&args(&["--port", "x"]), None),
            Err("invalid port x".into())
        );
        assert_eq!(
            port(&args(&["--port"]), None),
            Err("--port needs a value".into())
        );
    }
}
