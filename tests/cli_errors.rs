//! Bad input at the command line gets a clear error naming the place, and changes nothing:
//! `signet check` lists every problem as FILE:LINE and exits 1; `serve` refuses an unusable
//! configuration with a one-line reason; `sign-zone` refuses a broken zone and writes nothing.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn signet(args: &[&str]) -> Output {
    run(
        Command::new(signet_bin()).args(args),
        Duration::from_secs(60),
    )
}

fn conf(dir: &TempDir, zone_file: &str) -> String {
    format!(
        "[server]\nstate-dir = \"{}\"\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n[[zone]]\nname = \"example.com\"\nfile = \"{}\"\n",
        dir.join("state").display(),
        dir.join("keys").display(),
        zone_file
    )
}

#[test]
fn check_reports_zone_file_errors_with_lines() {
    let dir = TempDir::new("cli-check");
    let zf = dir.write(
        "bad.zone",
        "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww A 192.0.2.300\nmail MX ten mail\nout.example.org. A 192.0.2.1\nalias CNAME www\nalias TXT \"x\"\n",
    );
    let c = dir.write("signet.toml", conf(&dir, &zf.to_string_lossy()));
    let out = signet(&["check", "-c", &c.to_string_lossy()]);
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.combined();
    let zfs = zf.to_string_lossy();
    assert!(text.contains(&format!("{zfs}:4: ")), "{text}");
    assert!(text.contains(&format!("{zfs}:5: ")), "{text}");
    assert!(text.contains("bad IPv4 address"), "{text}");
}

#[test]
fn check_reports_zone_rule_violations() {
    let dir = TempDir::new("cli-rules");
    let zf = dir.write(
        "rules.zone",
        "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nout.example.org. A 192.0.2.1\nalias CNAME www\nalias TXT \"x\"\n",
    );
    let c = dir.write("signet.toml", conf(&dir, &zf.to_string_lossy()));
    let out = signet(&["check", "-c", &c.to_string_lossy()]);
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.combined();
    assert!(text.contains("outside the zone"), "{text}");
    assert!(text.contains("CNAME beside other data"), "{text}");
    // a zone without SOA
    let zf2 = dir.write("nosoa.zone", "$TTL 300\nwww A 192.0.2.1\n");
    let c2 = dir.write("signet2.toml", conf(&dir, &zf2.to_string_lossy()));
    let text = signet(&["check", "-c", &c2.to_string_lossy()]).combined();
    assert!(text.contains("has no SOA"), "{text}");
}

#[test]
fn check_accepts_the_embedded_default() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = run(
        Command::new(signet_bin())
            .current_dir(root)
            .args(["check", "-c", "conf/signet.toml"]),
        Duration::from_secs(60),
    );
    assert!(out.ok(), "{out}");
}

#[test]
fn check_reports_config_errors_with_lines() {
    let dir = TempDir::new("cli-conf");
    let c = dir.write(
        "signet.toml",
        "[server]\nlisten = [\"127.0.0.1:5353\"]\nstate_dir = \"x\"\n[[zone]]\nname = \"example.com\"\npolicy = \"nope\"\n",
    );
    let out = signet(&["check", "-c", &c.to_string_lossy()]);
    assert_eq!(out.code, Some(1), "{out}");
    let text = out.combined();
    let cs = c.to_string_lossy();
    assert!(
        text.contains(&format!("{cs}:3: ")),
        "unknown key on line 3: {text}"
    );
    assert!(
        text.contains(&format!("{cs}:6: ")),
        "undefined policy on line 6: {text}"
    );
}

#[test]
fn serve_refuses_unusable_config() {
    let dir = TempDir::new("cli-serve");
    let c = dir.write("signet.toml", "[server\n");
    let out = signet(&["serve", "-c", &c.to_string_lossy()]);
    assert!(!out.ok(), "{out}");
    assert!(
        out.combined().contains(&format!("{}:1", c.display())),
        "{out}"
    );
}

#[test]
fn sign_zone_refuses_broken_zone_and_writes_nothing() {
    let dir = TempDir::new("cli-sign");
    let zf = dir.write(
        "bad.zone",
        "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww A (192.0.2.1\n",
    );
    let c = dir.write("signet.toml", conf(&dir, &zf.to_string_lossy()));
    let out_file = dir.join("out.zone");
    let out = signet(&[
        "sign-zone",
        "-c",
        &c.to_string_lossy(),
        "--zone",
        "example.com",
        "--in",
        &zf.to_string_lossy(),
        "--out",
        &out_file.to_string_lossy(),
    ]);
    assert!(!out.ok(), "{out}");
    assert!(out.combined().contains("unclosed '('"), "{out}");
    assert!(!out_file.exists());
}
