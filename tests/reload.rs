//! `signet reload` and SIGHUP (issue 3, point 8): zones are added and removed without dropping
//! the zones that stay; a broken configuration is refused and changes nothing.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn zone(origin: &str, serial: u32) -> String {
    format!("$TTL 300\n$ORIGIN {origin}.\n@ SOA ns1 hostmaster {serial} 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n")
}

fn conf(dir: &TempDir, port: u16, zones: &[&str]) -> String {
    let mut s = format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n",
        dir.join("state").display(),
        dir.join("keys").display()
    );
    for z in zones {
        s.push_str(&format!(
            "[[zone]]\nname = \"{z}\"\nfile = \"{}\"\n",
            dir.join(format!("{z}.zone")).display()
        ));
    }
    s
}

#[test]
fn reload_adds_and_removes_zones_and_refuses_broken_config() {
    require!("dig");
    let dir = TempDir::new("reload");
    let port = free_port();
    for z in ["a.example", "b.example"] {
        dir.write(format!("{z}.zone"), zone(z, 7));
    }
    let c = dir.write("signet.toml", conf(&dir, port, &["a.example"]));
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve").arg("-c").arg(&c);
    let signet = Proc::spawn("signet", cmd, dir.path());
    wait_serial(port, "a.example", 7, Duration::from_secs(30)).unwrap();
    assert_eq!(soa_serial(port, "b.example"), None);
    // --socket: the CLI must reach the server even when the file on disk is broken
    let sock = dir.join("state/control.sock");
    let reload = || {
        run(
            Command::new(signet_bin()).args(["reload", "--socket", &sock.to_string_lossy()]),
            Duration::from_secs(60),
        )
    };

    // add b
    dir.write("signet.toml", conf(&dir, port, &["a.example", "b.example"]));
    let out = reload();
    assert!(out.ok(), "{out}");
    wait_serial(port, "b.example", 7, Duration::from_secs(30)).unwrap();
    assert_eq!(soa_serial(port, "a.example"), Some(7));

    // a broken configuration: refused, nothing changes
    dir.write("signet.toml", "[server\nlisten = 1\n");
    let out = reload();
    assert!(!out.ok(), "a broken configuration was accepted: {out}");
    assert!(out.combined().contains("refused"), "{out}");
    assert_eq!(soa_serial(port, "a.example"), Some(7));
    assert_eq!(soa_serial(port, "b.example"), Some(7));

    // remove a, by SIGHUP this time
    dir.write("signet.toml", conf(&dir, port, &["b.example"]));
    assert!(signet.signal("HUP"));
    assert!(
        wait_until(Duration::from_secs(20), || soa_serial(port, "a.example")
            .is_none()),
        "a.example still served after SIGHUP:\n{}",
        signet.log_tail(20)
    );
    assert_eq!(soa_serial(port, "b.example"), Some(7));
    let st = run(
        Command::new(signet_bin()).args(["status", "--socket", &sock.to_string_lossy(), "--json"]),
        Duration::from_secs(10),
    );
    assert!(st.ok(), "{st}");
    assert!(!st.stdout.contains("a.example"), "{}", st.stdout);
    assert!(st.stdout.contains("b.example"), "{}", st.stdout);
}
